"""Node users, remote login settings and a node's endpointConfiguration against `python -m batch_emulator`
(--isolation none: the service's answers; no account is made on this machine, test_emulator_node_users_isolated.py
has the real accounts).

Recordings (Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/; abbreviations used below):
  PY-user     test_batch.pyTestBatchtest_batch_compute_node_user[sync].json: add 201 (DataServiceId and Location
              naming the user), replace 200 (DataServiceId), delete 200 (neither), remote login settings 200
              {remoteLoginIPAddress, remoteLoginPort} = the node's endpoint's publicIPAddress and frontendPort
  PY-network  test_batch.pyTestBatchtest_batch_network_configuration[sync].json: a pool's inboundNATPools show on
              its node as "<name>.0" with frontendPortRangeStart as frontendPort
Where no recording shows a behaviour (the refusals), the tests follow the REST reference (2025-06-01) and the Batch
error-code list (NodeUserExists, NodeUserNotFound).
"""

import datetime

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError

from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from tests.conftest import wait_for
from tests.e2e.recorded_client import add_pool

pytestmark = pytest.mark.e2e
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvm1KpZmIxmcJVnk1GUtYXyBOEgOZ3KWwL4sBNnchkD test@example"
SECRET = "Not-a-real-password-1!"


@pytest.fixture(scope="module")
def client(emulator):
    return BatchClient(emulator, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY), retry_total=0)


def idle_nodes(raw, pool_id, count):
    return wait_for(lambda: (nodes := [n for n in raw("GET", f"/pools/{pool_id}/nodes").json["value"]
                                       if n["state"] == "idle"]) and len(nodes) == count and nodes,
                    what=f"{count} idle node(s)")


@pytest.fixture(scope="module")
def node(raw):
    """(pool id, node id) of an idle node of a one-node pool."""
    pool_id = add_pool(raw, targetDedicatedNodes=1)
    return pool_id, idle_nodes(raw, pool_id, 1)[0]["id"]


def refusal(call):
    with pytest.raises(HttpResponseError) as caught:
        call()
    return caught.value.status_code, caught.value.error.code


def test_a_user_added_replaced_and_deleted_through_the_sdk(client, node):
    pool_id, node_id = node
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)
    client.create_node_user(pool_id, node_id, m.BatchNodeUserCreateOptions(
        name="debug-1", is_admin=True, expiry_time=expiry, ssh_public_key=KEY))
    client.replace_node_user(pool_id, node_id, "debug-1", m.BatchNodeUserReplaceOptions(password=SECRET))
    settings = client.get_node_remote_login_settings(pool_id, node_id)
    assert (settings.remote_login_ip_address, settings.remote_login_port) == ("127.0.0.1", 50000)
    client.delete_node_user(pool_id, node_id, "debug-1")
    assert refusal(lambda: client.delete_node_user(pool_id, node_id, "debug-1")) == (404, "NodeUserNotFound")


def test_the_answers_are_the_recorded_ones(raw, node):
    """PY-user: the statuses and headers of add, replace, delete and remote login settings."""
    pool_id, node_id = node
    users = f"/pools/{pool_id}/nodes/{node_id}/users"
    added = raw("POST", users, {"name": "BatchPythonSDKUser", "password": SECRET, "isAdmin": False})
    assert (added.status, added.raw) == (201, b"")
    assert added.headers["DataServiceId"] == f"{raw.base}{users}/BatchPythonSDKUser" == added.headers["Location"]
    assert "ETag" not in added.headers and "Last-Modified" not in added.headers
    replaced = raw("PUT", f"{users}/BatchPythonSDKUser", {"password": SECRET})
    assert (replaced.status, replaced.raw) == (200, b"")
    assert replaced.headers["DataServiceId"] == f"{raw.base}{users}/BatchPythonSDKUser"
    login = raw("GET", f"/pools/{pool_id}/nodes/{node_id}/remoteloginsettings")
    assert login.status == 200
    assert login.headers["DataServiceId"] == f"{raw.base}/pools/{pool_id}/nodes/{node_id}/remoteloginsettings"
    assert login.json == {
        "odata.metadata": f"{raw.base}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.RemoteLoginSettings",
        "remoteLoginIPAddress": "127.0.0.1", "remoteLoginPort": 50000}
    deleted = raw("DELETE", f"{users}/BatchPythonSDKUser")
    assert (deleted.status, deleted.raw) == (200, b"")
    assert "DataServiceId" not in deleted.headers
    assert SECRET.encode() not in added.raw + replaced.raw + login.raw


