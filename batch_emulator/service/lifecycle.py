"""How a task's run ends, as the service records it: completed, retried, requeued or back to active.

State changes only (the caller holds the account lock): the runtime calls these when a run
ends, the HTTP layer when it terminates a task that never ran. Also the failureInfo objects
the service reports for a failed exit code, an ended task and a command that cannot start.
"""

from __future__ import annotations

from typing import Any

from . import jobs, scheduler
from .state import Account, Job, Task, iso, utcnow
from .states import ErrorCategory, ExecutionResult, JobAction, JobState, StopReason, SubtaskState, TaskState

# Exit code the service reports for a task it ended (maxWallClockTime, terminate): 0xC000013A as a
# signed 32-bit int. The Batch error-handling docs state this value; on Linux nodes it may differ,
# but no Linux-specific value is documented, so we follow the docs.
ENDED_EXIT_CODE = -1073741510
EXIT_CODE_FAILURE = {"category": ErrorCategory.USER_ERROR, "code": "FailureExitCode",
                     "message": "The task exited with an exit code representing a failure",
                     "details": [{"name": "Message",
                                  "value": "The task exited with an exit code representing a failure"}]}
# maxWallClockTime: the docs say the task completes with exit code 0xC000013A and
# failure {category ServerError, code TaskEnded}; a user terminate gives TaskEnded as a user error.
ENDED: dict[str, dict[str, Any]] = {
    StopReason.WALLTIME: {"category": ErrorCategory.SERVER_ERROR, "code": "TaskEnded",
                 "message": "The task was ended because it exceeded its maximum wall clock time"},
    StopReason.TERMINATE: {"category": ErrorCategory.USER_ERROR, "code": "TaskEnded",
                           "message": "Task Was Ended by User Request"},
    StopReason.JOB_TERMINATE: {"category": ErrorCategory.USER_ERROR, "code": "TaskEnded",
                     "message": "The task was ended because its job was terminated"},
    # Disable with disableTasks terminate ([inferred] wording: the REST reference says only that the tasks end).
    StopReason.JOB_DISABLE: {"category": ErrorCategory.USER_ERROR, "code": "TaskEnded",
                             "message": "The task was ended because its job was disabled"},
    # An autoscale pool shrank with $NodeDeallocationOption = terminate ([inferred] wording and category).
    StopReason.NODE_DEALLOCATION: {"category": ErrorCategory.SERVER_ERROR, "code": "TaskEnded",
                         "message": "The task was ended because its node was removed from the pool"},
}


def launch_failure(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, FileNotFoundError):
        return {"category": ErrorCategory.USER_ERROR, "code": "CommandProgramNotFound",
                "message": "The specified command program is not found",
                "details": [{"name": "Message", "value": str(exc)}]}
    return {"category": ErrorCategory.USER_ERROR, "code": "CommandLaunchFailed",
            "message": "The command line failed to launch", "details": [{"name": "Message", "value": str(exc)}]}


def max_retries(job: Job, task: Task) -> int:
    if task.settings.max_task_retry_count is not None:
        return task.settings.max_task_retry_count
    return job.settings.max_task_retry_count


def back_to_active(account: Account, job: Job, task: Task, retry: bool = False, requeue: bool = False) -> None:
    scheduler.release_nodes(account, job.id.lower(), task)
    execution = task.execution
    for key in ("startTime", "endTime", "exitCode", "result", "failureInfo"):
        execution.pop(key, None)
    now = iso(utcnow())
    if retry:
        execution["retryCount"] += 1
        execution["lastRetryTime"] = now
    if requeue:
        execution["requeueCount"] += 1
        execution["lastRequeueTime"] = now
    task.node_ids, task.node_info, task.subtasks, task.stop_reason = [], None, [], None
    task.transition(TaskState.ACTIVE)


def complete(account: Account, job: Job, task: Task, exit_code: int | None, failure: dict[str, Any] | None,
             sub_codes: list[int | None]) -> None:
    """Record the end of the task (account lock held)."""
    now = iso(utcnow())
    if not task.deleted:
        execution = task.execution
        execution["endTime"] = now
        if exit_code is not None:
            execution["exitCode"] = exit_code
        execution["result"] = ExecutionResult.FAILURE if failure else ExecutionResult.SUCCESS
        if failure:
            execution["failureInfo"] = failure
        for sub, code in zip(task.subtasks, sub_codes + [None] * len(task.subtasks), strict=False):
            code = ENDED_EXIT_CODE if code is None else code
            sub.update(state=SubtaskState.COMPLETED, previousState=SubtaskState.RUNNING,
                       previousStateTransitionTime=sub["stateTransitionTime"], stateTransitionTime=now, endTime=now,
                       exitCode=code, result=ExecutionResult.SUCCESS if code == 0 else ExecutionResult.FAILURE)
        task.stop_reason = None
        task.transition(TaskState.COMPLETED)
        _record_on_nodes(account, job, task, failure is None)
        _job_action(job, task, exit_code, failure)
        jobs.manager_completed(job, task)
    scheduler.release_nodes(account, job.id.lower(), task)


def _record_on_nodes(account: Account, job: Job, task: Task, succeeded: bool) -> None:
    for pool in account.pools.values():
        for index, node_id in enumerate(task.node_ids):
            node = pool.nodes.get(node_id)
            if node is None:
                continue
            node.total_run += 1
            node.total_succeeded += 1 if succeeded else 0
            entry: dict[str, Any] = {"taskUrl": f"{account.url}/jobs/{job.id}/tasks/{task.id}", "jobId": job.id,
                                     "taskId": task.id, "taskState": TaskState.COMPLETED,
                                     "executionInfo": dict(task.execution)}
            if task.settings.multi_instance is not None:
                entry["subtaskId"] = index
            node.recent_tasks = (node.recent_tasks + [entry])[-10:]


def _job_action(job: Job, task: Task, exit_code: int | None, failure: dict[str, Any] | None) -> None:
    """onTaskFailure=performexitoptionsjobaction: apply the task's exitConditions jobAction.

    The service's default jobAction is none for exit code 0 and terminate for every other condition;
    disable is a job disable with disableTasks requeue, as the REST reference says.
    """
    if failure is None or not job.settings.exit_options_act_on_job:
        return
    conditions = task.spec.get("exitConditions") or {}
    default = JobAction.NONE if exit_code == 0 else JobAction.TERMINATE
    options = None
    if str(failure.get("code", "")).startswith("FileUpload"):
        options = conditions.get("fileUploadError")
    elif exit_code is None:
        options = conditions.get("preProcessingError")
    else:
        for item in conditions.get("exitCodes") or []:
            if item.get("code") == exit_code:
                options = item.get("exitOptions") or {}
                break
        else:
            for item in conditions.get("exitCodeRanges") or []:
                if int(item.get("start", 0)) <= exit_code <= int(item.get("end", -1)):
                    options = item.get("exitOptions") or {}
                    break
            else:
                options = conditions.get("default")
    action = str((options or {}).get("jobAction") or default).lower()
    if action == JobAction.TERMINATE and job.state == JobState.ACTIVE:
        jobs.begin_terminate(job, "TaskFailed")
    elif action == JobAction.DISABLE and job.state == JobState.ACTIVE:
        jobs.begin_disable(job, "requeue")
