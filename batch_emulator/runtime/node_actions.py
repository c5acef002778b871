"""How a node is rebooted, reimaged, deallocated and started (service/nodes.py asks through
service.work.Runtime.restart_node; Executor.restart_node calls restart_node here), one worker thread per request:

1. wait until the node runs nothing: its running tasks stop as the request said (their runs see their stop_reason)
   or end (taskcompletion, retaineddata), and a start task still running (waitForSuccess false) stops, since the
   node is going down (Executor.run_start_task watches its state). A job preparation running for a task finishes
   first;
2. take it down: every process it still has goes. --isolation none: those whose AZ_BATCH_NODE_ID is the node's.
   netns: all but the process that holds its namespaces and mounts, sshd included, so its disk (the overlay layer)
   stays. A reimage wipes the node directory too and, on netns, makes the node anew at the same address over a fresh
   layer of the node image: what install.sh installed, the home, the host keys and /tmp are gone;
3. deallocate: the node shows deallocated and stays down. Otherwise it boots: on netns /tmp and /dev/shm are emptied
   and its sshd starts again; lastBootTime is now, it shows starting, runs the pool's start task again and is idle
   (offline if its scheduling is disabled).

Job preparation after a boot, as the REST reference says: a reimage forgets every job's preparation on the node (it
runs again before the job's next task there), a reboot or start forgets those that succeeded unless their
jobPreparationTask has rerunOnNodeRebootAfterSuccess false.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..service.state import Account, Node, Pool, utcnow
from ..service.states import NodeAction, NodeState, StartTaskState
from .isolation import NetnsNodes
from .netns_base import NodeHandle, kill_all, wait_for_file
from .netns_nodes import run_in_node, start_node, stop_node
from .processes import pids_with_marker

# A node in these states is going down (or leaving): the start task it runs stops (Executor.run_start_task).
GOING_DOWN = frozenset({NodeState.LEAVING_POOL, NodeState.REBOOTING, NodeState.REIMAGING, NodeState.DEALLOCATING})
WAIT_SECONDS = 0.1   # how often a waiting restart looks again (it is woken by every change too)
NODE_DIRECTORIES = ("workitems", "shared", "startup", "fsmounts")   # what a fresh node directory holds
NODE_ID_VARIABLE = "AZ_BATCH_NODE_ID"   # every process the emulator starts for a node has it (Executor.node_env)


class NodeHost(Protocol):
    """What a restart uses of its executor (runtime/executor.py's Executor)."""
    account: Account
    nodes: NetnsNodes | None
    stopping: threading.Event

    def spawn(self, target: Callable[..., object], *args: Any) -> None: ...

    def run_start_task(self, pool: Pool, node: Node) -> None: ...


def restart_node(host: NodeHost, node: Node, action: NodeAction) -> None:
    """Begin ``action`` on ``node`` (account lock held: the service has set its state) on a worker thread."""
    host.spawn(_restart, host, node, action)


def _restart(host: NodeHost, node: Node, action: NodeAction) -> None:
    try:
        if action != NodeAction.START:   # a deallocated node is down already
            if not _wait_until_quiet(host, node):
                return
            _go_down(host, node, action)
        if action == NodeAction.DEALLOCATE:
            _show(host.account, node, NodeState.DEALLOCATED)
            return
        _boot(host, node, action)
    except (OSError, RuntimeError) as exc:   # a node that cannot come back is unusable, as one that cannot start
        print(f"batch emulator: node {node.id} could not {action}: {exc}", file=sys.stderr, flush=True)
        _show(host.account, node, NodeState.UNUSABLE)


def _in_pool(account: Account, node: Node) -> Pool | None:
    """The node's pool while the node is still in it and not leaving (lock held), else None."""
    pool = account.pools.get(node.pool_id.lower())
    if pool is None or pool.nodes.get(node.id) is not node or node.state == NodeState.LEAVING_POOL:
        return None
    return pool


def _show(account: Account, node: Node, state: NodeState) -> None:
    with account.lock:
        if _in_pool(account, node) is not None:
            node.set_state(state)
    account.wake()


def _wait_until_quiet(host: NodeHost, node: Node) -> bool:
    """Wait until the node runs no task and no start task; False if it left its pool or the emulator stops."""
    account = host.account
    with account.changed:
        while not host.stopping.is_set():
            if _in_pool(account, node) is None:
                return False
            start_task_runs = (node.start_task_info or {}).get("state") == StartTaskState.RUNNING
            if not node.running and not start_task_runs:
                return True
            account.changed.wait(WAIT_SECONDS)
    return False


def _go_down(host: NodeHost, node: Node, action: NodeAction) -> None:
    """Every process of the node goes; a reimage takes its disk too."""
    if host.nodes is None:
        _kill_host_processes(node.id)
        if action == NodeAction.REIMAGE:
            _wipe(node.root)
    elif action == NodeAction.REIMAGE:
        _reimage_isolated(host.nodes, node)
    else:
        handle = _handle(host.nodes, node.id)
        if handle is not None:
            kill_all(handle.cgroup_dir, handle.netns, {handle.holder_pid})   # its mounts stay with the holder


def _boot(host: NodeHost, node: Node, action: NodeAction) -> None:
    """The node comes up: netns: a clean /tmp and its sshd (a reimaged node was made anew); then starting and
    its start task."""
    if host.nodes is not None and action != NodeAction.REIMAGE:
        handle = _handle(host.nodes, node.id)
        if handle is not None:
            _boot_isolated(handle)
    account = host.account
    with account.lock:
        pool = _in_pool(account, node)
        if pool is None:
            return
        _forget_preparations(account, node, action)
        node.boot_time, node.start_task_info = utcnow(), None
        node.set_state(NodeState.STARTING)
    account.wake()
    host.run_start_task(pool, node)


def _forget_preparations(account: Account, node: Node, action: NodeAction) -> None:
    """The job preparations that must run again on the node after this boot (lock held)."""
    if action == NodeAction.REIMAGE:
        node.prep_succeeded.clear()
        node.prep_failed.clear()
        return
    for job_key in list(node.prep_succeeded):
        job = account.jobs.get(job_key)
        preparation = (job.spec.get("jobPreparationTask") or {}) if job is not None else {}
        if preparation.get("rerunOnNodeRebootAfterSuccess", True) is not False:
            node.prep_succeeded.discard(job_key)


# ---- --isolation none: the node is a directory of this machine ----

def _kill_host_processes(node_id: str) -> None:
    """What is left of the node's processes (a daemon a task left behind): those started with its node id."""
    for pid in pids_with_marker(NODE_ID_VARIABLE, node_id):
        if pid != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _wipe(root: str) -> None:
    """A reimaged node's directory: empty, with the directories a new node has (its virtualenv goes too)."""
    for entry in os.scandir(root) if os.path.isdir(root) else ():
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
    for sub in NODE_DIRECTORIES:
        os.makedirs(os.path.join(root, sub), exist_ok=True)


# ---- --isolation netns: the node is a network namespace with its own root filesystem ----

def _handle(nodes: NetnsNodes, node_id: str) -> NodeHandle | None:
    with nodes.lock:
        return nodes.handles.get(node_id)


def _boot_isolated(handle: NodeHandle) -> None:
    """After its processes went: /tmp and /dev/shm empty (tmpfs, as a boot leaves them), sshd running again
    with its config and host key of the node's first start (netns_nodes.start_node)."""
    state = handle.state_dir / "state"
    cleared = run_in_node(handle, ["/bin/sh", "-c", "find /tmp /dev/shm -mindepth 1 -delete"], user="root",
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cleared.wait()
    (state / "sshd.pid").unlink(missing_ok=True)
    with open(handle.state_dir / "sshd.log", "ab") as log:
        run_in_node(handle, ["/usr/sbin/sshd", "-D", "-e", "-f", str(state / "sshd_config")], user="root",
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    wait_for_file(state / "sshd.pid", 10, f"node {handle.index} sshd")


def _reimage_isolated(nodes: NetnsNodes, node: Node) -> None:
    """The node is stopped (namespaces, layer, home, keys) and made anew at the same index, so with the same
    address and hostname, over a fresh layer and an empty node directory."""
    old = _handle(nodes, node.id)
    if old is None:
        return
    stop_node(old)
    _wipe(node.root)
    with nodes.lock:
        if nodes.closed or node.id not in nodes.roots:
            return   # the emulator stops, or the node left its pool: nothing to make again
    new = start_node(nodes.cluster, old.index, hostname=old.hostname, binds=nodes.binds(node.root))
    os.chmod(Path(node.root) / "shared", 0o1777)   # as NetnsNodes.start leaves it
    with nodes.lock:
        current = not nodes.closed and node.id in nodes.roots
        if current:
            nodes.handles[node.id] = new
    if not current:
        stop_node(new)
