"""The remote login endpoint of an isolated node: a port on this machine forwarded to the node's sshd, as the pool's
load balancer forwards a frontend port to a node's port 22 (its InboundEndpoint).

The host cannot reach a node's address (netns_cluster.py routes the nodes' subnet to "prohibit"), so each accepted
connection is joined to a socket made inside the node's network namespace: a short-lived thread enters it
(setns(2) changes only the calling thread's namespace), connects, and leaves; the socket stays in that namespace.
Two threads then copy bytes each way until both sides have closed. The node is looked up at each connection, so a
rebooted or reimaged node (same namespace name, same address) is reached again.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import threading
from collections.abc import Callable

CLONE_NEWNET = 0x40000000
CONNECT_SECONDS = 10.0
LISTEN_ADDRESS = "127.0.0.1"
CHUNK = 65536

_libc = ctypes.CDLL(None, use_errno=True)

# Where a connection goes: (network namespace name, address, port), or None when the node is gone.
Target = Callable[[], "tuple[str, str, int] | None"]


def connect_in_netns(netns: str, address: str, port: int) -> socket.socket:
    """A TCP connection to ADDRESS:PORT made inside the named network namespace (/run/netns/NETNS)."""
    result: dict[str, socket.socket | OSError] = {}

    def enter_and_connect() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    error = ctypes.get_errno()
                    raise OSError(error, f"setns into {netns}: {os.strerror(error)}")
            finally:
                os.close(fd)
            result["socket"] = socket.create_connection((address, port), CONNECT_SECONDS)
        except OSError as exc:
            result["error"] = exc

    thread = threading.Thread(target=enter_and_connect, name=f"connect-{netns}", daemon=True)
    thread.start()
    thread.join()
    made = result.get("socket")
    if not isinstance(made, socket.socket):
        error = result.get("error")
        raise error if isinstance(error, OSError) else OSError(f"could not connect in {netns}")
    made.settimeout(None)
    return made


def _copy(source: socket.socket, sink: socket.socket, done: Callable[[], None]) -> None:
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        done()


class Forward:
    """127.0.0.1:PORT forwarded to wherever ``target`` says, until closed. PORT is ``wanted`` when it is free
    (the endpoint's frontend port), else one the kernel picks."""

    def __init__(self, wanted: int, target: Target) -> None:
        self.target = target
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind((LISTEN_ADDRESS, wanted))
        except OSError:   # taken (another pool's node, another emulator): any free port
            self.listener.bind((LISTEN_ADDRESS, 0))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._accept, name=f"login-forward-{self.port}", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return   # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        where = self.target()
        try:
            if where is None:
                raise OSError("the node is gone")
            upstream = connect_in_netns(*where)
        except OSError:
            client.close()   # the client sees the connection closed, as a load balancer with no backend
            return
        remaining = [2]
        lock = threading.Lock()

        def one_done() -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                client.close()
                upstream.close()
        threading.Thread(target=_copy, args=(client, upstream, one_done), daemon=True).start()
        _copy(upstream, client, one_done)

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
