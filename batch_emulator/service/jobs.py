"""Creating pools and jobs, and the job operations that change more than one object: auto pools,
the job manager task, replace, disable and enable. State changes only (the caller holds the account lock).
"""

from __future__ import annotations

import copy
import time
import uuid

from . import autoscale
from .errors import conflict
from .state import Account, Job, Pool, Task
from .states import JobState, PoolState, StopReason, TaskState

# What a job manager task is besides a task (the rest of jobManagerTask is the task's own spec).
MANAGER_ONLY = ("killJobOnCompletion", "runExclusive", "allowLowPriorityNode")
# A PUT replaces these: the ones it omits go back to their defaults (Azure/azure-cli,
# src/azure-cli/azure/cli/command_modules/batch/tests/latest/recordings/test_batch_jobs_and_tasks.yaml).
REPLACED = ("priority", "maxParallelTasks", "allowTaskPreemption", "constraints", "poolInfo", "metadata",
            "onAllTasksComplete", "onTaskFailure")
DISABLE_STOPS = {"requeue": StopReason.REQUEUE, "terminate": StopReason.JOB_DISABLE}


def add_pool(account: Account, body: dict, pool_id: str | None = None) -> Pool:
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
    if pool.enable_auto_scale:
        autoscale.start(account, pool, time.time())
    return pool


def add_job(account: Account, body: dict) -> Job:
    """A new job from a validated job add body: with its auto pool and its job manager task, if it has them."""
    existing = account.jobs.get(body["id"].lower())
    if existing is not None:
        raise conflict("JobBeingDeleted" if existing.state == JobState.DELETING else "JobExists")
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


def replace_job(job: Job, body: dict) -> None:
    """PUT /jobs/{id}: every updatable property takes the body's value or its default."""
    for key in REPLACED:
        job.spec.pop(key, None)
    for key, value in body.items():
        if key in REPLACED:
            job.spec[key] = str(value).lower() if key in ("onAllTasksComplete", "onTaskFailure") else \
                copy.deepcopy(value)
    job.touch()


def manager_runs_exclusive(job: Job, task: Task) -> bool:
    manager = job.spec.get("jobManagerTask") or {}
    return job.manager_key == task.id.lower() and manager.get("runExclusive", True) is not False


def manager_completed(job: Job, task: Task) -> None:
    """The job manager task completed: with killJobOnCompletion (the default) the job ends, as the service does
    (terminateReason JMComplete)."""
    manager = job.spec.get("jobManagerTask") or {}
    if job.manager_key == task.id.lower() and manager.get("killJobOnCompletion", True) is not False and \
            job.state == JobState.ACTIVE:
        begin_terminate(job, "JMComplete")


def begin_terminate(job: Job, reason: str) -> None:
    job.terminate_reason = reason
    job.transition(JobState.TERMINATING)


def disable_job(job: Job, option: str) -> None:
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


def enable_job(job: Job) -> None:
    if job.state not in (JobState.DISABLED, JobState.DISABLING):
        # The Batch error list names no code for this; the generic state conflict is a best guess.
        raise conflict("OperationInvalidForCurrentState", "The job is not disabled.")
    job.disable_tasks = None
    job.transition(JobState.ACTIVE)


def end_auto_pool(account: Account, job: Job) -> None:
    """The job completed or is gone: its auto pool goes too, unless keepAlive."""
    auto = (job.spec.get("poolInfo") or {}).get("autoPoolSpecification") or {}
    pool = account.pools.get((job.auto_pool_id or "").lower())
    if pool is not None and not auto.get("keepAlive") and pool.state != PoolState.DELETING:
        pool.transition(PoolState.DELETING)


def waiting_for_manager(job: Job) -> bool:
    """True while the job manager task has not started: the job's other tasks wait for it."""
    manager = job.tasks.get(job.manager_key or "")
    return manager is not None and manager.state == TaskState.ACTIVE and not manager.busy
