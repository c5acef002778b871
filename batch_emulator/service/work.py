"""The one interface through which the service's operations hand work to the task runner.

A task operation (service/tasks.py) changes state under the account lock and, when a change
needs processes stopped or files removed, asks the runtime through this Protocol; the HTTP
layer passes it in and never imports runtime/. The runtime's Executor implements it, and
__main__ wires it into the HTTP server.
"""

from typing import Protocol

from .state import Job, Task
from .states import StopReason


class Runtime(Protocol):
    def end_task(self, job: Job, task: Task, reason: StopReason) -> None:
        """End ``task``'s work, with the account lock held. ``reason`` is "terminate" (the task
        completes with TaskEnded: at once if it never ran, else once its processes are killed) or
        "delete" (the task was removed from its job: its run stops and its files go)."""

    def remove_task_files(self, job: Job, task: Task) -> None:
        """Remove, in the background, the directories ``task`` has on every node it ran on."""
