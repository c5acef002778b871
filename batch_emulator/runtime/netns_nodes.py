"""Isolated nodes: start one node of a cluster, run a command in it as a user, kill its processes.

A node has its own network namespace (eth0 on the cluster's bridge, no default route),
hostname, IPC namespace and root filesystem: an overlayfs mount, in the node's own mount
namespace, of a private layer over the node image, so what apt and pip install on a node stays
on that node and goes with it. Over that: private /tmp, /run and /dev/shm, its own
/home/_azbatch with the intra-pool SSH set-up Batch provisions, the cluster's /etc/hosts, the
host directories it is given (Bind: its node directory, the prefetched packages) at the same
paths, and its own sshd, the image's.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
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
    Bind,
    Cluster,
    ImageAccount,
    NodeHandle,
    host_run,
    image_account,
    kill_all,
    remove_node,
    wait_for_file,
)


def _write_node_home(home: Path, key: Path, user: ImageAccount) -> None:
    """A node's /home/_azbatch with the intra-pool SSH set-up that Batch provisions."""
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    shutil.copyfile(key, ssh / "intra_pool_rsa")
    shutil.copyfile(key.with_suffix(".pub"), ssh / "authorized_keys")
    (ssh / "config").write_text(
        f"Host *\n  IdentityFile {POOL_HOME}/.ssh/intra_pool_rsa\n  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n"
    )
    for path in (home, ssh, *ssh.iterdir()):
        os.chown(path, user.uid, user.gid)
        path.chmod(0o700 if path.is_dir() else 0o600)


def _sshd_config(ssh_dir: Path, ip: str) -> Path:
    """Config of the node's own sshd: its address, key and pid file; no root, no passwords. SSH_DIR (the
    node's state directory) is bound into the node at the same path, so the host reads the pid file the
    node's sshd writes."""
    host_run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh_dir / "ssh_host_ed25519_key"))
    conf = ssh_dir / "sshd_config"
    conf.write_text(
        f"ListenAddress {ip}:22\nHostKey {ssh_dir}/ssh_host_ed25519_key\nPidFile {ssh_dir}/sshd.pid\n"
        "UsePAM no\nPermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nAuthorizedKeysFile .ssh/authorized_keys\nStrictModes yes\n"
        "X11Forwarding no\nPrintMotd no\nUseDNS no\nAcceptEnv LANG LC_*\nSubsystem sftp internal-sftp\n"
    )
    return conf



def _mount_script(cluster: Cluster, node_dir: Path, hostname: str, binds: Sequence[Bind]) -> str:
    """What the node's holder runs in its new mount namespace: the root filesystem (overlayfs over
    the image), the kernel's file systems, the node's own directories, then chroot into it."""
    q = shlex.quote
    root = node_dir / "root"
    lines = [
        "set -e",
        f"hostname {q(hostname)}",
        f"mount -t overlay overlay -o lowerdir={q(str(cluster.image))},upperdir={q(str(node_dir / 'layer'))},"
        f"workdir={q(str(node_dir / 'work'))} {q(str(root))}",
        f"mount -t proc proc {q(str(root / 'proc'))}",
        f"mount --rbind /sys {q(str(root / 'sys'))}",   # this netns's sysfs, as `ip netns exec` mounted it
        f"mount --rbind /dev {q(str(root / 'dev'))}",
        f"mount -t tmpfs -o mode=1777 tmpfs {q(str(root / 'dev/shm'))}",
        f"mount -t tmpfs -o mode=1777 tmpfs {q(str(root / 'tmp'))}",
        f"mount -t tmpfs -o mode=755 tmpfs {q(str(root / 'run'))}",
        f"mkdir -p {q(str(root / 'run/sshd'))} {q(str(root / 'run/lock'))}",
        f"touch {q(str(root / 'etc/hosts'))}",   # the mount point (a debootstrapped image may have none)
        f"mount --bind {q(str(cluster.state_dir / 'hosts'))} {q(str(root / 'etc/hosts'))}",
        f"mount --bind {q(str(node_dir / 'home'))} {q(str(root)) + str(POOL_HOME)}",
    ]
    for bind in [Bind(node_dir / "state", read_only=False), *binds]:
        target = q(str(root) + str(bind.inside))
        lines += [f"mkdir -p {target}", f"mount --bind {q(str(bind.path))} {target}"]
        if bind.read_only:
            lines.append(f"mount -o remount,bind,ro {target}")
    # The pid is written from inside the chroot, so a process that enters the node after it finds its root.
    holder_tmp, holder_pid = q(str(node_dir / "state" / "holder.tmp")), q(str(node_dir / "state" / "holder.pid"))
    inside = f"echo $$ > {holder_tmp} && mv {holder_tmp} {holder_pid} && exec sleep infinity"
    lines.append(f"exec chroot {q(str(root))} /bin/sh -c {q(inside)}")
    return "\n".join(lines)


