"""The file operations of the REST API: a task's or a node's files, listed, described, read and deleted.

Each operation finds the directory under the account lock, then asks the runtime (service.work.Runtime)
for what is on the node's disk without the lock, so a large directory never holds up other requests.
Files go with their node, as on the service: once the node a task ran on has left its pool (shrink or
pool delete), the task's files answer 404 NodeNotFound, and the node's own files 404 NodeNotFound
(PoolNotFound once its pool is gone). A node can leave between the lookup and the runtime's work; the
runtime then finds nothing (FileNotFound), and the lookup, made again, answers why.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .changes import read
from .errors import NotFound, conflict, not_found
from .state import Account, find_node, get_node, get_task
from .work import FileInfo, Runtime

T = TypeVar("T")


@dataclass(frozen=True)
class TaskFilesOf:
    """The files of a task: those in its directory on the node it ran on (its primary node)."""
    job_id: str
    task_id: str


@dataclass(frozen=True)
class NodeFilesOf:
    """The files of a node: those under its root directory."""
    pool_id: str
    node_id: str


FilesOf = TaskFilesOf | NodeFilesOf


@dataclass(frozen=True)
class Place:
    """Where the files a request names are: whose they are, with the ids as the service spells them (a
    task's job and task ids as created; a node's pool id as the request gave it), and their directory."""
    owner: FilesOf
    directory: str


def _task_place(account: Account, of: TaskFilesOf) -> Place:
    """The task's directory on its (primary) node; 409 while it never ran, 404 once that node is gone."""
    task = get_task(account, of.job_id, of.task_id)
    if not task.node_ids:
        raise conflict("OperationInvalidForCurrentState",
                       "The files of the specified task cannot be accessed as the task state is still active")
    if find_node(account, task.node_ids[0]) is None:
        # The node it ran on left its pool and took the files along. The service answers 404 then (Azure/
        # BatchExplorer's task-outputs view shows a 404 here as "the node the task ran on doesn't exist
        # anymore"); its code is [inferred]: the node API's for a node that is gone.
        raise not_found("NodeNotFound")
    job_id = account.jobs[task.job_key].id
    directory = os.path.join(account.node_dir(task.node_ids[0]), "workitems", job_id, "job-1", task.id)
    return Place(TaskFilesOf(job_id, task.id), directory)


def _place(account: Account, of: FilesOf) -> Place:
    def find() -> Place:
        if isinstance(of, TaskFilesOf):
            return _task_place(account, of)
        node = get_node(account, of.pool_id, of.node_id)
        return Place(NodeFilesOf(of.pool_id, node.id), node.root)
    return read(account, find)


def _on_disk(account: Account, of: FilesOf, work: Callable[[Place], T]) -> T:
    """``work`` done on the files' place; if it finds nothing, the 404 of a node gone meanwhile wins."""
    place = _place(account, of)
    try:
        return work(place)
    except NotFound:
        _place(account, of)   # raises NodeNotFound (PoolNotFound, TaskNotFound, ...) if the node has left
        raise


def list_files(account: Account, runtime: Runtime, of: FilesOf, recursive: bool) -> tuple[Place, list[FileInfo]]:
    """The files' place and what it holds (everything below it if ``recursive``)."""
    return _on_disk(account, of, lambda place: (place, runtime.list_files(place.directory, recursive)))


def file_info(account: Account, runtime: Runtime, of: FilesOf, relative: str) -> tuple[Place, FileInfo]:
    """The files' place and what ``relative`` inside it is."""
    return _on_disk(account, of, lambda place: (place, runtime.file_info(place.directory, relative)))


def read_file(account: Account, runtime: Runtime, of: FilesOf, relative: str) -> tuple[Place, FileInfo, bytes]:
    """The files' place, what ``relative`` inside it is, and its bytes."""
    return _on_disk(account, of, lambda place: (place, *runtime.read_file(place.directory, relative)))


def delete_file(account: Account, runtime: Runtime, of: FilesOf, relative: str, recursive: bool) -> None:
    """Delete ``relative`` inside the files' place (a directory only if ``recursive``)."""
    _on_disk(account, of, lambda place: runtime.delete_file(place.directory, relative, recursive))
