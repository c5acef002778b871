"""In-memory state of one emulated Batch account: pools, nodes, jobs, tasks. No I/O here.

Every read or write of these objects happens under ``Account.lock``; worker threads
(runtime/executor.py) take it only for short state updates, never while a process runs.
Ids are case-preserving and case-insensitive (dict keys are lowercased ids).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import ResizeError, conflict, not_found
from .specs import JobSettings, PoolSettings, TaskSettings
from .states import (
    AllocationState,
    DeallocationOption,
    ExecutionResult,
    JobScheduleState,
    JobState,
    NodeState,
    PoolState,
    SchedulingState,
    StopReason,
    TaskState,
    WireEnum,
)

_etag_counter = itertools.count(1)
PASSING_STATES = (JobState.TERMINATING, JobState.DISABLING, JobState.ENABLING)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime | None) -> str | None:
    """A time as the service writes it in JSON: 2026-01-02T03:04:05.678901Z (None stays None)."""
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def node_info(base: str, pool_id: str, node_id: str, task_root: str) -> dict[str, str]:
    """A task's nodeInfo: where it runs (stored on the task and its subtasks when they are placed)."""
    return {"affinityId": f"TVM:{node_id}", "nodeUrl": f"{base}/pools/{pool_id}/nodes/{node_id}",
            "poolId": pool_id, "nodeId": node_id, "taskRootDirectory": task_root,
            "taskRootDirectoryUrl": f"{base}/pools/{pool_id}/nodes/{node_id}/files/{task_root}"}


