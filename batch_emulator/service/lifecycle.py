"""How a task's run ends, as the service records it: completed, retried, requeued or back to active.

State changes only (the caller holds the account lock): the runtime calls these when a run
ends, the HTTP layer when it terminates a task that never ran. Also the failureInfo objects
the service reports for a failed exit code, an ended task and a command that cannot start.
"""

from . import scheduler
from .state import iso, utcnow

# Exit code the service reports for a task it ended (maxWallClockTime, terminate): 0xC000013A as a
# signed 32-bit int. The Batch error-handling docs state this value; on Linux nodes it may differ,
# but no Linux-specific value is documented, so we follow the docs.
ENDED_EXIT_CODE = -1073741510
EXIT_CODE_FAILURE = {"category": "usererror", "code": "FailureExitCode",
                     "message": "The task exited with an exit code representing a failure",
                     "details": [{"name": "Message", "value": "The task exited with an exit code representing a failure"}]}
# maxWallClockTime: the docs say the task completes with exit code 0xC000013A and
# failure {category ServerError, code TaskEnded}; a user terminate gives TaskEnded as a user error.
ENDED = {
    "walltime": {"category": "servererror", "code": "TaskEnded",
                 "message": "The task was ended because it exceeded its maximum wall clock time"},
    "terminate": {"category": "usererror", "code": "TaskEnded", "message": "Task Was Ended by User Request"},
    "jobterminate": {"category": "usererror", "code": "TaskEnded",
                     "message": "The task was ended because its job was terminated"},
    # An autoscale pool shrank with $NodeDeallocationOption = terminate ([inferred] wording and category).
    "nodedeallocation": {"category": "servererror", "code": "TaskEnded",
                         "message": "The task was ended because its node was removed from the pool"},
}


def launch_failure(exc):
    if isinstance(exc, FileNotFoundError):
        return {"category": "usererror", "code": "CommandProgramNotFound",
                "message": "The specified command program is not found",
                "details": [{"name": "Message", "value": str(exc)}]}
    return {"category": "usererror", "code": "CommandLaunchFailed",
            "message": "The command line failed to launch", "details": [{"name": "Message", "value": str(exc)}]}


def max_retries(job, task):
    constraints = task.spec.get("constraints") or {}
    if constraints.get("maxTaskRetryCount") is not None:
        return int(constraints["maxTaskRetryCount"])
    return int((job.spec.get("constraints") or {}).get("maxTaskRetryCount") or 0)


def back_to_active(account, job, task, retry=False, requeue=False):
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
    task.set_state("active")


def complete(account, job, task, exit_code, failure, sub_codes):
    """Record the end of the task (account lock held)."""
    now = iso(utcnow())
    if not task.deleted:
        execution = task.execution
        execution["endTime"] = now
        if exit_code is not None:
            execution["exitCode"] = exit_code
        execution["result"] = "failure" if failure else "success"
        if failure:
            execution["failureInfo"] = failure
        for sub, code in zip(task.subtasks, sub_codes + [None] * len(task.subtasks)):
            code = ENDED_EXIT_CODE if code is None else code
            sub.update(state="completed", previousState="running", previousStateTransitionTime=sub["stateTransitionTime"],
                       stateTransitionTime=now, endTime=now, exitCode=code, result="success" if code == 0 else "failure")
        task.stop_reason = None
        task.set_state("completed")
        _record_on_nodes(account, job, task, failure is None)
        _job_action(job, task, exit_code, failure)
    scheduler.release_nodes(account, job.id.lower(), task)


def _record_on_nodes(account, job, task, succeeded):
    for pool in account.pools.values():
        for index, node_id in enumerate(task.node_ids):
            node = pool.nodes.get(node_id)
            if node is None:
                continue
            node.total_run += 1
            node.total_succeeded += 1 if succeeded else 0
            entry = {"taskUrl": f"{account.url}/jobs/{job.id}/tasks/{task.id}", "jobId": job.id, "taskId": task.id,
                     "taskState": "completed", "executionInfo": dict(task.execution)}
            if task.spec.get("multiInstanceSettings") is not None:
                entry["subtaskId"] = index
            node.recent_tasks = (node.recent_tasks + [entry])[-10:]


def _job_action(job, task, exit_code, failure):
    """onTaskFailure=performexitoptionsjobaction: apply the task's exitConditions jobAction.

    The service's default jobAction is none for exit code 0 and terminate for every other condition.
    'disable' is not emulated (jobs cannot be disabled here) and is treated as none.
    """
    if failure is None or str(job.spec.get("onTaskFailure", "noaction")).lower() != "performexitoptionsjobaction":
        return
    conditions = task.spec.get("exitConditions") or {}
    default = "none" if exit_code == 0 else "terminate"
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
    if action == "terminate" and job.state == "active":
        scheduler.begin_terminate(job, "TaskFailed")
