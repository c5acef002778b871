"""Isolated nodes: one emulator instance's cluster (subnet, prohibit route, bridge, key, node image),
its tear-down, and the clean-up of what a crashed instance left (see netns_base.py).

Everything an instance creates carries its short tag and is listed under
``STATE_ROOT/<tag>/state.json`` with the instance's PID and the PID's start time, so
``cleanup_stale()`` removes what a crashed instance left without touching a live one's.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from .netns_base import (
    NODE_IMAGE,
    NS_PREFIX,
    POOL_USER,
    STATE_ROOT,
    SUBNET_CANDIDATES,
    Cluster,
    cgroup2_root,
    check_available,
    host_run,
    kill_all,
    remove_cgroup,
    remove_node,
    start_time_of,
)


def _route_destinations() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Destinations of every non-default IPv4 route of the host (all tables) and its addresses."""
    found = []
    for line in host_run("ip", "-4", "route", "show", "table", "all").stdout.splitlines():
        words = line.split()
        while words and words[0] in (
            "local",
            "broadcast",
            "unicast",
            "unreachable",
            "prohibit",
            "blackhole",
            "multicast",
            "anycast",
            "throw",
            "nat",
        ):
            words = words[1:]
        if words and words[0] != "default":
            found.append(ipaddress.ip_network(words[0], strict=False))
    for line in host_run("ip", "-4", "-o", "addr", "show").stdout.splitlines():
        found.append(ipaddress.ip_interface(line.split()[3]).network)
    return found


def subnet_is_free(subnet: str) -> bool:
    """True when no host address or route covers SUBNET and `ip route get` only finds the default."""
    net = ipaddress.ip_network(subnet)
    if any(net.overlaps(other) for other in _route_destinations()):
        return False
    got = host_run("ip", "route", "get", str(net[10]), check=False)
    return got.returncode != 0 or (" via " in got.stdout and not got.stdout.startswith("local"))


def pick_subnet(candidates: Sequence[str] = SUBNET_CANDIDATES) -> str:
    """The first candidate /24 that is neither assigned nor routed on the host."""
    for subnet in candidates:
        if subnet_is_free(subnet):
            return subnet
    raise RuntimeError(f"no free subnet among {', '.join(candidates)}")


@contextlib.contextmanager
def _host_lock() -> Iterator[None]:
    """Serialise cluster set-up and tear-down of every instance on the machine."""
    STATE_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(STATE_ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield



def create_cluster(tag: str | None = None, subnet: str | None = None, image: Path = NODE_IMAGE) -> Cluster:
    """Clean up after crashed instances, then set up a new instance's bridge, route and keys. The nodes' users
    are the node image's: nothing is added to the host's accounts."""
    reason = check_available(image)
    if reason:
        raise RuntimeError(reason)
    cleanup_stale()
    tag = tag or secrets.token_hex(3)
    if not re.fullmatch(r"[a-z0-9]{1,8}", tag):
        raise ValueError("tag: 1-8 lowercase letters or digits")
    with _host_lock():
        state_dir = STATE_ROOT / tag
        if state_dir.exists():
            raise RuntimeError(f"instance tag {tag!r} is in use ({state_dir})")
        subnet = subnet or pick_subnet()
        if not subnet_is_free(subnet):
            raise RuntimeError(f"subnet {subnet} is assigned or routed on this host")
        cg_root = cgroup2_root()
        cluster = Cluster(tag, subnet, state_dir, cg_root / f"batch-emulator-{tag}" if cg_root else None, image)
        state_dir.mkdir(mode=0o755)
        state = {
            "pid": os.getpid(),
            "start_time": start_time_of(os.getpid()),
            "subnet": subnet,
            "cgroup_dir": str(cluster.cgroup_dir or ""),
        }
        (state_dir / "state.json").write_text(json.dumps(state))
        host_run("ip", "route", "replace", "prohibit", subnet)  # nothing on the host may send there
    if cluster.cgroup_dir:
        cluster.cgroup_dir.mkdir(exist_ok=True)
    host_run("ip", "netns", "add", cluster.bridge_ns)
    host_run("ip", "-n", cluster.bridge_ns, "link", "add", "br0", "type", "bridge")
    host_run("ip", "-n", cluster.bridge_ns, "link", "set", "br0", "up")
    key = state_dir / "intra_pool_rsa"
    host_run("ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-C", f"{POOL_USER}@pool", "-f", str(key))
    (state_dir / "hosts").write_text("127.0.0.1 localhost\n")
    return cluster



def _teardown(tag: str) -> None:
    """Remove everything of instance TAG, from its state directory and the names it used."""
    state_dir = STATE_ROOT / tag
    try:
        state = json.loads((state_dir / "state.json").read_text())
    except (OSError, ValueError):
        state = {}
    cg_dir = Path(state["cgroup_dir"]) if state.get("cgroup_dir") else None
    mine = [n for n in host_run("ip", "netns", "list").stdout.split() if n.startswith(f"{NS_PREFIX}{tag}-")]
    for ns in mine:
        node_cg = cg_dir / ns.rsplit("-", 1)[1] if cg_dir and not ns.endswith("-br") else None
        remove_node(ns, node_cg)
    if cg_dir:
        kill_all(cg_dir, "", set())
        remove_cgroup(cg_dir)
    with _host_lock():
        if state.get("subnet"):
            host_run("ip", "route", "del", "prohibit", state["subnet"], check=False)
        shutil.rmtree(state_dir, ignore_errors=True)


def stop_cluster(cluster: Cluster) -> None:
    """Remove all nodes (their layers too), the bridge and the host route of CLUSTER. Idempotent."""
    _teardown(cluster.tag)


def cleanup_stale() -> list[str]:
    """Tear down instances whose recorded PID is dead (or reused), and orphan namespaces.
    Returns the tags removed."""
    if not STATE_ROOT.is_dir():
        return []
    stale = []
    with _host_lock():  # a live instance writes its state.json under this lock
        stale = _stale_tags()
    for tag in stale:
        _teardown(tag)
    return stale


def _stale_tags() -> list[str]:
    stale = []
    for state_dir in STATE_ROOT.iterdir():
        if not state_dir.is_dir() or state_dir.name == "users":
            continue
        try:
            state = json.loads((state_dir / "state.json").read_text())
            alive = start_time_of(int(state["pid"])) == state["start_time"]
        except (OSError, ValueError, KeyError):
            alive = False
        if not alive:
            stale.append(state_dir.name)
    for ns in host_run("ip", "netns", "list").stdout.split():
        tag = ns[len(NS_PREFIX) :].split("-")[0]
        if ns.startswith(NS_PREFIX) and tag and not (STATE_ROOT / tag).exists() and tag not in stale:
            stale.append(tag)
    return stale
