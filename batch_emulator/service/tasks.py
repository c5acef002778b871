"""The task operations of the REST API, one function per request, each run through changes.change."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from . import lifecycle
from .changes import Version, change, version
from .errors import BatchServiceError, conflict, service_error
from .state import Account, Job, Task, get_job, get_task, require_job_writable
from .states import ExecutionResult, JobState, StopReason, TaskState
from .validation import require_object, validate_task
from .work import Runtime

MAX_TASKS_PER_COLLECTION = 100


@dataclass(frozen=True)
class Refused:
    """A task of a collection that was not added: its id as sent (anything, or None) and why."""
    task_id: object
    error: BatchServiceError


def _add_task(job: Job, body: dict[str, Any]) -> Task:
    task = Task(id=body["id"], job_key=job.id.lower(), spec=copy.deepcopy(body))
    if task.id.lower() in job.tasks:
        raise conflict("TaskExists")
    job.tasks[task.id.lower()] = task
    return task


def create_task(account: Account, job_id: str, raw: object) -> tuple[str, Version]:
    """A new task: (its job's id, the task's version)."""
    def create() -> tuple[str, Version]:
        job = get_job(account, job_id)
        require_job_writable(job, for_new_tasks=True)
        return job.id, version(_add_task(job, validate_task(raw, job)))
    return change(account, create)


def add_task_collection(account: Account, job_id: str, raw: object) -> tuple[str, list[Version | Refused]]:
    """Up to MAX_TASKS_PER_COLLECTION tasks: each added or refused on its own, in the body's order."""
    body = require_object(raw)
    values = body.get("value")
    if not isinstance(values, list):
        raise service_error(400, "MissingRequiredProperty", PropertyName="value")
    if len(values) > MAX_TASKS_PER_COLLECTION:
        raise service_error(400, "InvalidPropertyValue", PropertyName="value", PropertyValue=len(values),
                            Reason=f"A task collection can hold at most {MAX_TASKS_PER_COLLECTION} tasks.")

    def add() -> tuple[str, list[Version | Refused]]:
        job = get_job(account, job_id)
        require_job_writable(job, for_new_tasks=True)
        results: list[Version | Refused] = []
        for item in values:
            try:
                results.append(version(_add_task(job, validate_task(item, job))))
            except BatchServiceError as err:
                results.append(Refused(item.get("id") if isinstance(item, dict) else None, err))
        return job.id, results
    return change(account, add)


def delete_task(account: Account, runtime: Runtime, job_id: str, task_id: str) -> None:
    """The task leaves its job at once; its run stops and its files go (the runtime's part)."""
    def delete() -> None:
        job = get_job(account, job_id)
        task = get_task(account, job_id, task_id)
        del job.tasks[task.id.lower()]
        task.deleted = True
        runtime.end_task(job, task, StopReason.DELETE)
    change(account, delete)


def terminate_task(account: Account, runtime: Runtime, job_id: str, task_id: str) -> tuple[str, Version]:
    """The task completes with TaskEnded: at once if it never ran, else once its processes are killed."""
    def terminate() -> tuple[str, Version]:
        job = get_job(account, job_id)
        task = get_task(account, job_id, task_id)
        if task.state == TaskState.COMPLETED:
            raise conflict("TaskCompleted")
        runtime.end_task(job, task, StopReason.TERMINATE)
        return job.id, version(task)
    return change(account, terminate)


# Why a job takes no reactivated task (the service's 409 codes, its REST reference of Reactivate a task).
_JOB_ENDED = {JobState.COMPLETED: "JobCompleted", JobState.TERMINATING: "JobBeingTerminated",
              JobState.DELETING: "JobBeingDeleted"}


def reactivate_task(account: Account, job_id: str, task_id: str) -> tuple[str, Version]:
    """A completed task that failed runs again: active, its retry count 0, its last run's exit code and
    failure gone. Refused (409) for a task not completed (TaskNotCompleted), one that succeeded
    (TaskSucceeded), and in a job that completed, is terminating or is being deleted."""
    def reactivate() -> tuple[str, Version]:
        job = get_job(account, job_id)
        task = get_task(account, job_id, task_id)
        if job.state in _JOB_ENDED:
            raise conflict(_JOB_ENDED[job.state])
        if task.state != TaskState.COMPLETED:
            raise conflict("TaskNotCompleted")
        if task.execution.get("result") == ExecutionResult.SUCCESS:
            raise conflict("TaskSucceeded")
        lifecycle.back_to_active(account, job, task)
        task.execution["retryCount"] = 0
        return job.id, version(task)
    return change(account, reactivate)
