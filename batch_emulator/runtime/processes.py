"""Start, watch and kill the processes of emulated nodes.

Every process gets its own session (start_new_session=True) and two marker variables
in its environment. MPICH's Hydra proxies call setsid() for every rank, so killing the
session alone would leave ranks behind; the markers, which children inherit, let us
find every descendant through /proc (Linux) however it detached.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

from ..service.states import StopReason
from .isolation import NetnsNodes, unix_user
from .node_python import host_node_environment

INSTANCE_MARKER = "BATCH_EMULATOR_INSTANCE"   # same for all processes of one emulator
RUN_MARKER = "BATCH_EMULATOR_RUN"             # one per started command line
POLL_SECONDS = 0.05

# Variables we do not pass on to task processes: anything that looks like a credential.
_SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|PASSWD|TOKEN|SAS|CONNECTION_STRING|CREDENTIAL)", re.I)


class Launcher:
    """Owns every process the emulator started, so shutdown can kill them all.

    With ``nodes`` (--isolation netns), a process given a ``node_id`` runs inside that node as the
    user its userIdentity names, with the node's environment (isolation.py), not the emulator's.
    """

    def __init__(self, nodes: NetnsNodes | None = None) -> None:
        self.nodes = nodes
        self.instance_id = uuid.uuid4().hex
        self.lock = threading.Lock()
        self.live: dict[str, subprocess.Popen[bytes]] = {}   # run id -> Popen
        self.closing = False
        # Not the emulator's Python settings (PYTHONUNBUFFERED, PYTHONPATH, ...) either: a node has none, and
        # unbuffered ranks would mix their lines mid-line.
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith(("AZURE_", "AZ_BATCH_", "PYTHON")) or _SECRET_NAME.search(k))}
        # The venv of the emulator comes first, so mpirun is its MPICH; on a node, the node's own venv comes
        # before it (node_python.py), which sees the emulator's mpi4py.
        bindir = os.path.dirname(sys.executable)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        # Hydra would ssh to the node IPs in AZ_BATCH_HOST_LIST; fork runs every rank locally.
        env["HYDRA_LAUNCHER"] = "fork"
        env[INSTANCE_MARKER] = self.instance_id
        self.base_env = env

    def start(self, command_line: str, cwd: str, env: dict[str, str], stdout_path: str, stderr_path: str,
              append: bool = False, node_id: str | None = None,
              identity: Mapping[str, Any] | None = None) -> subprocess.Popen[bytes]:
        """exec the command line without a shell, as the service does. Raises OSError if it cannot start
        (ValueError: a userIdentity isolated nodes do not emulate)."""
        argv = shlex.split(command_line)
        if not argv:
            raise FileNotFoundError("empty command line")
        run_id = uuid.uuid4().hex
        if self.nodes is not None and node_id is not None:
            return self._start_in_node(node_id, argv, unix_user(identity), cwd, env, stdout_path, stderr_path,
                                       "ab" if append else "wb", run_id)
        full_env = dict(self.base_env)
        full_env.update(env)
        if env.get("AZ_BATCH_NODE_ROOT_DIR"):   # the node's own venv: installs stay on the node
            full_env.update(host_node_environment(env["AZ_BATCH_NODE_ROOT_DIR"], full_env["PATH"]))
        full_env[RUN_MARKER] = run_id
        mode = "ab" if append else "wb"
        with open(stdout_path, mode) as out, open(stderr_path, mode) as err:
            with self.lock:
                if self.closing:
                    raise OSError("the emulator is shutting down")
                proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=out, stderr=err,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
                proc.run_id = run_id   # type: ignore[attr-defined]  # which run a process belongs to
                self.live[run_id] = proc
        return proc

    def _start_in_node(self, node_id: str, argv: list[str], user: str, cwd: str, env: dict[str, str],
                       stdout_path: str, stderr_path: str, mode: Literal["ab", "wb"],
                       run_id: str) -> subprocess.Popen[bytes]:
        assert self.nodes is not None
        with open(stdout_path, mode) as out, open(stderr_path, mode) as err:
            with self.lock:
                if self.closing:
                    raise OSError("the emulator is shutting down")
                proc = self.nodes.run(node_id, argv, user, env, cwd, out, err)
                proc.run_id = run_id   # type: ignore[attr-defined]
                self.live[run_id] = proc
        return proc

    def sweep(self, node_ids: list[str]) -> None:
        """A multi-instance task ended: on isolated nodes, kill what it left on its nodes (over SSH)."""
        if self.nodes is not None:
            self.nodes.sweep(node_ids)

    def wait(self, procs: list[subprocess.Popen[bytes]], deadline: float | None = None,
             should_stop: Callable[[], StopReason | None] = lambda: None) -> tuple[list[int | None], StopReason | None]:
        """Wait for all ``procs``; returns (exit codes, stop reason or None).

        ``deadline`` is a time.monotonic() value (maxWallClockTime); ``should_stop`` returns a
        reason string when the work must end early. On either, every process tree is killed.
        """
        reason = None
        while any(p.poll() is None for p in procs):
            expired = deadline is not None and time.monotonic() >= deadline
            reason = should_stop() or (StopReason.WALLTIME if expired else None)
            if reason or self.closing:
                reason = reason or StopReason.SHUTDOWN
                for p in procs:
                    self.kill(p)
                break
            time.sleep(POLL_SECONDS)
        codes: list[int | None] = []
        for p in procs:
            code = p.wait()
            if self.nodes is not None:
                self.nodes.end_run(p)
            with self.lock:
                self.live.pop(p.run_id, None)   # type: ignore[attr-defined]
            codes.append(code if code >= 0 else 128 - code)   # killed by signal N -> 128+N, as a shell reports
        return codes, reason

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        if self.nodes is not None and hasattr(proc, "run_cgroup"):
            self.nodes.kill_run(proc)
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in pids_with_marker(RUN_MARKER, proc.run_id):   # type: ignore[attr-defined]
            _kill_pid(pid)

    def shutdown(self) -> None:
        """Kill every process this emulator started, including detached MPI ranks."""
        with self.lock:
            self.closing = True
            procs = list(self.live.values())
        for proc in procs:
            self.kill(proc)
        for pid in pids_with_marker(INSTANCE_MARKER, self.instance_id):
            _kill_pid(pid)
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def _kill_pid(pid: int) -> None:
    if pid == os.getpid():
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def pids_with_marker(name: str, value: str) -> list[int]:
    """Pids whose environment holds name=value (empty where /proc is absent, e.g. macOS)."""
    needle = f"{name}={value}".encode()
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found