def test_the_refusals(raw, client, node):
    pool_id, node_id = node
    users = f"/pools/{pool_id}/nodes/{node_id}/users"

    def code(answer):
        return answer.status, answer.json["code"]

    assert raw("POST", users, {"name": "twice"}).status == 201
    assert code(raw("POST", users, {"name": "twice"})) == (409, "NodeUserExists")
    assert code(raw("POST", users, {"name": "TWICE"})) == (409, "NodeUserExists")   # [inferred] case-insensitive
    assert code(raw("PUT", f"{users}/nobody", {})) == (404, "NodeUserNotFound")
    assert code(raw("DELETE", f"{users}/nobody")) == (404, "NodeUserNotFound")
    assert code(raw("POST", users, {"isAdmin": True})) == (400, "MissingRequiredProperty")
    too_long = raw("POST", users, {"name": "u" * 21})
    assert code(too_long) == (400, "InvalidPropertyValue")
    assert {"key": "PropertyName", "value": "name"} in too_long.json["values"]
    assert raw("POST", users, {"name": "u" * 20}).status == 201                     # 20 characters: allowed
    assert code(raw("POST", users, {"name": "bad", "sshPublicKey": "not a key"})) == (400, "InvalidPropertyValue")
    assert code(raw("POST", users, {"name": "bad", "sshPublicKey": KEY + "\nssh-rsa AAAA"})) == \
        (400, "InvalidPropertyValue")                                                # one line: one key
    bad_password = raw("POST", users, {"name": "bad", "password": SECRET + "\nroot:x"})
    assert code(bad_password) == (400, "InvalidPropertyValue") and SECRET.encode() not in bad_password.raw
    assert code(raw("POST", users, {"name": "bad", "expiryTime": "tomorrow"})) == (400, "InvalidPropertyValue")
    assert code(raw("POST", f"/pools/{pool_id}/nodes/tvmps_nonode_d/users", {"name": "x"})) == (404, "NodeNotFound")
    assert code(raw("POST", "/pools/nopool/nodes/tvmps_nonode_d/users", {"name": "x"})) == (404, "PoolNotFound")
    assert refusal(lambda: client.create_node_user(pool_id, node_id, m.BatchNodeUserCreateOptions(name="twice"))) \
        == (409, "NodeUserExists")


def test_no_user_changes_on_a_node_that_is_neither_idle_nor_running(raw):
    """The REST reference: users are added, replaced and deleted only while the node is idle or running."""
    pool_id = add_pool(raw, targetDedicatedNodes=1)
    node_id = idle_nodes(raw, pool_id, 1)[0]["id"]
    users = f"/pools/{pool_id}/nodes/{node_id}/users"
    assert raw("POST", users, {"name": "kept"}).status == 201
    assert raw("POST", f"/pools/{pool_id}/nodes/{node_id}/deallocate").status == 202
    wait_for(lambda: raw("GET", f"/pools/{pool_id}/nodes/{node_id}").json["state"] == "deallocated",
             what="the node deallocated")
    for method, path, body in (("POST", users, {"name": "new"}), ("PUT", f"{users}/kept", {}),
                               ("DELETE", f"{users}/kept", None)):
        answer = raw(method, path, body)
        assert (answer.status, answer.json["code"]) == (409, "OperationInvalidForCurrentState"), (method, answer)


def test_endpoint_configuration_by_default_and_from_the_pool(raw):
    """A node of a pool without inboundNATPools shows no endpointConfiguration (the recorded .NET nodes, 2025-06-01)
    and logs in at its default SSH endpoint (frontend 50000 + i: [inferred]); a pool's own inboundNATPools show on
    its nodes as PY-network shows them."""
    pool_id = add_pool(raw, targetDedicatedNodes=2)
    nodes = idle_nodes(raw, pool_id, 2)
    assert [n for n in nodes if "endpointConfiguration" in n] == []
    ports = sorted(raw("GET", f"/pools/{pool_id}/nodes/{n['id']}/remoteloginsettings").json["remoteLoginPort"]
                   for n in nodes)
    assert ports == [50000, 50001]

    nat = {"name": "TestEndpointConfig", "protocol": "udp", "backendPort": 64444, "frontendPortRangeStart": 60000,
           "frontendPortRangeEnd": 61000,
           "networkSecurityGroupRules": [{"priority": 150, "access": "allow", "sourceAddressPrefix": "*"}]}
    pool_id = add_pool(raw, targetDedicatedNodes=1, networkConfiguration={"endpointConfiguration": {
        "inboundNATPools": [nat]}})
    node = idle_nodes(raw, pool_id, 1)[0]
    one = raw("GET", f"/pools/{pool_id}/nodes/{node['id']}").json
    assert one["endpointConfiguration"] == {"inboundEndpoints": [{
        "name": "TestEndpointConfig.0", "protocol": "udp", "publicIPAddress": "127.0.0.1", "publicFQDN": "localhost",
        "frontendPort": 60000, "backendPort": 64444}]}
