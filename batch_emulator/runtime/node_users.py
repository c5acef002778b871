"""Node users on isolated nodes (--isolation netns): a real Unix account in the node for each user the service adds,
and the node's remote login endpoint (login_forward.py). With --isolation none nothing is made: the service answers
and no account exists.

An account is made or replaced by one root shell script run in the node (netns_nodes.run_in_node): useradd (the
name as given, upper case too: --badname), its password through chpasswd's stdin (never on a command line, in an
environment or a log) or none ('*': not locked, so sshd with UsePAM no takes its key), its SSH key as its only
~/.ssh/authorized_keys line, an admin's sudoers entry (NOPASSWD: a key-only user has no password to give sudo),
and its expiry date in /etc/shadow (a day's precision, as on a Batch Linux node). At expiryTime itself a timer
expires the account (usermod -e 1): sshd refuses it from then on, sessions already open stay. The first password
user turns the node's sshd PasswordAuthentication on (the config, then SIGHUP: sshd reloads it).

Delete ends the account's processes and removes it with its home. A reboot keeps the accounts (the node's disk
stays); a reimaged node is made anew without them, while the service still has the users on record: a replace makes
the account again (with what the replace gives), a delete answers 200.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

from ..service.state import Node, NodeUser
from .isolation import NetnsNodes
from .login_forward import Forward
from .netns_base import NodeHandle
from .netns_nodes import run_in_node

SCRIPT_SECONDS = 30
SSHD_LISTENING = "Server listening on"   # what sshd -e logs once it listens (also after a reload)
SSHD_RELOAD_SECONDS = 5.0
SUDOERS = "/etc/sudoers.d/batch-node-user-"   # + the name without '.' (sudo skips files whose name has one)

# $1 name, $2 SSH key ("" for none), $3 admin (1/0), $4 expiry day (YYYY-MM-DD, or 1: expired), $5 password (1/0):
# with a password, stdin is "name:password".
SET_USER = r"""set -e
name=$1 key=$2 admin=$3 expire=$4 password=$5
id -u "$name" >/dev/null 2>&1 || useradd --badname --create-home --shell /bin/bash "$name"
if [ "$password" = 1 ]; then chpasswd; else usermod -p '*' "$name"; fi
usermod -e "$expire" "$name"
home=$(getent passwd "$name" | cut -d: -f6)
group=$(id -g "$name")
install -d -m 700 -o "$name" -g "$group" "$home/.ssh"
if [ -n "$key" ]; then printf '%s\n' "$key"; fi > "$home/.ssh/authorized_keys"
chown "$name:$group" "$home/.ssh/authorized_keys"
chmod 600 "$home/.ssh/authorized_keys"
sudoers=/etc/sudoers.d/batch-node-user-$(printf '%s' "$name" | tr -d .)
if [ "$admin" = 1 ]; then
  printf '%s ALL=(ALL:ALL) NOPASSWD:ALL\n' "$name" > "$sudoers.tmp"
  chmod 440 "$sudoers.tmp"
  mv "$sudoers.tmp" "$sudoers"
else
  rm -f "$sudoers"
fi
"""
REMOVE_USER = r"""name=$1
pkill -KILL -u "$name" 2>/dev/null
rm -f /etc/sudoers.d/batch-node-user-$(printf '%s' "$name" | tr -d .)
id -u "$name" >/dev/null 2>&1 || exit 0
for _ in 1 2 3 4 5 6 7 8 9 10; do
  userdel --force --remove "$name" 2>/dev/null
  id -u "$name" >/dev/null 2>&1 || exit 0
  sleep 0.1   # a process of the user still exiting keeps userdel from removing it
