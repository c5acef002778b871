"""The one interface through which the service's operations hand work to the task runner.

A task operation (service/tasks.py) changes state under the account lock and, when a change
needs processes stopped or files removed, asks the runtime through this Protocol; a file
operation (service/files.py) finds the directory under the lock and asks the runtime for
what is on the node's disk. The HTTP layer passes the runtime in and never imports runtime/.
The runtime's Executor implements it, and __main__ wires it into the HTTP server.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from .state import Job, Node, NodeUser, Task
from .states import NodeAction, StopReason


@dataclass(frozen=True)
class FileInfo:
    """A file or directory on a node: its name (relative to the directory asked about, "/"-separated),
    size in bytes, st_mode bits and the times of its last change and of its creation (st_ctime)."""
    name: str
    is_directory: bool
    size: int
    mode: int
    modified: datetime
    created: datetime


@dataclass(frozen=True)
class LogFile:
    """A log a node may upload (service/node_logs.py): its path under the node's root ("/"-separated) and the
    earliest its first line can have been written (the run's start), so that a time range ending before that
    skips it without reading it."""
    relative: str
    since: datetime


@dataclass(frozen=True)
class LogUpload:
    """What an upload of a node's service logs sends, decided under the account lock: the node's root, the logs
    that began before ``end_time`` (None: any), the container (its URL with the caller's SAS: never log it) and
    the blob name prefix every file goes under."""
    node_root: str
    files: tuple[LogFile, ...]
    start_time: datetime
    end_time: datetime | None
    container_url: str = field(repr=False)   # its SAS never shows, not even in a repr
    virtual_directory: str


class Runtime(Protocol):
    def end_task(self, job: Job, task: Task, reason: StopReason) -> None:
        """End ``task``'s work, with the account lock held. ``reason`` is "terminate" (the task
        completes with TaskEnded: at once if it never ran, else once its processes are killed) or
        "delete" (the task was removed from its job: its run stops and its files go)."""

    def remove_task_files(self, job: Job, task: Task) -> None:
        """Remove, in the background, the directories ``task`` has on every node it ran on."""

    def restart_node(self, node: Node, action: NodeAction) -> None:
        """Reboot, reimage, deallocate or start ``node`` in the background, with the account lock held; the
        service has set its state (rebooting, ...) and told its running tasks how to stop. Once they have
        stopped or ended, its processes go; it comes back through starting (its start task again) to idle,
        or, deallocated, stays down until started."""

    # The file methods run without the account lock. ``relative`` is a path inside ``directory`` as the
    # client sent it; one that leaves it, or names nothing (any more), raises 404 FileNotFound.

    def list_files(self, directory: str, recursive: bool) -> list[FileInfo]:
        """What ``directory`` holds (all below it if ``recursive``), sorted; nothing if it does not exist."""

    def file_info(self, directory: str, relative: str) -> FileInfo:
        """The file or directory ``relative`` names."""

    def read_file(self, directory: str, relative: str) -> tuple[FileInfo, bytes]:
        """The file ``relative`` names with its bytes (a directory: no bytes)."""

    def delete_file(self, directory: str, relative: str, recursive: bool) -> None:
        """Delete the file ``relative`` names; a directory and all it holds only if ``recursive`` (else 409
        OperationInvalidForCurrentState)."""

    def upload_node_logs(self, upload: LogUpload) -> int:
        """Without the account lock: pick the files of ``upload`` written to since its start time, start
        uploading them in the background and return how many will be uploaded (the service answers before the
        upload ends; a refused upload shows in the node's agent log)."""

    # Node users (service/node_users.py), without the account lock: the service has checked the request and
    # recorded the user; what these raise (OSError) makes it undo that.

    def set_node_user(self, node: Node, user: NodeUser, password: str | None) -> None:
        """Make ``user``'s account on ``node``, or replace its password, SSH key and expiry (netns: a Unix account
        in the node, locked at its expiry; none: nothing). ``password`` is set, never kept nor logged."""

    def remove_node_user(self, node: Node, name: str) -> None:
        """Remove the account ``name`` from ``node`` (netns: its processes end, its home goes)."""

    def remote_login(self, node: Node, frontend_port: int, backend_port: int) -> tuple[str, int]:
        """The address and port at which a client on this machine reaches ``node``'s ``backend_port`` (its sshd),
        as the pool's load balancer forwards its frontend port: netns, 127.0.0.1 and a port forwarded into the
        node (``frontend_port`` when free); none, 127.0.0.1 and ``frontend_port``, where nothing listens."""
