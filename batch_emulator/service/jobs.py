"""The job operations of the REST API (one function per request, run through changes.change), and the
state changes they and the scheduler share: creating pools and jobs with their auto pools and job manager
tasks, terminate, disable and enable. The helpers below the operations expect the account lock held.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from . import autoscale
from .changes import Version, change, version
from .conditions import Conditions
from .errors import conflict
from .state import Account, Job, Pool, Task, get_job, require_job_writable
from .states import AllocationState, JobState, PoolState, StopReason, TaskState
from .validation import require_object, validate_disable, validate_job, validate_job_patch

# What a job manager task is besides a task (the rest of jobManagerTask is the task's own spec).
MANAGER_ONLY = ("killJobOnCompletion", "runExclusive", "allowLowPriorityNode")
# A PUT replaces these: the ones it omits go back to their defaults (Azure/azure-cli,
# src/azure-cli/azure/cli/command_modules/batch/tests/latest/recordings/test_batch_jobs_and_tasks.yaml).
REPLACED = ("priority", "maxParallelTasks", "allowTaskPreemption", "constraints", "poolInfo", "metadata",
            "onAllTasksComplete", "onTaskFailure")
DISABLE_STOPS = {"requeue": StopReason.REQUEUE, "terminate": StopReason.JOB_DISABLE}


# ---- the operations (one per request) ----

def _writable(account: Account, job_id: str, conditions: Conditions) -> Job:
    """The job a write or action changes (lock held), once its preconditions are met."""
    job = get_job(account, job_id)
    conditions.check(job.etag, job.last_modified)
    return job


def create_job(account: Account, raw: object) -> Version:
    body = validate_job(raw)
    return change(account, lambda: version(add_job(account, body)))


def replace_job(account: Account, job_id: str, conditions: Conditions, raw: object) -> Version:
    """PUT /jobs/{id}: every updatable property takes the body's value or its default."""
    def replace() -> Version:
        job = _writable(account, job_id, conditions)
        body = auto_pool_info_after(job, validate_job_patch(raw, job, replace=True), replace=True)
        require_job_writable(job)
        _replace_spec(job, body)
        return version(job)
    return change(account, replace)


def patch_job(account: Account, job_id: str, conditions: Conditions, raw: object) -> Version:
    """PATCH /jobs/{id}: the properties the body has take its values; the others stay."""
    def patch() -> Version:
        job = _writable(account, job_id, conditions)
        body = auto_pool_info_after(job, validate_job_patch(raw, job), replace=False)
        require_job_writable(job)
        for key, value in body.items():
            job.spec[key] = str(value).lower() if key in ("onAllTasksComplete", "onTaskFailure") else \
                copy.deepcopy(value)
        job.spec_changed()
        job.touch()
        return version(job)
    return change(account, patch)


def delete_job(account: Account, job_id: str, conditions: Conditions) -> None:
    def delete() -> None:
        job = _writable(account, job_id, conditions)
        if job.state == JobState.DELETING:
            raise conflict("JobBeingDeleted")
        job.transition(JobState.DELETING)
    change(account, delete)


def terminate_job(account: Account, job_id: str, conditions: Conditions, raw: object) -> Version:
    body = require_object(raw)

    def terminate() -> Version:
        job = _writable(account, job_id, conditions)
        require_job_writable(job)
        begin_terminate(job, body.get("terminateReason") or "UserTerminate")
        return version(job)
    return change(account, terminate)


def disable_job(account: Account, job_id: str, conditions: Conditions, raw: object) -> Version:
    option = validate_disable(raw)

    def disable() -> Version:
        job = _writable(account, job_id, conditions)
        require_job_writable(job)
        begin_disable(job, option)
        return version(job)
    return change(account, disable)


def enable_job(account: Account, job_id: str, conditions: Conditions) -> Version:
    def enable() -> Version:
        job = _writable(account, job_id, conditions)
        require_job_writable(job)
        _enable(job)
        return version(job)
    return change(account, enable)


def prep_runs(job: Job) -> list[dict[str, Any]]:
    """The job's preparation task runs, one per node (lock held); 409 for a job with neither a preparation nor a
    release task."""
    if job.settings.preparation is None and not job.spec.get("jobReleaseTask"):
        raise conflict("JobPreparationTaskOrReleaseTaskNotSpecified")
    return list(job.prep_runs.values())


# ---- state changes (the caller holds the account lock) ----

def add_pool(account: Account, body: dict[str, Any], pool_id: str | None = None) -> Pool:
    """A new pool from a validated pool add body (or an auto pool's spec, with its id)."""
    pool_id = pool_id or body["id"]
    existing = account.pools.get(pool_id.lower())
    if existing is not None:
        raise conflict("PoolBeingDeleted" if existing.state == PoolState.DELETING else "PoolExists")
    spec = dict(copy.deepcopy(body), id=pool_id)
    pool = Pool(id=pool_id, spec=spec, enable_auto_scale=bool(body.get("enableAutoScale")),
                auto_scale_formula=body.get("autoScaleFormula"),
                auto_scale_interval=body.get("autoScaleEvaluationInterval"),
                target_dedicated=int(body.get("targetDedicatedNodes") or 0),
                target_low_priority=int(body.get("targetLowPriorityNodes") or 0),
                resize_timeout=body.get("resizeTimeout") or "PT15M")
    account.pools[pool.id.lower()] = pool
    if pool.target_dedicated or pool.target_low_priority:
        # Resizing from the start, as on the service: "steady" before the scheduler's first tick would say
        # the pool has all the nodes it will get, with none yet.
        pool.set_allocation_state(AllocationState.RESIZING)
    if pool.enable_auto_scale:
        autoscale.start(account, pool, time.time())
    return pool


