"""One run of a task on its assigned node(s), in a worker thread (see executor.py).

Order, as on the service: job preparation on each node -> (multi-instance: common
resource files into AZ_BATCH_TASK_SHARED_DIR and the coordination command on every
instance, which must all exit 0) -> resource files -> command line on the primary ->
output-file upload -> completed (or retried / requeued / back to active).
"""

from __future__ import annotations

import os
import time
from typing import Protocol

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


def run_task(ex: TaskHost, job: Job, task: Task, nodes: list[Node]) -> None:
    account = ex.account
    if job.prep_task() is not None:
        for node in nodes:
            if task.stop_reason:
                break
            if not ex.ensure_prep(job, node):
                # Prep failed here: this node never runs the job's tasks; the task tries another node.
                with account.lock:
                    back_to_active(account, job, task)
                account.wake()
                return
    with account.lock:
        reason = task.stop_reason   # stopped while its job preparation ran: it never started
        if reason in (StopReason.REQUEUE, StopReason.DELETE):
            return _stopped(ex, job, task, reason, [])
        if reason:
            complete(account, job, task, None, dict(ENDED[reason]), [])
            account.wake()
            return
        if task.state == TaskState.PREPARING:
            task.transition(TaskState.RUNNING)
            task.execution["startTime"] = iso(utcnow())
    deadline = deadline_for(task)   # maxWallClockTime counts from the start, resource downloads included

    def stop():
        return task.stop_reason
    rel = f"workitems/{job.id}/job-1/{task.id}"
    multi = task.settings.multi_instance
    shared = [os.path.join(n.root, rel) for n in nodes]
    task_dirs = [shared[0]] + [os.path.join(shared[i], str(i)) for i in range(1, len(nodes))]
    wds = [os.path.join(d, "wd") for d in task_dirs]
    for wd in wds:
        os.makedirs(wd, exist_ok=True)
    envs = [ex.task_env(job, task, n, task_dirs[i], wds[i], nodes, shared[i]) for i, n in enumerate(nodes)]
    out = [os.path.join(d, "stdout.txt") for d in task_dirs]
    err = [os.path.join(d, "stderr.txt") for d in task_dirs]
    exit_code: int | None = None
    failure: dict | None = None
    sub_codes: list[int | None] = []
    try:
        if multi is not None:
            _start_subtasks(account, task, nodes, rel)
            for directory in shared:
                blobio.download_resource_files(list(multi.common_resource_files), directory)
            coordination = multi.coordination_command_line
            if coordination:
                procs = [ex.launcher.start(coordination, wds[i], envs[i], out[i], err[i], node_id=nodes[i].id,
                                           identity=task.spec.get("userIdentity")) for i in range(len(nodes))]
                sub_codes, reason = ex.launcher.wait(procs, deadline, stop)
                bad = [code for code in sub_codes if code != 0]
                if bad and not reason:
                    exit_code, failure = bad[0], dict(EXIT_CODE_FAILURE)
                sub_codes = sub_codes[1:]
        if failure is None and not reason:
            blobio.download_resource_files(task.spec.get("resourceFiles"), wds[0])
            # The primary's coordination output stays at the top of its stdout/stderr ([inferred]).
            proc = ex.launcher.start(task.spec["commandLine"], wds[0], envs[0], out[0], err[0],
                                     append=bool(multi and multi.coordination_command_line),
                                     node_id=nodes[0].id, identity=task.spec.get("userIdentity"))
            codes, reason = ex.launcher.wait([proc], deadline, stop)
            exit_code = codes[0]
    except blobio.TaskFailure as pre:
        failure = pre.info
    except (OSError, ValueError) as exc:
        failure = launch_failure(exc)
    if multi is not None:
        ex.launcher.sweep([n.id for n in nodes])   # isolated nodes: what mpirun started over SSH goes too
    if reason in (StopReason.REQUEUE, StopReason.DELETE, StopReason.SHUTDOWN):
        return _stopped(ex, job, task, reason, shared)
    if reason:
        exit_code, failure = ENDED_EXIT_CODE, dict(ENDED[reason])
    try:
        blobio.upload_output_files(task.spec.get("outputFiles"), wds[0], exit_code, envs[0], task_dirs[0])
    except blobio.TaskFailure as upload:
        failure = failure or upload.info   # an upload failure fails the task even with exit code 0
    if failure is None and exit_code not in (0, None):
        failure = dict(EXIT_CODE_FAILURE)
    with account.lock:
        if task.deleted:
            return _stopped(ex, job, task, StopReason.DELETE, shared)
        retries = max_retries(job, task)
        retryable = failure is not None and failure.get("code") == "FailureExitCode" and not reason
        if retryable and (retries == -1 or task.execution["retryCount"] < retries):
            back_to_active(account, job, task, retry=True)
        else:
            complete(account, job, task, exit_code, failure, sub_codes)
    account.wake()


def _start_subtasks(account, task, nodes, rel):
    now = iso(utcnow())
    with account.lock:
        task.subtasks = [{"id": i, "nodeInfo": node_info(account.url, n.pool_id, n.id, f"{rel}/{i}"),
                          "startTime": now, "state": SubtaskState.RUNNING, "stateTransitionTime": now,
                          "previousState": SubtaskState.PREPARING, "previousStateTransitionTime": now}
                         for i, n in enumerate(nodes) if i > 0]


def _stopped(ex, job, task, reason, shared_dirs):
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
