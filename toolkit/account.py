"""The jobs and pools of the account as check_task.py shows them: the jobs asked for (one request), and
the pools they use with their nodes by state (two requests for all pools).

The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from toolkit.batch import wire_value
from toolkit.failures import ResizeProblem, resize_problem
from toolkit.progress import Line

if TYPE_CHECKING:
    from azure.batch import BatchClient, models

JOB_FIELDS = ["id", "poolInfo", "state", "creationTime"]
POOL_FIELDS = ["id", "state", "enableAutoScale", "vmSize", "resizeErrors", "currentDedicatedNodes",
               "currentLowPriorityNodes"]
ENDED_JOB_STATES = {"completed", "terminating", "deleting"}


@dataclass(frozen=True)
class Job:
    id: str
    pool_id: str | None
    state: str
    created: str  # the job's creation time: the record tells a job made again under the same id by it


def list_jobs(client: BatchClient, job_id: str | None) -> list[Job]:
    """The job asked for (its own spelling of the id), or every job of the account: one request."""
    found = [client.get_job(job_id, select=JOB_FIELDS)] if job_id else client.list_jobs(select=JOB_FIELDS)
    return [Job(job.id, job.pool_info.pool_id if job.pool_info else None, wire_value(job.state),
                job.creation_time.isoformat() if job.creation_time else "") for job in found]


@dataclass(frozen=True)
class PoolSummary:
    """A pool as check_task shows it: its nodes by state and why it cannot get more, if so."""

    id: str
    state: str
    autoscale: bool
    nodes: dict[str, int]
    resize: ResizeProblem | None


@dataclass
class PoolsView:
    lines: list[Line]
    existing: set[str]
    shown: list[PoolSummary] = field(default_factory=list)


NODE_STATES = ("running", "idle", "creating", "starting", "waiting_for_start_task", "start_task_failed",
               "rebooting", "reimaging", "leaving_pool", "offline", "preempted", "unusable", "unknown",
               "deallocating", "deallocated", "upgrading_os")


def node_counts(client: BatchClient) -> dict[str, Counter[str]]:
    """Every pool's nodes by state, dedicated and low-priority together (one request for all pools)."""
    nodes: dict[str, Counter[str]] = {}
    for entry in client.list_pool_node_counts():
        states: Counter[str] = Counter()
        for counts in (entry.dedicated, entry.low_priority):
            for state in NODE_STATES:
                states[state] += getattr(counts, state, 0) or 0 if counts is not None else 0
        nodes[entry.pool_id] = states
    return nodes


def pools_view(client: BatchClient, jobs: list[Job], whole_account: bool) -> PoolsView:
    """The pools the jobs use, with their nodes by state (two requests for all pools); with the whole
    account in view, a pool with nodes but no active job is flagged: it costs money for nothing."""
    nodes = node_counts(client)
    pools = {pool.id: pool for pool in client.list_pools(select=POOL_FIELDS)}
    active_jobs: dict[str, list[str]] = {}
    for job in jobs:
        if job.pool_id and job.state not in ENDED_JOB_STATES:
            active_jobs.setdefault(job.pool_id.lower(), []).append(job.id)
    used = {job.pool_id.lower() for job in jobs if job.pool_id}
    lines, shown = [], []
    for pool_id, pool in sorted(pools.items()):
        states = nodes.get(pool_id, Counter())
        total = sum(states.values())
        if pool_id.lower() not in used and not (whole_account and total):
            continue
        resize = resize_problem(pool)
        shown.append(PoolSummary(pool_id, wire_value(pool.state), bool(pool.enable_auto_scale),
                                 {state: n for state, n in states.items() if n}, resize))
        lines.append((f"pool/{pool_id}", pool_text(pool, states, active_jobs.get(pool_id.lower(), []),
                                                   whole_account), ""))
        if resize is not None:
            lines.append((f"pool/{pool_id}/resize", f"  it cannot get the nodes it asks for ({resize.code}): "
                                                    f"{resize.advice}.", ""))
    return PoolsView(lines, {pool_id.lower() for pool_id in pools}, shown)


def pool_text(pool: models.BatchPool, states: Counter[str], users: list[str], whole_account: bool) -> str:
    """'Pool [p]: 2 nodes (running 1, idle 1), autoscale; active jobs: j1', or the advice to delete an idle
    pool that costs money for nothing (said only with the whole account in view)."""
    total = sum(states.values())
    detail = ", ".join(f"{state.replace('_', ' ')} {n}" for state, n in states.most_common() if n)
    text = f"Pool [{pool.id}]: {total} node{'' if total == 1 else 's'}{f' ({detail})' if detail else ''}"
    if pool.enable_auto_scale:
        text += ", autoscale"
    if wire_value(pool.state) == "deleting":
        text += ", being deleted"
    if users:
        text += f"; active jobs: {', '.join(users[:3])}{f' and {len(users) - 3} more' if len(users) > 3 else ''}"
    elif whole_account and total and wire_value(pool.state) != "deleting":
        text += (f"; no active job, so it costs money for nothing: delete it with "
                 f"python3 delete_pool_job.py --pool_id {pool.id} --yes")
    return text


def leftover_pools(client: BatchClient) -> list[str]:
    """With no job in the account: a line per pool left (two requests), each with the command that deletes it.
    A pool with nodes costs money for nothing; an autoscale pool at 0 nodes costs nothing until a job comes."""
    nodes = node_counts(client)
    lines = []
    for pool in sorted(client.list_pools(select=POOL_FIELDS), key=lambda pool: pool.id):
        states = nodes.get(pool.id, Counter())
        text = pool_text(pool, states, [], whole_account=True)
        if not sum(states.values()) and wire_value(pool.state) != "deleting":
            text += (f"; no job, and no node to pay for: delete it when you are done with "
                     f"python3 delete_pool_job.py --pool_id {pool.id} --yes")
        lines.append(text)
    return lines
