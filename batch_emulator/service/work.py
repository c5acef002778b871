"""The one interface through which the service's operations hand work to the task runner.

A task operation (service/tasks.py) changes state under the account lock and, when a change
needs processes stopped or files removed, asks the runtime through this Protocol; a file
operation (service/files.py) finds the directory under the lock and asks the runtime for
what is on the node's disk. The HTTP layer passes the runtime in and never imports runtime/.
The runtime's Executor implements it, and __main__ wires it into the HTTP server.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .state import Job, Node, Task
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
