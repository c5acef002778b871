"""How emulated nodes run their processes: ``--isolation none | netns | auto``.

none   every node is this machine: processes run as the emulator's user, with its environment
       (the venv's python3 and MPICH mpirun first on PATH), node IPs are loopback addresses.
netns  every node is a Linux network namespace with its own address, hostname, root filesystem (a
       private layer over the node image), /tmp, /dev/shm, /home/_azbatch and sshd (netns_nodes.py);
       a task runs in its node as the Unix user its userIdentity names, with a node's environment.
       Needs root and the node image (tools/build_node_image.sh).
auto   netns when it can run here, none otherwise.

NetnsNodes maps the emulator's nodes (by id) to started netns nodes. Every run gets a cgroup of
its own under its node's, so killing a run kills all it started; processes that arrived over
SSH (mpirun's daemons) are in the node's sshd's cgroup and go with ``sweep`` once the
multi-instance task that owns the nodes has ended.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from .netns_base import NODE_IMAGE as NODE_IMAGE  # re-exported: the emulator's --node-image default
from .netns_base import POOL_USER, Bind, NodeHandle, check_available, image_account, kill_all, remove_cgroup
from .netns_cluster import create_cluster, stop_cluster
from .netns_nodes import kill_node_processes, run_in_node, start_node, stop_node

MODES = ("auto", "none", "netns")


class UnsupportedIdentity(ValueError):
    """A userIdentity isolated nodes do not emulate (the task fails with this message)."""


def choose_mode(requested: str, image: Path = NODE_IMAGE) -> tuple[str, str | None]:
    """(the mode to run, why netns is not used or None). Raises RuntimeError when netns was asked for
    and cannot run here."""
    if requested == "none":
        return "none", None
    reason = check_available(image)
    if reason and requested == "netns":
        raise RuntimeError(f"--isolation netns cannot run here: {reason}")
    return ("none", reason) if reason else ("netns", None)


def unix_user(identity: Mapping[str, Any] | None) -> str:
    """The Unix user a task with this userIdentity runs as on a Batch Linux node: the pool-scope
    admin auto-user is root, the pool-scope non-admin one is _azbatch."""
    identity = identity or {}
    if identity.get("userName"):
        raise UnsupportedIdentity(
            f"userIdentity.userName {identity['userName']!r}: named user accounts are not emulated on isolated "
            "nodes (--isolation netns); use a pool-scope auto-user (autoUser scope pool)")
    auto = identity.get("autoUser") or {}
    if str(auto.get("scope") or "pool").lower() != "pool":
        raise UnsupportedIdentity(
            "userIdentity.autoUser.scope 'task': task-scope auto-users are not emulated on isolated nodes "
            "(--isolation netns); use autoUser scope pool (elevationLevel admin: root, nonadmin: _azbatch)")
    return "root" if str(auto.get("elevationLevel") or "nonadmin").lower() == "admin" else POOL_USER


# AZ_BATCH_NODE_ROOT_DIR on Batch's Linux nodes: where each node sees its node directory.
NODE_ROOT_INSIDE = Path("/mnt/batch/tasks")


def _path_in_node(host_root: str) -> Callable[[str], str]:
    """Rewrites the node directory's host path (in the emulator's task variables, working directories and
    command lines) to the path the node sees it at."""
    def inside(value: str) -> str:
        return value.replace(host_root, str(NODE_ROOT_INSIDE))
    return inside


# Where tools/prefetch_node_packages.sh puts what the nodes' pip installs from (the nodes have no route
# out): outside any checkout, since a node sees neither /tmp nor a directory other users cannot enter.
NODE_PACKAGES = "/var/cache/mpi-batch-toolkit/node-packages"


class NetnsNodes:
    """The isolated nodes of one emulator: one cluster, one netns node per emulated node.

    A node sees, at the same paths, its own node directory (read/write), the prefetched node packages and
    the SHARES (read-only: e.g. the repository the job preparation clones)."""

    def __init__(self, node_packages: str | None = None, image: Path = NODE_IMAGE,
                 shares: Sequence[str] = ()) -> None:
        self.cluster = create_cluster(image=image)   # also removes what crashed instances left
        self.node_packages = node_packages
        self.shares = tuple(Bind(Path(share).resolve()) for share in shares)
        self.lock = threading.Lock()
        self.handles: dict[str, NodeHandle] = {}
        self.roots: dict[str, str] = {}   # node id -> its node directory on the host
        self.indexes = itertools.count(1)
        self.closed = False

    @property
    def description(self) -> str:
        return f"nodes on {self.cluster.subnet}, tag {self.cluster.tag}"

    def start(self, node_id: str, node_root: str) -> str:
        """Start the node of ``node_id`` (its directories under ``node_root``); returns its IP address."""
        with self.lock:
            if self.closed:
                raise OSError("the emulator is shutting down")
            index = next(self.indexes)
        handle = start_node(self.cluster, index, binds=self.binds(node_root))
        with self.lock:
            self.handles[node_id] = handle
            self.roots[node_id] = node_root
            closed = self.closed
        if closed:
            stop_node(handle)
            raise OSError("the emulator is shutting down")
        shared = os.path.join(node_root, "shared")
        if os.path.isdir(shared):
            os.chmod(shared, 0o1777)   # AZ_BATCH_NODE_SHARED_DIR: read/write for every task of the node
        return handle.ip

    def binds(self, node_root: str) -> list[Bind]:
        """What a node with its node directory at ``node_root`` sees of the host."""
        # The node directory is /mnt/batch/tasks inside, as on every Batch Linux node: the same path on every
        # node, so a path on the primary (the program in the job preparation's clone) is valid on the others.
        binds = [Bind(Path(node_root).resolve(), read_only=False, target=NODE_ROOT_INSIDE), *self.shares]
        if self.node_packages and os.path.isdir(self.node_packages):
            binds.append(Bind(Path(self.node_packages).resolve()))
        return binds

    def forget_others(self, live_ids: set[str]) -> None:
        """Stop the nodes whose emulated node has left its pool (or whose pool was deleted)."""
        with self.lock:
            gone = [self.handles.pop(node_id) for node_id in list(self.handles) if node_id not in live_ids]
            for node_id in [node_id for node_id in self.roots if node_id not in live_ids]:
                del self.roots[node_id]
        for handle in gone:
            stop_node(handle)

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The task's variables, and pip finding packages in the prefetched wheelhouse (the stand-in for the
        internet a real node has); run_in_node adds a node's PATH, HOME and the like."""
        extra = {"PIP_NO_INDEX": "1"}
        if self.node_packages:
            extra["PIP_FIND_LINKS"] = self.node_packages
        return {**extra, **env}

    def run(self, node_id: str, argv: Sequence[str], user: str, env: Mapping[str, str], cwd: str,
            stdout: BinaryIO, stderr: BinaryIO) -> subprocess.Popen[bytes]:
        """Start ``argv`` in the node as ``user``, in a cgroup of its own (``proc.run_cgroup``)."""
        with self.lock:
            handle = self.handles.get(node_id)
        if handle is None:
            raise OSError(f"node {node_id} is not running")
        if user != "root":   # the task's directories belong to the task's user, as on a node
            for path in {cwd, env.get("AZ_BATCH_TASK_DIR"), env.get("AZ_BATCH_TASK_SHARED_DIR")}:
                if path and os.path.isdir(path):
                    account = image_account(self.cluster.image, user)
                    os.chown(path, account.uid, account.gid)
        cgroup = handle.cgroup_dir / f"r{uuid.uuid4().hex[:12]}" if handle.cgroup_dir else None
        if cgroup:
            cgroup.mkdir()
        inside = _path_in_node(self.roots[node_id])
        proc = run_in_node(handle, [inside(arg) for arg in argv], user=user,
                           env={name: inside(value) for name, value in self.environment(env).items()},
                           cwd=inside(cwd), cgroup=cgroup, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        proc.run_cgroup = cgroup   # type: ignore[attr-defined]
        return proc

    @staticmethod
    def kill_run(proc: subprocess.Popen[bytes]) -> None:
        """Kill every process of one run (its session, and its cgroup however they detached)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        cgroup: Path | None = getattr(proc, "run_cgroup", None)
        if cgroup:
            kill_all(cgroup, "", set())

    @staticmethod
    def end_run(proc: subprocess.Popen[bytes]) -> None:
        """After the run's process exited: kill what it left in its cgroup, remove the cgroup."""
        cgroup: Path | None = getattr(proc, "run_cgroup", None)
        if cgroup:
            kill_all(cgroup, "", set())
            remove_cgroup(cgroup)

    def sweep(self, node_ids: Sequence[str]) -> None:
        """Kill every process on these nodes but their sshd (a multi-instance task's end: its ranks and
        mpirun's daemons, started over SSH, go with it)."""
        with self.lock:
            handles = [self.handles[node_id] for node_id in node_ids if node_id in self.handles]
        for handle in handles:
            kill_node_processes(handle, keep_services=True)

    def shutdown(self) -> None:
        """Remove every node and everything the cluster made (namespaces, layers, route)."""
        with self.lock:
            self.closed = True
            self.handles.clear()
        stop_cluster(self.cluster)

