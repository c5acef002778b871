"""One run of a task on its assigned node(s), in a worker thread (see executor.py).

Order, as on the service: job preparation on each node -> (multi-instance: common
resource files into AZ_BATCH_TASK_SHARED_DIR and the coordination command on every
instance, which must all exit 0) -> resource files -> command line on the primary ->
output-file upload -> completed (or retried / requeued / back to active).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..service import scheduler
from ..service.lifecycle import (
    ENDED,
    ENDED_EXIT_CODE,
    EXIT_CODE_FAILURE,
    back_to_active,
    complete,
    launch_failure,
    max_retries,
)
from ..service.state import Account, Job, Node, Task, iso, node_info, utcnow
from ..service.states import StopReason, SubtaskState, TaskState
from ..service.validation import parse_duration
from . import blobio
from .processes import Launcher


class TaskHost(Protocol):
    """What a task run uses of its executor (runtime/executor.py's Executor)."""
    account: Account
    launcher: Launcher

    def ensure_prep(self, job: Job, node: Node) -> bool: ...

    def task_env(self, job: Job, task: Task, node: Node, task_dir: str, wd: str, nodes: list[Node],
                 shared_dir: str) -> dict[str, str]: ...

    def discard_files(self, paths: list[str]) -> None: ...


@dataclass(frozen=True)
class _Files:
    """Where one run's files are, one entry per node (index 0: the primary)."""
    rel: str                        # workitems/<job>/job-1/<task>, under each node's root
    shared: list[str]               # AZ_BATCH_TASK_SHARED_DIR
    task_dirs: list[str]            # stdout.txt and stderr.txt are here
    wds: list[str]                  # AZ_BATCH_TASK_WORKING_DIR
    envs: list[dict[str, str]]


@dataclass(frozen=True)
class _Ending:
    """How the work on the nodes ended: exit code, failureInfo, the subtasks' exit codes, why it was stopped."""
    exit_code: int | None = None
    failure: dict[str, Any] | None = None
    sub_codes: list[int | None] = field(default_factory=list)
    reason: StopReason | None = None


def run_task(ex: TaskHost, job: Job, task: Task, nodes: list[Node]) -> None:
    if not _prepare(ex, job, task, nodes):
        return
    deadline = deadline_for(task)   # maxWallClockTime counts from the start, resource downloads included
    files = _lay_out(ex, job, task, nodes)
    ending = _execute(ex, task, nodes, files, deadline)
    if task.settings.multi_instance is not None:
        ex.launcher.sweep([n.id for n in nodes])   # isolated nodes: what mpirun started over SSH goes too
    if ending.reason in (StopReason.REQUEUE, StopReason.DELETE, StopReason.SHUTDOWN):
        return _stopped(ex, job, task, ending.reason, files.shared)
    if ending.reason:
        ending = replace(ending, exit_code=ENDED_EXIT_CODE, failure=dict(ENDED[ending.reason]))
    _settle(ex, job, task, files, _upload(task, files, ending))


def _prepare(ex: TaskHost, job: Job, task: Task, nodes: list[Node]) -> bool:
    """Job preparation on each node, then the task is running; False: the task does not run here."""
    account = ex.account
    if job.settings.preparation is not None:
        for node in nodes:
            if task.stop_reason:
                break
            if not ex.ensure_prep(job, node):
                # Prep failed here: this node never runs the job's tasks; the task tries another node.
                with account.lock:
                    back_to_active(account, job, task)
                account.wake()
                return False
    with account.lock:
        reason = task.stop_reason   # stopped while its job preparation ran: it never started
        if reason in (StopReason.REQUEUE, StopReason.DELETE):
            _stopped(ex, job, task, reason, [])
            return False
        if reason:
            complete(account, job, task, None, dict(ENDED[reason]), [])
            account.wake()
            return False
        if task.state == TaskState.PREPARING:
            task.transition(TaskState.RUNNING)
            task.execution["startTime"] = iso(utcnow())
    return True


def _lay_out(ex: TaskHost, job: Job, task: Task, nodes: list[Node]) -> _Files:
    """Make each node's directories for the task; the environment each instance runs with."""
    rel = f"workitems/{job.id}/job-1/{task.id}"
    shared = [os.path.join(n.root, rel) for n in nodes]
    task_dirs = [shared[0]] + [os.path.join(shared[i], str(i)) for i in range(1, len(nodes))]
    wds = [os.path.join(d, "wd") for d in task_dirs]
    for wd in wds:
        os.makedirs(wd, exist_ok=True)
    envs = [ex.task_env(job, task, n, task_dirs[i], wds[i], nodes, shared[i]) for i, n in enumerate(nodes)]
    return _Files(rel, shared, task_dirs, wds, envs)


def _execute(ex: TaskHost, task: Task, nodes: list[Node], files: _Files, deadline: float | None) -> _Ending:
    """Coordination (multi-instance), then the command line on the primary unless that failed or was stopped."""
    ending = _Ending()
    try:
        ending = _coordinate(ex, task, nodes, files, deadline)
        if ending.failure is None and not ending.reason:
            ending = _run(ex, task, nodes, files, deadline, ending)
    except blobio.TaskFailure as pre:
        ending = replace(ending, failure=pre.info)
    except (OSError, ValueError) as exc:
        ending = replace(ending, failure=launch_failure(exc))
    return ending


def _coordinate(ex: TaskHost, task: Task, nodes: list[Node], files: _Files, deadline: float | None) -> _Ending:
    """Multi-instance: the subtasks start, common resource files go to each shared dir, and the coordination
    command runs on every instance, which must all exit 0."""
    multi = task.settings.multi_instance
    if multi is None:
        return _Ending()
    _start_subtasks(ex.account, task, nodes, files.rel)
    for directory in files.shared:
        blobio.download_resource_files(multi.common_resource_files, directory)
    coordination = multi.coordination_command_line
    if not coordination:
        return _Ending()
    procs = [ex.launcher.start(coordination, files.wds[i], files.envs[i], _stdout(files, i), _stderr(files, i),
                               node_id=nodes[i].id, identity=task.spec.get("userIdentity"))
             for i in range(len(nodes))]
    codes, reason = ex.launcher.wait(procs, deadline, lambda: task.stop_reason)
    bad = [code for code in codes if code != 0]
    if bad and not reason:
        return _Ending(bad[0], dict(EXIT_CODE_FAILURE), codes[1:], reason)
    return _Ending(sub_codes=codes[1:], reason=reason)


def _run(ex: TaskHost, task: Task, nodes: list[Node], files: _Files, deadline: float | None,
         coordinated: _Ending) -> _Ending:
    """The task's resource files, then its command line on the primary."""
    multi = task.settings.multi_instance
    blobio.download_resource_files(task.spec.get("resourceFiles"), files.wds[0])
    # The primary's coordination output stays at the top of its stdout/stderr ([inferred]).
    proc = ex.launcher.start(task.spec["commandLine"], files.wds[0], files.envs[0], _stdout(files, 0),
                             _stderr(files, 0), append=bool(multi and multi.coordination_command_line),
                             node_id=nodes[0].id, identity=task.spec.get("userIdentity"))
    codes, reason = ex.launcher.wait([proc], deadline, lambda: task.stop_reason)
    return replace(coordinated, exit_code=codes[0], reason=reason)


def _upload(task: Task, files: _Files, ending: _Ending) -> _Ending:
    """The output files; an upload failure fails the task even with exit code 0."""
    failure = ending.failure
    try:
        blobio.upload_output_files(task.spec.get("outputFiles"), files.wds[0], ending.exit_code, files.envs[0],
                                   files.task_dirs[0])
    except blobio.TaskFailure as upload:
        failure = failure or upload.info
    if failure is None and ending.exit_code not in (0, None):
        failure = dict(EXIT_CODE_FAILURE)
    return replace(ending, failure=failure)


def _settle(ex: TaskHost, job: Job, task: Task, files: _Files, ending: _Ending) -> None:
    """Retry the task, or complete it."""
    account = ex.account
    with account.lock:
        if task.deleted:
            return _stopped(ex, job, task, StopReason.DELETE, files.shared)
        retries = max_retries(job, task)
        failure = ending.failure
        retryable = failure is not None and failure.get("code") == "FailureExitCode" and not ending.reason
        if retryable and (retries == -1 or task.execution["retryCount"] < retries):
            back_to_active(account, job, task, retry=True)
        else:
            complete(account, job, task, ending.exit_code, failure, ending.sub_codes)
    account.wake()


def _stdout(files: _Files, i: int) -> str:
    return os.path.join(files.task_dirs[i], "stdout.txt")


def _stderr(files: _Files, i: int) -> str:
    return os.path.join(files.task_dirs[i], "stderr.txt")


def _start_subtasks(account: Account, task: Task, nodes: list[Node], rel: str) -> None:
    now = iso(utcnow())
    with account.lock:
        task.subtasks = [{"id": i, "nodeInfo": node_info(account.url, n.pool_id, n.id, f"{rel}/{i}"),
                          "startTime": now, "state": SubtaskState.RUNNING, "stateTransitionTime": now,
                          "previousState": SubtaskState.PREPARING, "previousStateTransitionTime": now}
                         for i, n in enumerate(nodes) if i > 0]


def _stopped(ex: TaskHost, job: Job, task: Task, reason: StopReason, shared_dirs: list[str]) -> None:
    """Work ended without completing the task: requeue it, or drop it because it was deleted."""
    account = ex.account
    with account.lock:
        if reason == StopReason.REQUEUE and not task.deleted:
            back_to_active(account, job, task, requeue=True)
        else:
            scheduler.release_nodes(account, job.id.lower(), task)
    if task.deleted or reason == StopReason.DELETE:
        ex.discard_files(shared_dirs)
    account.wake()


def deadline_for(task: Task) -> float | None:
    """When the task's maxWallClockTime runs out (time.monotonic()), or None."""
    text = task.settings.max_wall_clock_time
    if not text:
        return None
    return time.monotonic() + parse_duration(text, "maxWallClockTime").total_seconds()
