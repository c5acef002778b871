"""Node users and remote login: add, replace and delete a user account on a node, the node's remote login settings
and its inbound endpoints (what a node GET shows in endpointConfiguration).

The answers follow Microsoft's recording (Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/
test_batch.pyTestBatchtest_batch_compute_node_user[sync].json): add 201, replace 200, delete 200, remote login
settings 200 with the address and frontend port of the node's endpoint. The rules are the REST reference's
(2025-06-01): a user can be added, replaced or deleted only while the node is idle or running; expiryTime defaults
to one day from now; a replace replaces every updatable property (an omitted password or SSH key is removed, an
omitted expiryTime is the default again). Codes: 409 NodeUserExists, 404 NodeUserNotFound (the Batch error-code
list); the others are marked [inferred] where they are set.

A request is checked and recorded under the account lock; the account itself is made on the node by the runtime
(service.work.Runtime set_node_user / remove_node_user) after the lock is released, and a failure there undoes the
record. The password goes to the runtime once and is never stored.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import timedelta
from typing import Any

from .changes import change, read
from .errors import conflict, invalid_property, missing_property, not_found, service_error
from .nodes import BUSY
from .schedules import parse_time
from .state import Account, Node, NodeUser, Pool, get_node, get_pool, utcnow
from .states import NodeState
from .validation import require_object
from .work import Runtime

MAX_NAME_LENGTH = 20   # node user names: at most 20 characters (the REST reference)
# [inferred] What a Linux account name may be: the service's own rule was not found; this is what useradd takes.
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
DEFAULT_LIFETIME = timedelta(days=1)   # expiryTime when omitted (the REST reference)
USER_STATES = frozenset({NodeState.IDLE, NodeState.RUNNING})
# [inferred] An OpenSSH public key on one line: its type, its base64 blob, an optional comment. No options
# (command="..."), no second line: the key becomes the account's authorized_keys.
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
UNSAFE_PASSWORD_CHARACTERS = ("\n", "\r", "\0")   # a password is one line: what chpasswd reads

# Without networkConfiguration.endpointConfiguration a Linux pool's nodes have one SSH endpoint: a NAT pool of
# the pool's load balancer, frontend ports from 50000 ([inferred]: the documented default range; the name
# "SSHRule" as the service's own test data shows it). With inboundNATPools the node shows those instead (recorded:
# test_batch_network_configuration, "TestEndpointConfig.0", frontend 60000 = frontendPortRangeStart).
DEFAULT_NAT_POOL = {"name": "SSHRule", "protocol": "tcp", "backendPort": 22, "frontendPortRangeStart": 50000}
SSH_PORT = 22
PUBLIC_IP = "127.0.0.1"      # the load balancer's address: this machine
PUBLIC_FQDN = "localhost"


# ---- checks ----

def _name(value: object) -> str:
    if value is None or value == "":
        raise missing_property("name")
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or not NAME_PATTERN.match(value):
        raise invalid_property("name", value, f"The name must be at most {MAX_NAME_LENGTH} characters: letters, "
                                              "digits, '_', '-' and '.', not starting with a digit, '-' or '.'.")
    return value


def _password(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or any(c in value for c in UNSAFE_PASSWORD_CHARACTERS):
        # never echo the value: it is a secret
        raise service_error(400, "InvalidPropertyValue", PropertyName="password",
                            Reason="The password must be a string on one line.")
    return value or None


def _ssh_key(value: object) -> str | None:
    if value is None or value == "":
        return None
    fields = value.split() if isinstance(value, str) and "\n" not in value and "\r" not in value else []
    if len(fields) < 2 or fields[0] not in KEY_TYPES:
        raise invalid_property("sshPublicKey", value, "The value must be an OpenSSH public key (ssh-ed25519 AAAA...).")
    try:
        base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        raise invalid_property("sshPublicKey", value, "The key is not base64 encoded.") from None
    return str(value).strip()


def _replaceable(body: dict[str, Any]) -> NodeUser:
    """A NodeUser with only the replaceable properties of ``body`` (name and isAdmin filled in by the caller)."""
    raw = body.get("expiryTime")
    expiry = utcnow() + DEFAULT_LIFETIME if raw is None else parse_time(raw, "expiryTime")
    return NodeUser("", False, expiry, _password(body.get("password")) is not None, _ssh_key(body.get("sshPublicKey")))


def _node(account: Account, pool_id: str, node_id: str) -> Node:
    """The node whose users change (lock held): 404 PoolNotFound / NodeNotFound, 409 PoolBeingDeleted, and 409 when
    it is neither idle nor running (the node operations' codes, else OperationInvalidForCurrentState)."""
    get_pool(account, pool_id, allow_deleting=False)
    node = get_node(account, pool_id, node_id)
    if node.state not in USER_STATES:
        raise conflict(BUSY.get(node.state, "OperationInvalidForCurrentState"))
    return node


def _apply(account: Account, runtime: Runtime, node: Node, key: str, user: NodeUser, previous: NodeUser | None,
           password: str | None) -> None:
    """The runtime makes (or replaces) the account; if it cannot, the record goes back to ``previous``."""
    try:
        runtime.set_node_user(node, user, password)
    except OSError:
        _restore(account, node, key, user, previous)
        raise service_error(500, "InternalError") from None


def _restore(account: Account, node: Node, key: str, current: NodeUser, previous: NodeUser | None) -> None:
    def undo() -> None:
        if node.users.get(key) is not current:
            return   # changed again meanwhile: that change stands
        if previous is None:
            del node.users[key]
        else:
            node.users[key] = previous
    change(account, undo)


# ---- operations ----

def create_node_user(account: Account, runtime: Runtime, pool_id: str, node_id: str, raw: object) -> str:
    """Add a user account to the node; returns its name. 409 NodeUserExists if the node has one so named (names
    compared case-insensitively: [inferred])."""
    body = require_object(raw)
    name = _name(body.get("name"))
    admin = body.get("isAdmin", False)
    if not isinstance(admin, bool):
        raise invalid_property("isAdmin", admin, "The value must be true or false.")
    properties = _replaceable(body)
    user = NodeUser(name, admin, properties.expiry, properties.has_password, properties.ssh_public_key)
    key = name.lower()

    def add() -> Node:
        node = _node(account, pool_id, node_id)
        if key in node.users:
            raise conflict("NodeUserExists")
        node.users[key] = user
        return node
    node = change(account, add)
    _apply(account, runtime, node, key, user, None, _password(body.get("password")))
    return name


def replace_node_user(account: Account, runtime: Runtime, pool_id: str, node_id: str, name: str,
                      raw: object) -> None:
    """Replace the user's password, SSH key and expiry time (each omitted one: removed, or the default)."""
    body = require_object(raw)
    properties = _replaceable(body)
    key = name.lower()

    def replace() -> tuple[Node, NodeUser, NodeUser]:
        node = _node(account, pool_id, node_id)
        previous = node.users.get(key)
        if previous is None:
            raise not_found("NodeUserNotFound")
        user = NodeUser(previous.name, previous.is_admin, properties.expiry, properties.has_password,
                        properties.ssh_public_key)
        node.users[key] = user
        return node, user, previous
    node, user, previous = change(account, replace)
    _apply(account, runtime, node, key, user, previous, _password(body.get("password")))


def delete_node_user(account: Account, runtime: Runtime, pool_id: str, node_id: str, name: str) -> None:
    """Delete the user account from the node: 404 NodeUserNotFound if it has none so named."""
    key = name.lower()

    def delete() -> tuple[Node, NodeUser]:
        node = _node(account, pool_id, node_id)
        user = node.users.pop(key, None)
        if user is None:
            raise not_found("NodeUserNotFound")
        return node, user
    node, user = change(account, delete)
    try:
        runtime.remove_node_user(node, user.name)
    except OSError:
        change(account, lambda: node.users.setdefault(key, user))
        raise service_error(500, "InternalError") from None


# ---- endpoints and remote login ----

def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def nat_pools(pool: Pool) -> list[dict[str, Any]]:
    """The pool's inbound NAT pools (networkConfiguration.endpointConfiguration), else the default SSH one."""
    network = pool.spec.get("networkConfiguration") or {}
    declared = (network.get("endpointConfiguration") or {}).get("inboundNATPools") or []
    return [p for p in declared if isinstance(p, dict)] or [DEFAULT_NAT_POOL]


def _login_pool(pools: list[dict[str, Any]]) -> int:
    """Which NAT pool is the remote login one: the first TCP one to port 22, else the first ([inferred]: the
    recorded node whose only NAT pool went to 3389 answered that pool's frontend port)."""
    for index, nat in enumerate(pools):
        if str(nat.get("protocol", "tcp")).lower() == "tcp" and _int(nat.get("backendPort"), 0) == SSH_PORT:
            return index
    return 0


def inbound_endpoints(pool: Pool, node: Node) -> list[dict[str, Any]]:
    """The node's InboundEndpoints: one per NAT pool, named <pool>.<i> with frontend port rangeStart + i, i the
    node's place in its pool (recorded: ruleName.0 / 15000 and ruleName.1 / 15001 for two nodes). The remote login
    endpoint shows the port that really listens once it does (node.login_port)."""
    position = list(pool.nodes).index(node.id) if node.id in pool.nodes else 0
    pools = nat_pools(pool)
    login = _login_pool(pools)
    endpoints = []
    for index, nat in enumerate(pools):
        frontend = _int(nat.get("frontendPortRangeStart"), 50000) + position
        if index == login and node.login_port is not None:
            frontend = node.login_port
        endpoints.append({"name": f"{nat.get('name')}.{position}", "protocol": str(nat.get("protocol", "tcp")).lower(),
                          "publicIPAddress": PUBLIC_IP, "publicFQDN": PUBLIC_FQDN, "frontendPort": frontend,
                          "backendPort": _int(nat.get("backendPort"), SSH_PORT)})
    return endpoints


def remote_login_settings(account: Account, runtime: Runtime, pool_id: str, node_id: str) -> dict[str, Any]:
    """{remoteLoginIPAddress, remoteLoginPort}: where a client logs in to the node (its login endpoint). On netns
    nodes the runtime forwards that port on this machine to the node's sshd from then on."""
    def endpoint() -> tuple[Node, dict[str, Any]]:
        pool = get_pool(account, pool_id)
        node = get_node(account, pool_id, node_id)
        return node, inbound_endpoints(pool, node)[_login_pool(nat_pools(pool))]
    node, login = read(account, endpoint)
    try:
        address, port = runtime.remote_login(node, login["frontendPort"], login["backendPort"])
    except OSError:
        raise service_error(500, "InternalError") from None

    def record() -> None:
        node.login_port = port
    change(account, record)
    return {"remoteLoginIPAddress": address, "remoteLoginPort": port}