def start_node(cluster: Cluster, index: int, hostname: str | None = None, binds: Sequence[Bind] = ()) -> NodeHandle:
    """Create node INDEX (address .10+INDEX): namespaces, root filesystem, home, cgroup, holder process
    and sshd. BINDS: host directories the node sees at the same paths."""
    ns, ip = cluster.node_ns(index), cluster.node_ip(index)
    hostname = hostname or f"node{index}-{cluster.tag}"
    node_dir = cluster.state_dir / f"n{index}"
    node_dir.mkdir(mode=0o755)
    for sub in ("layer", "work", "root"):   # overlayfs's upper and work directories, the mount point
        (node_dir / sub).mkdir(mode=0o755)
    (node_dir / "state").mkdir(mode=0o700)   # what the host and the node both read (pids, sshd's files)
    veth = f"{cluster.tag}n{index}"
    prefix = ipaddress.ip_network(cluster.subnet).prefixlen
    host_run("ip", "netns", "add", ns)
    host_run("ip", "-n", cluster.bridge_ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    host_run("ip", "-n", cluster.bridge_ns, "link", "set", veth, "master", "br0", "up")
    host_run("ip", "-n", ns, "addr", "add", f"{ip}/{prefix}", "dev", "eth0")
    host_run("ip", "-n", ns, "link", "set", "eth0", "up")
    host_run("ip", "-n", ns, "link", "set", "lo", "up")
    _write_node_home(node_dir / "home", cluster.state_dir / "intra_pool_rsa", image_account(cluster.image, POOL_USER))
    sshd_config = _sshd_config(node_dir / "state", ip)
    with open(cluster.state_dir / "hosts", "a") as hosts:  # same inode: every node sees new lines
        hosts.write(f"{ip} {hostname}\n")
    cgroup = cluster.cgroup_dir / f"n{index}" if cluster.cgroup_dir else None
    if cgroup:
        cgroup.mkdir(exist_ok=True)
    join = 'echo $$ > "$1" && ' if cgroup else ""  # join the cgroup before /sys is remounted
    outer = join + 'exec ip netns exec "$2" unshare --uts --ipc --mount --propagation private /bin/sh -c "$3"'
    # A child of ours (not daemonised): stop_node reaps it, so no zombie is left behind. Its mounts live in
    # its mount namespace only: they go when the node's last process does.
    with open(node_dir / "holder.log", "wb") as holder_log:
        subprocess.Popen(
            ["/bin/sh", "-c", outer, "sh", str(cgroup / "cgroup.procs") if cgroup else "", ns,
             _mount_script(cluster, node_dir, hostname, binds)],
            stdin=subprocess.DEVNULL,
            stdout=holder_log,
            stderr=holder_log,
            start_new_session=True,
        )
    try:
        wait_for_file(node_dir / "state" / "holder.pid", 10, f"node {index} holder")
    except RuntimeError as error:
        raise RuntimeError(f"{error}: {(node_dir / 'holder.log').read_text().strip()[-400:]}") from None
    holder = int((node_dir / "state" / "holder.pid").read_text())
    node = NodeHandle(cluster, index, hostname, ip, ns, holder, node_dir, cgroup)
    # -D: sshd stays our child (reaped on stop); -e: its log goes to sshd.log
    with open(node_dir / "sshd.log", "ab") as log:
        run_in_node(
            node,
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(sshd_config)],
            user="root",
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    wait_for_file(node_dir / "state" / "sshd.pid", 10, f"node {index} sshd")
    return node


def node_env(account: ImageAccount, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A node-like environment: system PATH, the user's HOME, no virtualenv, plus ENV."""
    base = {
        "PATH": NODE_PATH,
        "HOME": account.home,
        "USER": account.name,
        "LOGNAME": account.name,
        "SHELL": account.shell,
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
    """Start ARGV inside NODE's namespaces, root filesystem and cgroup (or CGROUP, a child of it) as USER (an
    account of the node image), in a session of its own (so ``os.killpg(proc.pid, SIGKILL)`` ends its whole
    tree). ``popen_kwargs`` go to Popen."""
    account = image_account(node.cluster.image, user)
    # -r: the holder's root (the node's filesystem); --wdns: CWD there. setpriv is the image's.
    enter = ["nsenter", "-t", str(node.holder_pid), "-n", "-u", "-i", "-m", "-r", f"--wdns={cwd or account.home}", "--"]
    if account.uid != 0:
        enter += ["setpriv", f"--reuid={account.uid}", f"--regid={account.gid}", "--init-groups", "--"]
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
        command, env=node_env(account, env), start_new_session=True, **popen_kwargs
    )
    return proc


def kill_node_processes(node: NodeHandle, keep_services: bool = True) -> int:
    """SIGKILL every process of NODE (users' ones too); keep its holder and sshd when asked.
    Returns how many processes were signalled."""
    keep: set[int] = set()
    if keep_services:
        keep.add(node.holder_pid)
        with contextlib.suppress(OSError, ValueError):
            keep.add(int((node.state_dir / "state" / "sshd.pid").read_text()))
    return kill_all(node.cgroup_dir, node.netns, keep)


def stop_node(node: NodeHandle) -> None:
    """Kill every process of NODE, delete its namespace and state. Idempotent."""
    remove_node(node.netns, node.cgroup_dir)
    shutil.rmtree(node.state_dir, ignore_errors=True)