def add_job(account: Account, body: dict[str, Any]) -> Job:
    """A new job from a validated job add body: with its auto pool and its job manager task, if it has them."""
    existing = account.jobs.get(body["id"].lower())
    if existing is not None:
        raise conflict("JobBeingDeleted" if existing.state == JobState.DELETING else "JobExists")
    if body["id"].lower() in account.job_schedules:
        # Jobs and job schedules share one namespace; service/schedules.py refuses the reverse (JobWithSameIdExists).
        raise conflict("JobScheduleWithSameIdExists")
    job = Job(id=body["id"], spec=copy.deepcopy(body))
    auto = (body.get("poolInfo") or {}).get("autoPoolSpecification")
    if auto is not None:
        # The service names an auto pool with an upper-case GUID (executionInfo.poolId in
        # Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/
        # test_batch.pyTestBatchtest_batch_jobs[sync].json); the prefix form is the emulator's.
        guid = str(uuid.uuid4()).upper()
        prefix = auto.get("autoPoolIdPrefix")
        job.auto_pool_id = add_pool(account, auto["pool"], f"{prefix}_{guid}" if prefix else guid).id
    manager = body.get("jobManagerTask")
    if manager is not None:
        spec = {k: copy.deepcopy(v) for k, v in manager.items() if k not in MANAGER_ONLY}
        task = Task(id=manager["id"], job_key=job.id.lower(), spec=spec)
        job.tasks[task.id.lower()] = task    # first in the job: the scheduler starts it before the others
        job.manager_key = task.id.lower()
    account.jobs[job.id.lower()] = job
    return job


def auto_pool_info_after(job: Job, body: dict[str, Any], replace: bool) -> dict[str, Any]:
    """``body`` with the poolInfo an auto pool job keeps after a PUT or PATCH that gives one (validated: an
    autoPoolSpecification): its own, only keepAlive taken from the body (a PUT that omits it: false), as the REST
    reference says of Update Job. The service answered 200 to such a PUT on an active job, and its GET then showed
    the job's first pool spec (Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/
    test_batch.pyTestBatchtest_batch_jobs[sync].json)."""
    if not job.auto_pool_id or body.get("poolInfo") is None:
        return body
    pool_info = copy.deepcopy(job.spec.get("poolInfo") or {})
    auto = pool_info.setdefault("autoPoolSpecification", {})
    keep_alive = body["poolInfo"]["autoPoolSpecification"].get("keepAlive")
    if keep_alive is not None or replace:
        auto["keepAlive"] = bool(keep_alive)
    return dict(body, poolInfo=pool_info)


def _replace_spec(job: Job, body: dict[str, Any]) -> None:
    """PUT /jobs/{id}: every updatable property takes the body's value or its default."""
    for key in REPLACED:
        job.spec.pop(key, None)
    for key, value in body.items():
        if key in REPLACED:
            job.spec[key] = str(value).lower() if key in ("onAllTasksComplete", "onTaskFailure") else \
                copy.deepcopy(value)
    job.spec_changed()
    job.touch()


def manager_runs_exclusive(job: Job, task: Task) -> bool:
    return job.manager_key == task.id.lower() and job.settings.manager_runs_exclusive


def manager_completed(job: Job, task: Task) -> None:
    """The job manager task completed: with killJobOnCompletion (the default) the job ends, as the service does
    (terminateReason JMComplete)."""
    if job.manager_key == task.id.lower() and job.settings.manager_ends_job and job.state == JobState.ACTIVE:
        begin_terminate(job, "JMComplete")


def begin_terminate(job: Job, reason: str) -> None:
    job.terminate_reason = reason
    job.transition(JobState.TERMINATING)


def begin_disable(job: Job, option: str) -> None:
    """Disable: running tasks are requeued, terminated or left to finish (``option``); the job shows
    disabling until none runs, then disabled (the scheduler finishes it)."""
    if job.state != JobState.ACTIVE:
        raise conflict("JobNotActive")
    job.disable_tasks = option
    job.transition(JobState.DISABLING)
    advance_disabling(job)


def advance_disabling(job: Job) -> None:
    stop = DISABLE_STOPS.get(job.disable_tasks or "")
    for task in job.tasks.values():
        if stop is not None and task.busy and task.stop_reason is None:
            task.stop_reason = stop
    if not any(t.busy for t in job.tasks.values()):
        job.transition(JobState.DISABLED)


def _enable(job: Job) -> None:
    if job.state not in (JobState.DISABLED, JobState.DISABLING):
        # The Batch error list names no code for this; the generic state conflict is a best guess.
        raise conflict("OperationInvalidForCurrentState", "The job is not disabled.")
    job.disable_tasks = None
    job.transition(JobState.ACTIVE)


def end_auto_pool(account: Account, job: Job) -> None:
    """The job completed or is gone: its auto pool goes too, unless keepAlive."""
    pool = account.pools.get((job.auto_pool_id or "").lower())
    if pool is not None and not job.settings.keep_auto_pool and pool.state != PoolState.DELETING:
        pool.transition(PoolState.DELETING)


def waiting_for_manager(job: Job) -> bool:
    """True while the job manager task has not started: the job's other tasks wait for it."""
    manager = job.tasks.get(job.manager_key or "")
    return manager is not None and manager.state == TaskState.ACTIVE and not manager.busy