def new_etag() -> str:
    # Real ETags look like 0x8DD3F2A1B2C3D4E; a counter keeps ours unique and monotonic.
    return "0x8D" + format(time.time_ns() // 1000 * 16 + next(_etag_counter) % 16, "013X")[-13:]


@dataclass
class NodeUser:
    """A user account added to a node (POST .../nodes/{n}/users; service/node_users.py). The password is never
    kept: the runtime gets it once, to set it on the node."""
    name: str
    is_admin: bool
    expiry: datetime
    has_password: bool
    ssh_public_key: str | None


@dataclass
class Node:
    id: str
    pool_id: str
    ip: str
    dedicated: bool
    root: str
    state: NodeState = NodeState.CREATING
    state_time: datetime = field(default_factory=utcnow)
    allocation_time: datetime = field(default_factory=utcnow)
    running: dict[tuple[str, str, int], int] = field(default_factory=dict)   # (job, task, subtask index) -> slots used
    total_run: int = 0
    total_succeeded: int = 0
    prep_succeeded: set[str] = field(default_factory=set)  # job keys whose prep task exited 0 here
    prep_failed: set[str] = field(default_factory=set)     # job keys this node will never run again
    start_task_info: dict[str, Any] | None = None
    idle_since: float | None = None                   # time.monotonic() when it last became idle
    leaving_since: float | None = None                # time.monotonic() when it began to leave the pool
    retiring: bool = False                            # chosen to leave once its tasks end: takes no new task
    recent_tasks: list[dict[str, Any]] = field(default_factory=list)
    scheduling_state: SchedulingState = SchedulingState.ENABLED   # disabled: it takes no new task (offline)
    boot_time: datetime = field(default_factory=utcnow)           # lastBootTime: its start-up, or its last reboot
    restarted: bool = False   # rebooted, reimaged or deallocated once: its boots no longer make its pool resize
    users: dict[str, NodeUser] = field(default_factory=dict)   # lowercased name -> the node's added user accounts
    login_port: int | None = None   # the port its remote login endpoint really listens on (netns), once it does

    def set_state(self, state: NodeState) -> None:
        if state == NodeState.IDLE and self.scheduling_state == SchedulingState.DISABLED:
            state = NodeState.OFFLINE   # as the service shows a node that runs nothing and takes no new task
        if state != self.state:
            self.state, self.state_time = state, utcnow()
        if state == NodeState.IDLE and self.idle_since is None:
            self.idle_since = time.monotonic()
        elif state != NodeState.IDLE:
            self.idle_since = None

    def slots_used(self) -> int:
        return sum(self.running.values())

    def usable(self) -> bool:
        return self.state in (NodeState.IDLE, NodeState.RUNNING) and not self.retiring and \
            self.scheduling_state == SchedulingState.ENABLED


@dataclass(kw_only=True)
class Entity:
    """What a pool, a job and a task share: ETag and last-modified time, state with its previous state,
    and the times of both transitions. Subclasses give ``state`` its type and first value."""
    state: WireEnum
    previous_state: WireEnum | None = None
    previous_state_time: datetime | None = None
    creation_time: datetime = field(default_factory=utcnow)
    state_time: datetime = field(default_factory=utcnow)
    last_modified: datetime = field(default_factory=utcnow)
    etag: str = field(default_factory=new_etag)

    def touch(self) -> None:
        """A change clients can see: new ETag and last-modified time."""
        self.last_modified, self.etag = utcnow(), new_etag()

    def transition(self, state: WireEnum) -> None:
        """Move to ``state`` (the current one becomes the previous state, both with their times) and touch.

        A passing state (a job's terminating, disabling, enabling) is never reported as the previous
        state: after terminate the service shows completed with previousState active (Azure/azure-sdk-assets,
        python/sdk/batch/azure-batch/tests/recordings/test_batch.pyTestBatchtest_batch_jobs[sync].json)."""
        if state != self.state:
            if self.state not in PASSING_STATES:
                self.previous_state, self.previous_state_time = self.state, self.state_time
            self.state, self.state_time = state, utcnow()
        self.touch()


@dataclass
class Pool(Entity):
    id: str
    spec: dict[str, Any]              # the validated create body (sizing lives in the fields below)
    state: PoolState = field(default=PoolState.ACTIVE, kw_only=True)
    enable_auto_scale: bool = False
    auto_scale_formula: str | None = None
    auto_scale_interval: str | None = None   # ISO-8601 duration as the client sent it
    target_dedicated: int = 0
    target_low_priority: int = 0
    resize_timeout: str = "PT15M"
    auto_scale_run: dict[str, Any] | None = None
    deallocation_option: DeallocationOption = DeallocationOption.REQUEUE   # the last autoscale run's option
    samples: Any = None                    # service.autoscale.SampleHistory, from the first tick on
    next_evaluation: float | None = None   # wall time (time.time()) of the next autoscale run
    last_enable: float | None = None       # wall time of the last enable-autoscale call
    allocation_state: AllocationState = AllocationState.STEADY
    allocation_state_time: datetime = field(default_factory=utcnow)
    nodes: dict[str, Node] = field(default_factory=dict)   # node id -> Node, in allocation order
    resize_errors: list[ResizeError] = field(default_factory=list)   # the last resize's (service/quota.py)
    resize_pending: bool = True    # a resize started that the scheduler has not sized yet (the pool add is one)
    settings: PoolSettings = field(init=False, repr=False)   # what decisions read of ``spec``, parsed once

    def __post_init__(self) -> None:
        self.spec_changed()

    def spec_changed(self) -> None:
        """``spec`` changed (a PATCH): parse the settings anew."""
        self.settings = PoolSettings.parse(self.spec)

    def set_allocation_state(self, state: AllocationState) -> None:
        if state != self.allocation_state:
            self.allocation_state, self.allocation_state_time = state, utcnow()

    def begin_resize(self) -> None:
        """A resize starts (a resize request, an applied autoscale run; the pool add is one): the scheduler's
        next sizing allocates anew, and what it cannot allocate replaces the last resize's resizeErrors."""
        self.resize_pending = True


@dataclass
class Task(Entity):
    id: str
    job_key: str
    spec: dict[str, Any]
    state: TaskState = field(default=TaskState.ACTIVE, kw_only=True)
    execution: dict[str, Any] = field(default_factory=lambda: {"retryCount": 0, "requeueCount": 0})
    node_info: dict[str, str] | None = None
    node_ids: list[str] = field(default_factory=list)      # assigned nodes, primary first
    subtasks: list[dict[str, Any]] = field(default_factory=list)   # wire dicts of subtasks 1..N-1
    stop_reason: StopReason | None = None   # why running work must stop (terminate, requeue, delete, ...)
    busy: bool = False        # a worker thread owns the run
    deleted: bool = False
    settings: TaskSettings = field(init=False, repr=False)   # what decisions read of ``spec``, parsed once

    def __post_init__(self) -> None:
        self.settings = TaskSettings.parse(self.spec)

    def instances(self) -> int:
        return self.settings.instances


@dataclass
class Job(Entity):
    id: str
    spec: dict[str, Any]
    state: JobState = field(default=JobState.ACTIVE, kw_only=True)
    end_time: datetime | None = None
    terminate_reason: str | None = None
    auto_pool_id: str | None = None          # the pool made from poolInfo.autoPoolSpecification
    manager_key: str | None = None           # the job manager task's key in ``tasks``
    disable_tasks: str | None = None         # disableTasks of the last disable (requeue, terminate, wait)
    tasks: dict[str, Task] = field(default_factory=dict)   # task key -> Task, in creation order
    prep_runs: dict[str, dict[str, Any]] = field(default_factory=dict)   # node id -> {"poolId","nodeId","info":{...}}
    settings: JobSettings = field(init=False, repr=False)   # what decisions and runs read of ``spec``, parsed once

    def __post_init__(self) -> None:
        self.spec_changed()

    def spec_changed(self) -> None:
        """``spec`` changed (a PATCH or PUT): parse the settings anew."""
        self.settings = JobSettings.parse(self.spec)

    def pool_id(self) -> str | None:
        """The pool the job runs on: its auto pool, or poolInfo.poolId."""
        return self.auto_pool_id or self.settings.pool_id

    def pool_key(self) -> str:
        return (self.pool_id() or "").lower()


@dataclass
class JobSchedule(Entity):
    """A job schedule: the jobs it makes from its jobSpecification on its recurrence (service/schedules.py)."""
    id: str
    spec: dict[str, Any]    # the validated body: schedule, jobSpecification, displayName, metadata
    state: JobScheduleState = field(default=JobScheduleState.ACTIVE, kw_only=True)
    next_run: float | None = None   # wall time (time.time()) the next job is due; None: it makes no more
    last_due: float | None = None   # wall time the latest job was due: the recurrence counts from there
    job_ids: list[str] = field(default_factory=list)   # the jobs it made (<id>:job-<n>), oldest first
    end_time: datetime | None = None


@dataclass
class Account:
    name: str
    root: str                 # where node directories live
    max_nodes: int = 8
    dedicated_core_quota: int | None = None      # --dedicated-core-quota; None: no quota (service/quota.py)
    low_priority_core_quota: int | None = None   # --low-priority-core-quota
    time_scale: float = 300.0  # the autoscale clock runs this much faster than the service's (service/autoscale.py)
    url: str = "http://127.0.0.1"   # set once the server listens; used in URLs and AZ_BATCH_ACCOUNT_URL
    lock: threading.RLock = field(default_factory=threading.RLock)
    pools: dict[str, Pool] = field(default_factory=dict)   # pool key -> Pool
    jobs: dict[str, Job] = field(default_factory=dict)     # job key -> Job
    job_schedules: dict[str, JobSchedule] = field(default_factory=dict)   # schedule key -> JobSchedule
    next_ip: int = 2          # nodes get 127.0.0.2, 127.0.0.3, ...
    supported_images: list[dict[str, Any]] | None = None  # --supported-images; None: the built-in list (api/wire.py)
    # A deleted pool or job stays visible (state deleting) at least this long, as on the service (where it
    # takes seconds; shortened like the autoscale clock so that clients waiting for 404 stay fast).
    deleting_seconds: float = 0.5
    changed: threading.Condition = field(init=False, repr=False)   # notified when the scheduler should look

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def wake(self) -> None:
        """Tell the scheduler something changed, so it need not wait for its next tick."""
        with self.changed:
            self.changed.notify_all()

    def allocate_ip(self) -> str:
        # Walk 127.0.0.2 .. 127.255.255.254, skipping .0/.255 host parts; loopback answers on all of /8.
        while True:
            n, self.next_ip = self.next_ip, self.next_ip + 1
            a, b, c = (n >> 16) & 255, (n >> 8) & 255, n & 255
            if c not in (0, 255):
                return f"127.{a}.{b}.{c}"

    def node_dir(self, node_id: str) -> str:
        return os.path.join(self.root, "nodes", node_id)


# ---- lookups (raise the service's 404/409 errors) ----

def get_pool(account: Account, pool_id: str, allow_deleting: bool = True) -> Pool:
    pool = account.pools.get(pool_id.lower())
    if pool is None:
        raise not_found("PoolNotFound")
    if not allow_deleting and pool.state == PoolState.DELETING:
        raise conflict("PoolBeingDeleted")
    return pool


def get_job(account: Account, job_id: str) -> Job:
    job = account.jobs.get(job_id.lower())
    if job is None:
        raise not_found("JobNotFound")
    return job


def get_task(account: Account, job_id: str, task_id: str) -> Task:
    task = get_job(account, job_id).tasks.get(task_id.lower())
    if task is None:
        raise not_found("TaskNotFound")
    return task


def get_node(account: Account, pool_id: str, node_id: str) -> Node:
    node = get_pool(account, pool_id).nodes.get(node_id)
    if node is None:
        raise not_found("NodeNotFound")
    return node


def find_node(account: Account, node_id: str) -> Node | None:
    for pool in account.pools.values():
        if node_id in pool.nodes:
            return pool.nodes[node_id]
    return None


def require_job_writable(job: Job, for_new_tasks: bool = False) -> None:
    """Refuse changes to jobs that are going away or finished, with the service's codes."""
    if job.state == JobState.DELETING:
        raise conflict("JobBeingDeleted")
    if job.state == JobState.TERMINATING:
        raise conflict("JobBeingTerminated")
    if job.state == JobState.COMPLETED:
        raise conflict("JobCompleted")
    if for_new_tasks and job.state != JobState.ACTIVE:
        raise conflict("JobNotActive")


# ---- queries the scheduler and the wire layer share ----

def task_metrics(account: Account, pool: Pool) -> dict[str, int]:
    """The task counts autoscale samples for ``pool``: active (runnable: dependencies met, job active) and
    running (preparing counts as running) task instances, and completed tasks by result."""
    counts = {"active": 0, "running": 0, "succeeded": 0, "failed": 0}
    for job in account.jobs.values():
        if job.pool_key() != pool.id.lower():
            continue
        for task in job.tasks.values():
            if task.state in (TaskState.PREPARING, TaskState.RUNNING) and \
                    job.state in (JobState.ACTIVE, JobState.TERMINATING):
                counts["running"] += task.instances()
            elif task.state == TaskState.ACTIVE and job.state == JobState.ACTIVE and dependencies_met(job, task):
                counts["active"] += task.instances()
            elif task.state == TaskState.COMPLETED:
                counts["succeeded" if task.execution.get("result") == ExecutionResult.SUCCESS else "failed"] += 1
    return counts


def pending_instances(account: Account, pool: Pool) -> int:
    """Instances the pool's work needs now: active (runnable) + preparing + running tasks, as $PendingTasks counts."""
    counts = task_metrics(account, pool)
    return counts["active"] + counts["running"]


def dependencies_met(job: Job, task: Task) -> bool:
    depends = task.spec.get("dependsOn")
    if not depends:
        return True
    wanted = [t.lower() for t in depends.get("taskIds") or []]
    for rng in depends.get("taskIdRanges") or []:
        wanted += [str(i) for i in range(int(rng["start"]), int(rng["end"]) + 1)]
    for key in wanted:
        other = job.tasks.get(key)
        if other is None or other.state != TaskState.COMPLETED or \
                other.execution.get("result") != ExecutionResult.SUCCESS:
            return False
    return True


def task_counts(job: Job) -> tuple[dict[str, int], dict[str, int]]:
    counts = {"active": 0, "running": 0, "completed": 0, "succeeded": 0, "failed": 0}
    slots = dict(counts)
    for task in job.tasks.values():
        state = TaskState.RUNNING if task.state == TaskState.PREPARING else task.state
        weight = task.settings.required_slots
        keys = [str(state)]
        if task.state == TaskState.COMPLETED:
            keys.append("succeeded" if task.execution.get("result") == ExecutionResult.SUCCESS else "failed")
        for key in keys:
            counts[key] += 1
            slots[key] += weight
    return counts, slots
