"""Isolated nodes: start one node of a cluster, run a command in it as a user, kill its processes.

A node has its own network namespace (eth0 on the cluster's bridge, no default route),
hostname, IPC namespace, private /tmp and /dev/shm, its own /home/_azbatch with the
intra-pool SSH set-up Batch provisions, the cluster's /etc/hosts, and its own sshd.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .netns_base import (
    NODE_PATH,
    POOL_HOME,
    POOL_USER,
    Cluster,
    NodeHandle,
    host_run,
    kill_all,
    remove_node,
    wait_for_file,
)


def _write_node_home(home: Path, key: Path) -> None:
    """A node's /home/_azbatch with the intra-pool SSH set-up that Batch provisions."""
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    shutil.copyfile(key, ssh / "intra_pool_rsa")
    shutil.copyfile(key.with_suffix(".pub"), ssh / "authorized_keys")
    (ssh / "config").write_text(
        f"Host *\n  IdentityFile {POOL_HOME}/.ssh/intra_pool_rsa\n  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n"
    )
    user = pwd.getpwnam(POOL_USER)
    for path in (home, ssh, *ssh.iterdir()):
        os.chown(path, user.pw_uid, user.pw_gid)
        path.chmod(0o700 if path.is_dir() else 0o600)


def _sshd_config(node_dir: Path, ip: str) -> Path:
    """Config of the node's own sshd: its address, key and pid file; no root, no passwords."""
    host_run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(node_dir / "ssh_host_ed25519_key"))
    conf = node_dir / "sshd_config"
    conf.write_text(
        f"ListenAddress {ip}:22\nHostKey {node_dir}/ssh_host_ed25519_key\nPidFile {node_dir}/sshd.pid\n"
        "UsePAM no\nPermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nAuthorizedKeysFile .ssh/authorized_keys\nStrictModes yes\n"
        "X11Forwarding no\nPrintMotd no\nUseDNS no\nAcceptEnv LANG LC_*\nSubsystem sftp internal-sftp\n"
    )
    return conf



def start_node(cluster: Cluster, index: int, hostname: str | None = None) -> NodeHandle:
    """Create node INDEX (address .10+INDEX): namespaces, home, cgroup, holder process and sshd."""
    ns, ip = cluster.node_ns(index), cluster.node_ip(index)
    hostname = hostname or f"node{index}-{cluster.tag}"
    node_dir = cluster.state_dir / f"n{index}"
    node_dir.mkdir(mode=0o755)
    veth = f"{cluster.tag}n{index}"
    prefix = ipaddress.ip_network(cluster.subnet).prefixlen
    host_run("ip", "netns", "add", ns)
    host_run("ip", "-n", cluster.bridge_ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    host_run("ip", "-n", cluster.bridge_ns, "link", "set", veth, "master", "br0", "up")
    host_run("ip", "-n", ns, "addr", "add", f"{ip}/{prefix}", "dev", "eth0")
    host_run("ip", "-n", ns, "link", "set", "eth0", "up")
    host_run("ip", "-n", ns, "link", "set", "lo", "up")
    _write_node_home(node_dir / "home", cluster.state_dir / "intra_pool_rsa")
    with open(cluster.state_dir / "hosts", "a") as hosts:  # same inode: every node sees new lines
        hosts.write(f"{ip} {hostname}\n")
    cgroup = cluster.cgroup_dir / f"n{index}" if cluster.cgroup_dir else None
    if cgroup:
        cgroup.mkdir(exist_ok=True)
    q = shlex.quote
    inner = (
        f"hostname {q(hostname)} && mount -t tmpfs -o mode=1777 tmpfs /tmp"
        f" && mount -t tmpfs -o mode=1777 tmpfs /dev/shm && mount --bind {q(str(node_dir / 'home'))} {POOL_HOME}"
        f" && mount --bind {q(str(cluster.state_dir / 'hosts'))} /etc/hosts"
        f" && echo $$ > {q(str(node_dir / 'holder.tmp'))} && mv {q(str(node_dir / 'holder.tmp'))}"
        f" {q(str(node_dir / 'holder.pid'))} && exec sleep infinity"
    )
    join = 'echo $$ > "$1" && ' if cgroup else ""  # join the cgroup before /sys is remounted
    outer = join + 'exec ip netns exec "$2" unshare --uts --ipc --mount --propagation private /bin/sh -c "$3"'
    # A child of ours (not daemonised): stop_node reaps it, so no zombie is left behind.
    subprocess.Popen(
        ["/bin/sh", "-c", outer, "sh", str(cgroup / "cgroup.procs") if cgroup else "", ns, inner],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_file(node_dir / "holder.pid", 10, f"node {index} holder")
    node = NodeHandle(cluster, index, hostname, ip, ns, int((node_dir / "holder.pid").read_text()), node_dir, cgroup)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    # -D: sshd stays our child (reaped on stop); -e: its log goes to sshd.log
    with open(node_dir / "sshd.log", "ab") as log:
        run_in_node(
            node,
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(_sshd_config(node_dir, ip))],
            user="root",
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    wait_for_file(node_dir / "sshd.pid", 10, f"node {index} sshd")
    return node


def node_env(user: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A node-like environment: system PATH, the user's HOME, no virtualenv, plus ENV."""
    entry = pwd.getpwnam(user)
    base = {
        "PATH": NODE_PATH,
        "HOME": entry.pw_dir,
        "USER": user,
        "LOGNAME": user,
        "SHELL": entry.pw_shell or "/bin/sh",
        "LANG": "C.UTF-8",
    }
    return base | dict(env or {})


def run_in_node(
    node: NodeHandle,
    argv: Sequence[str],
    user: str = POOL_USER,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    cgroup: Path | None = None,
    **popen_kwargs: Any,
) -> subprocess.Popen[bytes]:
    """Start ARGV inside NODE's namespaces and cgroup (or CGROUP, a child of it) as USER, in a session
    of its own (so ``os.killpg(proc.pid, SIGKILL)`` ends its whole tree). ``popen_kwargs`` go to Popen."""
    entry = pwd.getpwnam(user)
    enter = ["nsenter", "-t", str(node.holder_pid), "-n", "-u", "-i", "-m", f"--wdns={cwd or entry.pw_dir}", "--"]
    if entry.pw_uid != 0:
        enter += ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--"]
    command = enter + list(argv)
    cgroup = cgroup or node.cgroup_dir
    if cgroup:
        command = [
            "/bin/sh",
            "-c",
            'echo $$ > "$1" && shift && exec "$@"',
            "sh",
            str(cgroup / "cgroup.procs"),
            *command,
        ]
    proc: subprocess.Popen[bytes] = subprocess.Popen(
        command, env=node_env(user, env), start_new_session=True, **popen_kwargs
    )
    return proc


def kill_node_processes(node: NodeHandle, keep_services: bool = True) -> int:
    """SIGKILL every process of NODE (users' ones too); keep its holder and sshd when asked.
    Returns how many processes were signalled."""
    keep: set[int] = set()
    if keep_services:
        keep.add(node.holder_pid)
        with contextlib.suppress(OSError, ValueError):
            keep.add(int((node.state_dir / "sshd.pid").read_text()))
    return kill_all(node.cgroup_dir, node.netns, keep)


def stop_node(node: NodeHandle) -> None:
    """Kill every process of NODE, delete its namespace and state. Idempotent."""
    remove_node(node.netns, node.cgroup_dir)
    shutil.rmtree(node.state_dir, ignore_errors=True)


