"""Decisions the service makes on its own: pool sizes, node lifecycle, job ends, task placement.

``tick(account)`` runs under the account lock every ~0.1 s (and when a request wakes it).
It changes state and returns work for the executor to start; it never does I/O itself.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from . import autoscale, jobs, quota, schedules
from .errors import ResizeError
from .state import Account, Job, Node, Pool, Task, dependencies_met, iso, node_info, utcnow
from .states import AllocationState, DeallocationOption, JobState, NodeState, PoolState, StopReason, TaskState
from .validation import parse_duration

LEAVING_SECONDS = 0.2       # nodes show "leavingpool" this long before they disappear
# Nodes a shrinking pool gives up first: those doing no work, broken ones before starting ones before idle ones.
REMOVAL_ORDER = {NodeState.START_TASK_FAILED: 0, NodeState.CREATING: 1, NodeState.WAITING_FOR_START_TASK: 2,
                 NodeState.IDLE: 3}


# ---- the work tick() hands the executor (runtime/executor.py dispatches on the type) ----

@dataclass(frozen=True, eq=False)
class Provision:
    """Start ``node``, new in ``pool``: its directories, its start task."""
    pool: Pool
    node: Node


@dataclass(frozen=True, eq=False)
class RunTask:
    """Run ``task`` on ``nodes`` (primary first), placed on them already."""
    job: Job
    task: Task
    nodes: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class RemoveJobFiles:
    """The job is gone: its directories on every node go."""
    job: Job


@dataclass(frozen=True, eq=False)
class RemoveNode:
    """The node left its pool: its files go with it, as with a removed VM."""
    node: Node


Action = Provision | RunTask | RemoveJobFiles | RemoveNode


def tick(account: Account) -> list[Action]:
    """Advance everything one step; returns the work the executor starts."""
    actions: list[Action] = []
    now, wall = time.monotonic(), time.time()
    for key, pool in list(account.pools.items()):
        if pool.state == PoolState.ACTIVE:
            autoscale.step(account, pool, wall)   # samples, and the formula when its interval is up
        actions += _size_pool(account, key, pool, now)
    schedules.step(account, wall)   # job schedules make the jobs that are due, end, or go once deleted
    for key, job in list(account.jobs.items()):
        actions += _advance_job(account, key, job)
    actions += _assign_tasks(account)
    return actions


def _new_node(account: Account, pool: Pool, dedicated: bool) -> Node:
    node_id = f"tvmps_{secrets.token_hex(32)}_{'d' if dedicated else 'p'}"
    node = Node(id=node_id, pool_id=pool.id, ip=account.allocate_ip(), dedicated=dedicated,
                root=account.node_dir(node_id))
    pool.nodes[node_id] = node
    return node


def _stop_work_on(account: Account, node: Node, reason: StopReason) -> None:
    for (job_key, task_key, _sub) in list(node.running):
        job = account.jobs.get(job_key)
        task = job.tasks.get(task_key) if job is not None else None
        if task is not None and task.stop_reason is None:
            task.stop_reason = reason


def _size_pool(account: Account, key: str, pool: Pool, now: float) -> list[Action]:
    actions = _finish_departures(pool, now)
    if pool.state == PoolState.DELETING:
        _wind_down(account, key, pool, now)
        return actions
    # Autoscale pools remove busy nodes as the formula's $NodeDeallocationOption says; resized pools
    # let running tasks finish (taskcompletion: the emulator ignores the resize's option).
    option = pool.deallocation_option if pool.enable_auto_scale else DeallocationOption.TASK_COMPLETION
    # A new resize sizes the pool anew; one that ended short of its targets (resizeErrors) stays so.
    fresh, pool.resize_pending = pool.resize_pending, False
    ended_short = bool(pool.resize_errors) and not fresh
    errors = [] if fresh else list(pool.resize_errors)
    for dedicated, target in ((True, pool.target_dedicated), (False, pool.target_low_priority)):
        provisions, error = _resize(account, pool, dedicated, target, option, ended_short, now)
        actions += provisions
        if error is not None:
            errors.append(error)
    _settle_allocation(pool, errors)
    return actions


def _finish_departures(pool: Pool, now: float) -> list[Action]:
    """Nodes that have shown leavingpool long enough and run nothing leave the pool."""
    actions: list[Action] = []
    for node in list(pool.nodes.values()):
        if node.state == NodeState.LEAVING_POOL and node.leaving_since is not None and \
                now - node.leaving_since >= LEAVING_SECONDS and not node.running:
            del pool.nodes[node.id]
            actions.append(RemoveNode(node))   # its files go with it, as with a removed VM
    return actions


def _wind_down(account: Account, key: str, pool: Pool, now: float) -> None:
    """A deleting pool: its nodes leave, and once they are gone (and it showed deleting long enough), it does."""
    for node in pool.nodes.values():
        _stop_work_on(account, node, StopReason.REQUEUE)   # the service requeues running tasks of a deleted pool
        _leave(node, now)
    pool.set_allocation_state(AllocationState.RESIZING)    # as a deleting pool shows on the service
    if not pool.nodes and _deleting_long_enough(account, pool):
        del account.pools[key]


def _resize(account: Account, pool: Pool, dedicated: bool, target: int, option: DeallocationOption,
            ended_short: bool, now: float) -> tuple[list[Action], ResizeError | None]:
    """Bring the pool's dedicated (or low-priority) nodes towards ``target``: the new nodes to provision,
    and the resize error when the core quota cuts the growth short."""
    members = [n for n in pool.nodes.values() if n.dedicated == dedicated and n.state != NodeState.LEAVING_POOL]
    staying = [n for n in members if not n.retiring]
    for node in [n for n in members if n.retiring][:max(0, target - len(staying))]:
        node.retiring = False       # wanted again before its task ended: it stays
        staying.append(node)
    missing = 0 if ended_short else target - len(staying)
    fit = quota.nodes_that_fit(account, pool, dedicated, missing) if missing > 0 else 0
    actions: list[Action] = [Provision(pool, _new_node(account, pool, dedicated)) for _ in range(fit)]
    error = quota.quota_error(dedicated) if fit < missing else None
    _shrink(account, staying, len(staying) - target, option, now)
    for node in members:
        if node.retiring and not node.running:
            _leave(node, now)
    return actions, error


def _shrink(account: Account, staying: list[Node], surplus: int, option: DeallocationOption, now: float) -> None:
    """``surplus`` nodes leave, those doing no work first; busy ones as the deallocation option says."""
    for node in sorted(staying, key=lambda n: REMOVAL_ORDER.get(n.state, len(REMOVAL_ORDER)))[:max(0, surplus)]:
        if not node.running:
            _leave(node, now)
        elif option in (DeallocationOption.REQUEUE, DeallocationOption.TERMINATE):
            # requeue: running tasks go back to the queue; terminate: they end (TaskEnded).
            _stop_work_on(account, node, StopReason.REQUEUE if option == DeallocationOption.REQUEUE
                          else StopReason.NODE_DEALLOCATION)
            _leave(node, now)
        else:
            node.retiring = True    # taskcompletion / retaineddata: leaves once its tasks end


def _settle_allocation(pool: Pool, errors: list[ResizeError]) -> None:
    """Steady once every node has settled and the counts match the targets (or the resize ended short)."""
    # Offline is idle with scheduling disabled; a node rebooted, reimaged, deallocated or started
    # (service/nodes.py) is allocated already: its boot is no resize.
    settled = all(n.state in (NodeState.IDLE, NodeState.RUNNING, NodeState.START_TASK_FAILED, NodeState.OFFLINE)
                  or n.restarted for n in pool.nodes.values())
    counts_match = sum(1 for n in pool.nodes.values() if n.dedicated) == pool.target_dedicated and \
        sum(1 for n in pool.nodes.values() if not n.dedicated) == pool.target_low_priority
    pool.resize_errors = errors    # a resize that ended short is steady at the nodes it got
    done = counts_match or bool(errors)
    pool.set_allocation_state(AllocationState.STEADY if settled and done else AllocationState.RESIZING)


def _deleting_long_enough(account: Account, entity: Pool | Job) -> bool:
    """A deleted pool or job shows state deleting for a while before it is gone (404), as on the service."""
    return (utcnow() - entity.state_time).total_seconds() >= account.deleting_seconds


def _leave(node: Node, now: float) -> None:
    if node.state != NodeState.LEAVING_POOL:
        node.set_state(NodeState.LEAVING_POOL)
        node.leaving_since = now


def _advance_job(account: Account, key: str, job: Job) -> list[Action]:
    actions: list[Action] = []
    limit = job.settings.max_wall_clock_time
    if job.state == JobState.ACTIVE:
        if limit and (utcnow() - job.creation_time) > parse_duration(limit, "constraints.maxWallClockTime"):
            jobs.begin_terminate(job, "MaxWallClockTimeExpiry")
        elif job.settings.terminate_when_all_tasks_complete and job.tasks and \
                all(t.state == TaskState.COMPLETED for t in job.tasks.values()):
            # Not on a job without tasks: one with terminatejob and no task stayed active for 20 s until
            # deleted (Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/
            # test_batch.pyTestBatchtest_batch_jobs[sync].json), although the REST text suggests otherwise.
            jobs.begin_terminate(job, "AllTasksComplete")
    if job.state == JobState.DISABLING:
        jobs.advance_disabling(job)
    if job.state in (JobState.TERMINATING, JobState.DELETING):
        reason = StopReason.JOB_TERMINATE if job.state == JobState.TERMINATING else StopReason.DELETE
        for task in job.tasks.values():
            if task.busy and task.stop_reason is None:
                task.stop_reason = reason
        if not any(t.busy for t in job.tasks.values()):
            if job.state == JobState.TERMINATING:
                job.transition(JobState.COMPLETED)
                job.end_time = job.state_time
                jobs.end_auto_pool(account, job)
            elif _deleting_long_enough(account, job):
                del account.jobs[key]
                jobs.end_auto_pool(account, job)
                actions.append(RemoveJobFiles(job))
    return actions


def _eligible_nodes(pool: Pool, job_key: str, slots: int, whole_node: bool) -> list[Node]:
    per_node = pool.settings.task_slots_per_node
    nodes = [n for n in pool.nodes.values() if n.usable() and job_key not in n.prep_failed
             and (n.slots_used() == 0 if whole_node else per_node - n.slots_used() >= slots)]
    pack = pool.settings.pack_nodes
    return sorted(nodes, key=lambda n: -n.slots_used() if pack else n.slots_used())


def _assign_tasks(account: Account) -> list[Action]:
    actions: list[Action] = []
    active = sorted((j for j in account.jobs.values() if j.state == JobState.ACTIVE),
                    key=lambda j: (-j.settings.priority, j.creation_time))
    for job in active:
        pool = account.pools.get(job.pool_key())
        if pool is None or pool.state != PoolState.ACTIVE:
            continue     # the service accepts jobs on missing pools; their tasks just wait
        limit = job.settings.max_parallel_tasks
        busy = sum(1 for t in job.tasks.values() if t.state in (TaskState.PREPARING, TaskState.RUNNING))
        manager_first = jobs.waiting_for_manager(job)   # the job manager starts before any other task
        for task in job.tasks.values():
            if limit != -1 and busy >= limit:
                break
            if task.state != TaskState.ACTIVE or task.busy or not dependencies_met(job, task):
                continue
            if manager_first and task.id.lower() != job.manager_key:
                break
            multi = task.settings.multi_instance is not None
            if multi and (not pool.settings.inter_node_communication or pool.settings.task_slots_per_node != 1):
                # Accepted but never scheduled: it stays active, as the service documents for a pool without
                # inter-node communication or with taskSlotsPerNode > 1
                # (https://learn.microsoft.com/azure/batch/batch-mpi).
                continue
            slots = task.settings.required_slots
            exclusive = jobs.manager_runs_exclusive(job, task)   # runExclusive: the node runs nothing else
            if exclusive:
                slots = pool.settings.task_slots_per_node
            nodes = _eligible_nodes(pool, job.id.lower(), slots, whole_node=multi or exclusive)[:task.instances()]
            if len(nodes) < task.instances():
                continue
            actions.append(RunTask(job, task, tuple(nodes)))
            _place(account, job, task, pool, nodes, slots)
            busy += 1
    return actions


def _place(account: Account, job: Job, task: Task, pool: Pool, nodes: list[Node], slots: int) -> None:
    for index, node in enumerate(nodes):
        node.running[(job.id.lower(), task.id.lower(), index)] = slots
        node.set_state(NodeState.RUNNING)
    task.busy, task.stop_reason = True, None
    task.node_ids = [n.id for n in nodes]
    task.node_info = node_info(account.url, pool.id, nodes[0].id, f"workitems/{job.id}/job-1/{task.id}")
    prep = job.settings.preparation
    waits = prep is not None and prep.wait_for_success
    if waits and any(job.id.lower() not in n.prep_succeeded for n in nodes):
        task.transition(TaskState.PREPARING)
    else:
        task.transition(TaskState.RUNNING)
        task.execution["startTime"] = iso(utcnow())


def release_nodes(account: Account, job_key: str, task: Task) -> None:
    """Free the task's slots; nodes with nothing left to run go back to idle."""
    task_key = task.id.lower()
    for pool in account.pools.values():
        for node in pool.nodes.values():
            for key in [k for k in node.running if k[0] == job_key and k[1] == task_key]:
                del node.running[key]
            if not node.running and node.state == NodeState.RUNNING:
                node.set_state(NodeState.IDLE)
    task.busy = False
