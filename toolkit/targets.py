"""Where send_task.py's task goes: the job, checked to be active, and its pool, checked to run MPI tasks and
to be able to have the nodes asked for; the fabric its VM size has (InfiniBand or TCP) and a node's cores,
which decide the default START_COMMAND and the warnings about it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from toolkit.batch import mpi_problem, pool_max_nodes, wire_value
from toolkit.checked import TaskSettings
from toolkit.commands import Fabric
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.failures import pool_node_count, resize_problem
from toolkit.vmsizes import cores_of, is_infiniband_size

if TYPE_CHECKING:
    from azure.batch import BatchClient, models


@dataclass(frozen=True)
class Target:
    """Where the task goes: the job (its id as the service spells it), its pool, and how its nodes talk MPI."""
    job_id: str
    pool_id: str
    fabric: Fabric
    cores: int | None = None    # a node's vCPUs, read from the pool's VM size name (None: not readable)


def check_job_and_pool(client: BatchClient, job_id: str, nodes: int, dry_run_vm_size: str | None = None) -> Target:
    """Check the job exists and is active and its pool can run this MPI task.

    Returns the job id as the service spells it (ids are case-insensitive, and the blob path of the
    outputs must use the job's own spelling, where check_task.py looks for them), the pool id, and the
    fabric its VM size has (InfiniBand for HB, HC, HX, ND... `r` sizes)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        job = client.get_job(job_id, select=["id", "state", "poolInfo"])
    except ResourceNotFoundError:
        if dry_run_vm_size is not None:   # a dry run before the job: what can be checked yet, and the body anyway
            print(f"Job [{job_id}] does not exist yet: checked are the settings, the command line and the "
                  "container's SAS (and, next, that the container exists); not checked are the job's state, its "
                  f"pool and the pool's nodes; the command line is the one for VM_SIZE {dry_run_vm_size}.")
            return Target(job_id, "", fabric_of(dry_run_vm_size), cores_of(dry_run_vm_size))
        raise ToolkitError(f"Job [{job_id}] does not exist: create it with "
                           f"python3 create_pool_job.py --pool_id POOL_ID --job_id {job_id}") from None
    if wire_value(job.state) != "active":
        raise ToolkitError(f"Job [{job_id}] is {wire_value(job.state)}, so it takes no new tasks: "
                           "create another job with create_pool_job.py.")
    pool_id = job.pool_info.pool_id if job.pool_info else None
    if pool_id is None:  # an auto pool, which create_pool_job.py never makes
        raise ToolkitError(f"Job [{job_id}] runs on no named pool: use a job made by create_pool_job.py.")
    try:
        pool = client.get_pool(pool_id, select=["id", "state", "enableInterNodeCommunication", "taskSlotsPerNode",
                                                "enableAutoScale", "targetDedicatedNodes",
                                                "targetLowPriorityNodes", "metadata", "vmSize", "resizeErrors",
                                                "currentDedicatedNodes", "currentLowPriorityNodes"])
    except ResourceNotFoundError:
        raise ToolkitError(f"Job [{job_id}] runs on pool [{pool_id}], which does not exist: create it with "
                           f"python3 create_pool_job.py --pool_id {pool_id} --job_id {job_id}") from None
    problem = mpi_problem(pool)
    if problem:
        raise ToolkitError(f"Pool [{pool_id}] cannot run MPI tasks: {problem}. The task would wait forever; "
                           "use a pool made by create_pool_job.py.")
    max_nodes = pool_max_nodes(pool)
    if max_nodes is not None and nodes > max_nodes:
        raise ToolkitError(f"{nodes} nodes (--nodes or NB_NODES) is more than pool [{pool_id}] can ever have "
                           f"({max_nodes}): the task would wait forever. Use --nodes {max_nodes} or fewer, or a pool "
                           "with a larger --max_nodes.", ExitStatus.USAGE)
    check_resize(pool, nodes)
    return Target(job.id, pool_id, fabric_of(pool.vm_size or ""), cores_of(pool.vm_size or ""))


def fabric_of(vm_size: str) -> Fabric:
    """InfiniBand for an RDMA-capable size (HB, HC, HX, ND... with an r), TCP for any other."""
    return Fabric.INFINIBAND if is_infiniband_size(vm_size) else Fabric.TCP


def check_resize(pool: models.BatchPool, nodes: int) -> None:
    """Refuse a task that a pool's resize error keeps from ever starting (a core quota used up, with fewer
    nodes than it needs); warn about one that waiting may cure (an allocation that failed this time)."""
    problem = resize_problem(pool)
    if problem is None:
        return
    have = pool_node_count(pool)
    if problem.lasting and have < nodes:
        raise ToolkitError(f"Pool [{pool.id}] has {have} node(s) and cannot get the {nodes} this task needs "
                           f"({problem.code}): {problem.advice}. The task would wait until then; nothing was added.")
    print(f"Warning: pool [{pool.id}] could not get all the nodes it asked for ({problem.code}): {problem.advice}.",
          file=sys.stderr)


def warn_idle_nodes(target: Target, nodes: int, processes: int | None) -> None:
    """Warn when the ranks would not reach every node of the task: ranks fill a node's cores first, and
    a node without a rank idles, billed, for the whole task."""
    if processes is None or target.cores is None:
        return
    used = min(nodes, -(-processes // target.cores))
    if used < nodes:
        print(f"Warning: {processes} MPI process(es) fill {used} of the task's {nodes} nodes ({target.cores} cores "
              f"each): the other {nodes - used} would idle, billed, while it runs. Use --nodes {used}, or more "
              "processes (--processes).", file=sys.stderr)


def describe_fabric(target: Target, settings: TaskSettings, processes: int | None) -> None:
    """On an InfiniBand pool, say what the default START_COMMAND does there (it differs from the TCP line)."""
    if target.fabric is not Fabric.INFINIBAND or not settings.start_command_is_default:
        return
    count = settings.processes_for(target.fabric, processes)
    print(f"Pool [{target.pool_id}] has InfiniBand nodes: mpirun loads HPC-X and runs over the fabric with "
          + ("one process per core of the task's nodes (NB_PROCESSES is unset)." if count is None
             else f"{count} process(es)."))