done
exit 1
"""
EXPIRE_USER = 'id -u "$1" >/dev/null 2>&1 && usermod -e 1 "$1"'


def _expiry_day(expiry: datetime) -> str:
    """/etc/shadow's expiry: the account works until the end of the expiry's day (UTC), or "1" (1970-01-02, long
    past) when that time has passed."""
    if expiry <= datetime.now(timezone.utc):
        return "1"
    return (expiry.astimezone(timezone.utc).date() + timedelta(days=1)).isoformat()


class NodeAccounts:
    """The node users of one emulator's isolated nodes: their accounts, expiry timers and login forwards."""

    def __init__(self, nodes: NetnsNodes | None) -> None:
        self.nodes = nodes
        self.lock = threading.Lock()
        self.node_locks: dict[str, threading.Lock] = {}          # node id -> serialises its account changes
        self.timers: dict[tuple[str, str], threading.Timer] = {}   # (node id, name) -> its expiry
        self.forwards: dict[str, Forward] = {}                     # node id -> its remote login forward

    def _handle(self, node_id: str) -> NodeHandle | None:
        assert self.nodes is not None
        with self.nodes.lock:
            return self.nodes.handles.get(node_id)

    def _node_lock(self, node_id: str) -> threading.Lock:
        with self.lock:
            return self.node_locks.setdefault(node_id, threading.Lock())

    def _run(self, handle: NodeHandle, script: str, args: list[str], stdin: bytes | None = None) -> None:
        """Run SCRIPT as root in the node; OSError (with its stderr, never its stdin) when it fails."""
        proc = run_in_node(handle, ["/bin/sh", "-c", script, "sh", *args], user="root",
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, err = proc.communicate(stdin or b"", timeout=SCRIPT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise OSError(f"node user script timed out on node {handle.hostname}") from None
        if proc.returncode != 0:
            raise OSError(f"node user script failed on node {handle.hostname} ({proc.returncode}): "
                          f"{err.decode(errors='replace').strip()[-300:]}")

    # ---- the service.work.Runtime methods (Executor delegates) ----

    def set_user(self, node: Node, user: NodeUser, password: str | None) -> None:
        if self.nodes is None:
            return   # --isolation none: no account is made
        handle = self._handle(node.id)
        if handle is None:
            raise OSError(f"node {node.id} is not running")
        args = [user.name, user.ssh_public_key or "", "1" if user.is_admin else "0", _expiry_day(user.expiry),
                "1" if password else "0"]
        with self._node_lock(node.id):
            if password:
                self._allow_passwords(handle)
            self._run(handle, SET_USER, args, f"{user.name}:{password}\n".encode() if password else None)
            self._schedule_expiry(node.id, user)

    def remove_user(self, node: Node, name: str) -> None:
        self._cancel_expiry(node.id, name)
        if self.nodes is None:
            return
        handle = self._handle(node.id)
        if handle is None:
            return   # the node is gone, and its accounts with it
        with self._node_lock(node.id):
            self._run(handle, REMOVE_USER, [name])

    def remote_login(self, node: Node, frontend_port: int, backend_port: int) -> tuple[str, int]:
        if self.nodes is None:
            return "127.0.0.1", frontend_port   # [inferred] nothing listens: a node of this machine has no sshd
        self._close_forwards_of_gone_nodes()
        with self.lock:
            forward = self.forwards.get(node.id)
            if forward is None:
                forward = Forward(frontend_port, lambda: self._target(node.id, backend_port))
                self.forwards[node.id] = forward
        return "127.0.0.1", forward.port

    def close(self) -> None:
        with self.lock:
            forwards, self.forwards = list(self.forwards.values()), {}
            timers, self.timers = list(self.timers.values()), {}
        for forward in forwards:
            forward.close()
        for timer in timers:
            timer.cancel()

    # ---- helpers ----

    def _target(self, node_id: str, port: int) -> tuple[str, str, int] | None:
        handle = self._handle(node_id)
        return None if handle is None else (handle.netns, handle.ip, port)

    def _close_forwards_of_gone_nodes(self) -> None:
        assert self.nodes is not None
        with self.nodes.lock:
            live = set(self.nodes.handles)
        with self.lock:
            gone = [self.forwards.pop(node_id) for node_id in list(self.forwards) if node_id not in live]
        for forward in gone:
            forward.close()

    def _allow_passwords(self, handle: NodeHandle) -> None:
        """Password logins on the node's sshd (netns_nodes starts it with PasswordAuthentication no): the config
        says yes, and SIGHUP makes sshd read it again (the same process: it re-executes itself)."""
        state = handle.state_dir / "state"
        config = state / "sshd_config"
        text = config.read_text()
        if "PasswordAuthentication yes" in text:
            return
        config.write_text(text.replace("PasswordAuthentication no", "PasswordAuthentication yes"))
        log = handle.state_dir / "sshd.log"
        listening = log.read_text(errors="replace").count(SSHD_LISTENING)
        try:
            os.kill(int((state / "sshd.pid").read_text()), signal.SIGHUP)
        except (OSError, ValueError):
            return   # no sshd (a node going down): the next one reads the new config
        # Until the re-executed sshd listens again, a connection would meet the old listener's close.
        deadline = time.monotonic() + SSHD_RELOAD_SECONDS
        while log.read_text(errors="replace").count(SSHD_LISTENING) <= listening and time.monotonic() < deadline:
            time.sleep(0.01)

    def _schedule_expiry(self, node_id: str, user: NodeUser) -> None:
        self._cancel_expiry(node_id, user.name)
        delay = (user.expiry - datetime.now(timezone.utc)).total_seconds()
        if delay <= 0:
            return   # expired already: its shadow expiry date says so
        timer = threading.Timer(delay, self._expire, args=(node_id, user.name))
        timer.daemon = True
        with self.lock:
            self.timers[(node_id, user.name.lower())] = timer
        timer.start()

    def _cancel_expiry(self, node_id: str, name: str) -> None:
        with self.lock:
            timer = self.timers.pop((node_id, name.lower()), None)
        if timer is not None:
            timer.cancel()

    def _expire(self, node_id: str, name: str) -> None:
        with self.lock:
            self.timers.pop((node_id, name.lower()), None)
        handle = self._handle(node_id)
        if handle is None:
            return
        with self._node_lock(node_id), contextlib.suppress(OSError):
            self._run(handle, EXPIRE_USER, [name])
