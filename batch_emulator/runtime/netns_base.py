"""Isolated nodes (--isolation netns), the shared part: names, handles, host commands, killing.

A node is a Linux network namespace (own address on a private bridge) run with its own
UTS, IPC and mount namespaces, its own root filesystem (a private overlayfs layer over the
node image that tools/build_node_image.sh makes), an sshd and a cgroup v2 directory that holds
every process of the node (netns_nodes.py). The nodes of one emulator instance form a cluster
(netns_cluster.py): a tag in every name, a subnet, a state directory under STATE_ROOT.
Stdlib only; needs root.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

STATE_ROOT = Path("/run/batch-emulator-nodes")
POOL_USER = "_azbatch"
POOL_HOME = Path("/home") / POOL_USER
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where tools/build_node_image.sh puts the node image (the emulator's --node-image default).
NODE_IMAGE = Path("/var/cache/mpi-batch-toolkit/node-image")
IMAGE_STAMP = ".node-image"   # written last by the build: an image without it is incomplete
SUBNET_CANDIDATES = ("198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/24", "198.19.0.0/24")
NS_PREFIX = "azb-"
_TOOLS = ("ip", "unshare", "nsenter", "mount", "chroot", "ssh-keygen")

@dataclass(frozen=True)
class Cluster:
    """The nodes of one emulator instance: its tag, private subnet, state directory and node image."""

    tag: str
    subnet: str
    state_dir: Path
    cgroup_dir: Path | None
    image: Path = NODE_IMAGE

    @property
    def bridge_ns(self) -> str:
        return f"{NS_PREFIX}{self.tag}-br"

    def node_ns(self, index: int) -> str:
        return f"{NS_PREFIX}{self.tag}-n{index}"

    def node_ip(self, index: int) -> str:
        return str(ipaddress.ip_network(self.subnet)[10 + index])


@dataclass(frozen=True)
class NodeHandle:
    """One started node: where it lives and the PID of the process holding its namespaces."""

    cluster: Cluster
    index: int
    hostname: str
    ip: str
    netns: str
    holder_pid: int
    state_dir: Path
    cgroup_dir: Path | None


@dataclass(frozen=True)
class Bind:
    """A host directory a node sees: at ``target``, or at the same path (the prefetched packages, shares)."""

    path: Path
    read_only: bool = True
    target: Path | None = None

    @property
    def inside(self) -> Path:
        return self.target or self.path


@dataclass(frozen=True)
class ImageAccount:
    """A Unix account of the node image (the nodes' /etc/passwd, not the host's)."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str


def image_account(image: Path, name: str) -> ImageAccount:
    """NAME's entry in the node image's /etc/passwd. Raises KeyError when the image has no such user."""
    for line in (image / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) == 7 and fields[0] == name:
            return ImageAccount(name, int(fields[2]), int(fields[3]), fields[5], fields[6] or "/bin/sh")
    raise KeyError(f"user {name} is not in the node image {image}")


def host_run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a host command, capture its output; raise with its stderr when check fails."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def cgroup2_root() -> Path | None:
    """A writable cgroup v2 mount (``/sys/fs/cgroup`` or the hybrid ``.../unified``), or None."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[0] == "cgroup2":
            mount = Path(left.split()[4])
            if os.access(mount, os.W_OK) and (mount / "cgroup.procs").exists():
                return mount
    return None


def check_available(image: Path = NODE_IMAGE) -> str | None:
    """None when isolated nodes can run here, else a one-line reason why not."""
    if os.geteuid() != 0:
        return "isolated nodes need root (network namespaces, mounts, cgroups)"
    missing = [tool for tool in _TOOLS if shutil.which(tool, path=NODE_PATH) is None]
    if missing:
        return "missing tools: " + ", ".join(missing)
    if not (image / IMAGE_STAMP).is_file():
        return f"no node image in {image}: run tools/build_node_image.sh as root"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlayfs (modprobe overlay)"
    if host_run("ip", "netns", "list", check=False).returncode != 0:
        return "`ip netns` does not work here"
    return None



def start_time_of(pid: int) -> str | None:
    """The kernel start time of PID (guards against PID reuse), or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None



def wait_for_file(path: Path, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what} ({path})")
        time.sleep(0.01)



def _pids_in_netns(netns: str) -> list[int]:
    """PIDs whose network namespace is the named one (a fallback that needs no cgroup)."""
    try:
        wanted = os.stat(f"/run/netns/{netns}").st_ino
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry}/ns/net").st_ino == wanted:
                    found.append(int(entry))
    return found


def _cgroup_pids(cgroup: Path | None) -> list[int]:
    """PIDs in CGROUP and in its child cgroups (one per task run)."""
    found: list[int] = []
    if cgroup:
        for directory, _, _ in os.walk(cgroup):
            with contextlib.suppress(OSError):
                found += [int(p) for p in (Path(directory) / "cgroup.procs").read_text().split()]
    return found


def remove_cgroup(cgroup: Path) -> None:
    """rmdir CGROUP and its children, deepest first (a killed process leaves it a moment after it dies)."""
    for directory, _, _ in sorted(os.walk(cgroup), key=lambda entry: -len(entry[0])):
        for _ in range(100):
            try:
                Path(directory).rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)


def kill_all(cgroup: Path | None, netns: str, keep: set[int]) -> int:
    """Kill a node's processes by cgroup (freeze, kill, thaw; or cgroup.kill) then by netns."""
    count = 0
    for _ in range(50):
        pids = [p for p in set(_cgroup_pids(cgroup)) | set(_pids_in_netns(netns)) if p not in keep]
        if not pids:
            return count
        if cgroup and not keep and (cgroup / "cgroup.kill").exists():
            (cgroup / "cgroup.kill").write_text("1")
        elif cgroup and (cgroup / "cgroup.freeze").exists():
            (cgroup / "cgroup.freeze").write_text("1")  # no forks while we kill
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        count += len(pids)
        _reap(pids)
        if cgroup and (cgroup / "cgroup.freeze").exists():
            (cgroup / "cgroup.freeze").write_text("0")
        time.sleep(0.02)
    raise RuntimeError(f"processes of {netns} survive SIGKILL")


def _reap(pids: Sequence[int]) -> None:
    """Collect those of PIDS that are our children (holders, sshd, nsenter wrappers)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            for _ in range(50):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
                time.sleep(0.002)


def remove_node(netns: str, cgroup: Path | None) -> None:
    kill_all(cgroup, netns, set())
    host_run("ip", "netns", "del", netns, check=False)  # takes its veth (and the bridge port) along
    if cgroup:
        remove_cgroup(cgroup)

