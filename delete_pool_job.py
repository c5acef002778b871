"""Delete a job, a pool, or both; or terminate one task. Clean-up after create_pool_job.py and send_task.py.

    python3 delete_pool_job.py --job_id JOB_ID                       # the job (its running tasks end)
    python3 delete_pool_job.py --pool_id POOL_ID                     # the pool (its nodes go)
    python3 delete_pool_job.py --pool_id POOL_ID --job_id JOB_ID     # both, the job first
    python3 delete_pool_job.py --job_id JOB_ID --task_id TASK_ID     # terminate one task, keep the job
    options: --yes (no question), --force (a pool other active jobs use), --dry_run, --poll_seconds S

1. Reads what is there and says what it will delete and what runs there
   (tasks of the job, nodes of the pool, other jobs on the pool).
2. Asks for confirmation in a terminal; without a terminal it needs --yes
   (else it refuses, exit 2, before any request).
3. Refuses to delete a pool that another active job uses, unless --force.
4. Sends the delete (or the terminate) and waits until it is done, printing
   progress (`Deleting job [JOB_ID]...`).

Safe to re-run: what is already gone is success, a job or pool already being
deleted is waited for. Ctrl-C while waiting leaves the service deleting: run the
same command again to wait for the end. --dry_run sends nothing that changes
anything: it reads what is there (GET requests) and prints the requests it would send.

Exit codes: 0 done (or nothing to do), 1 the service refused, 2 bad option or
configuration (or a pool in use without --force, or no terminal without --yes), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from config_resources import batch_access
from toolkit.batch import error_code, make_batch_client, wire_value
from toolkit.cli import EXIT_INTERRUPTED, EXIT_USAGE, ToolkitError, check_id, load_settings, make_parser, run

if TYPE_CHECKING:
    from azure.batch import BatchClient

# Job states in which a job still holds its pool (it may run tasks there).
ACTIVE_JOB_STATES = {"active", "disabling", "disabled", "enabling", "terminating"}
DEFAULT_POLL_SECONDS = 5.0
FIRST_POLL_SECONDS = 0.25
PROGRESS_SECONDS = 15.0


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "delete_pool_job.py", "Delete a job, a pool or both (the job first), or terminate one task of a job.")
    parser.add_argument("--job_id", help="the job to delete (its running tasks end), or the job of --task_id")
    parser.add_argument("--pool_id", help="the pool to delete (its nodes go)")
    parser.add_argument("--task_id", help="terminate this task of --job_id instead of deleting the job")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation (needed without a terminal)")
    parser.add_argument("--force", action="store_true", help="delete the pool even if other active jobs use it")
    parser.add_argument("--dry_run", action="store_true",
                        help="read what is there and print the requests that would be sent; change nothing")
    parser.add_argument("--poll_seconds", type=float, default=DEFAULT_POLL_SECONDS,
                        help=f"seconds between checks while waiting (default {DEFAULT_POLL_SECONDS:g})")
    return parser


# Deleting what does not exist succeeds (a re-run is safe), so these say where to see what does exist.
LIST_JOBS = "python3 check_task.py lists the jobs"
LIST_POOLS = "python3 check_task.py shows the pools in use"


@dataclass
class Plan:
    """What is there, read before anything changes."""
    job_state: str | None = None        # None: the job does not exist
    job_pool: str | None = None
    job_tasks: str = ""                 # e.g. "1 running, 2 waiting"
    pool_state: str | None = None       # None: the pool does not exist
    pool_nodes: int = 0
    other_jobs: tuple[str, ...] = ()    # other active jobs on the pool
    task_state: str | None = None       # None: the task does not exist


def check_options(args: argparse.Namespace) -> None:
    """Every usage error, before any request."""
    if args.task_id and not args.job_id:
        raise ToolkitError("--task_id needs the --job_id of its job.", EXIT_USAGE)
    if not args.job_id and not args.pool_id:
        raise ToolkitError("Give --job_id, --pool_id or both (see --help).", EXIT_USAGE)
    if args.task_id and args.pool_id:
        raise ToolkitError("--task_id terminates one task and keeps the job and pool: give it without --pool_id.",
                           EXIT_USAGE)
    if args.force and not args.pool_id:  # refused rather than ignored, as check_task.py refuses options doing nothing
        raise ToolkitError("--force lets --pool_id delete a pool other active jobs use, and there is no --pool_id: "
                           "drop --force, or add --pool_id POOL_ID.", EXIT_USAGE)
    for option in ("job_id", "pool_id", "task_id"):
        if getattr(args, option) is not None:
            check_id(f"--{option}", getattr(args, option))
    if not args.poll_seconds > 0:
        raise ToolkitError(f"--poll_seconds is {args.poll_seconds:g}; give a number of seconds above 0.", EXIT_USAGE)
    if not (args.yes or args.dry_run or sys.stdin.isatty()):
        raise ToolkitError("Refusing to delete without confirmation: there is no terminal to ask in. "
                           "Add --yes to delete without being asked.", EXIT_USAGE)


def read_plan(client: BatchClient, args: argparse.Namespace) -> Plan:
    from azure.core.exceptions import ResourceNotFoundError

    plan = Plan()
    if args.job_id:
        try:
            job = client.get_job(args.job_id, select=["id", "state", "poolInfo"])
            plan.job_state = wire_value(job.state)
            plan.job_pool = job.pool_info.pool_id if job.pool_info else None
            if plan.job_state != "deleting":
                counts = client.get_job_task_counts(args.job_id).task_counts
                plan.job_tasks = f"{counts.running} running, {counts.active} waiting, {counts.completed} completed"
        except ResourceNotFoundError:
            pass
    if args.task_id and plan.job_state is not None:
        try:
            plan.task_state = wire_value(client.get_task(args.job_id, args.task_id, select=["id", "state"]).state)
        except ResourceNotFoundError:
            pass
    if args.pool_id:
        try:
            pool = client.get_pool(args.pool_id, select=["id", "state", "currentDedicatedNodes",
                                                         "currentLowPriorityNodes"])
            plan.pool_state = wire_value(pool.state)
            plan.pool_nodes = (pool.current_dedicated_nodes or 0) + (pool.current_low_priority_nodes or 0)
        except ResourceNotFoundError:
            pass
        if plan.pool_state is not None:
            plan.other_jobs = tuple(
                job.id for job in client.list_jobs(select=["id", "state", "poolInfo"])
                if job.pool_info is not None and (job.pool_info.pool_id or "").lower() == args.pool_id.lower()
                and wire_value(job.state) in ACTIVE_JOB_STATES
                and (job.id or "").lower() != (args.job_id or "").lower())
    return plan


def describe(plan: Plan, args: argparse.Namespace) -> list[str]:
    """What will be done, one line per resource; an empty list when there is nothing to do."""
    lines = []
    if args.task_id:
        if plan.job_state is None:
            print(f"No job [{args.job_id}] in this account: task [{args.task_id}] is already gone, or the id is "
                  f"mistyped ({LIST_JOBS}).")
        elif plan.task_state is None:
            print(f"No task [{args.task_id}] in job [{args.job_id}]: nothing to terminate (already gone, or a "
                  f"mistyped id: python3 check_task.py --job_id {args.job_id} --verbose lists its tasks).")
        elif plan.task_state == "completed":
            print(f"Task [{args.task_id}] of job [{args.job_id}] has already completed: nothing to terminate.")
        else:
            effect = "its processes are stopped, its outputs are uploaded" if plan.task_state == "running" \
                else "it will never run"
            lines.append(f"terminate task [{args.task_id}] of job [{args.job_id}] (it is {plan.task_state}; {effect})")
        return lines
    if args.job_id:
        if plan.job_state is None:
            print(f"No job [{args.job_id}] in this account: already deleted, or a mistyped id ({LIST_JOBS}).")
        elif plan.job_state == "deleting":
            lines.append(f"wait for job [{args.job_id}], which is already being deleted")
        else:
            lines.append(f"delete job [{args.job_id}] ({plan.job_state}, on pool [{plan.job_pool}]; tasks: "
                         f"{plan.job_tasks}): its running tasks end, its tasks and their files are deleted")
    if args.pool_id:
        if plan.pool_state is None:
            print(f"No pool [{args.pool_id}] in this account: already deleted, or a mistyped id ({LIST_POOLS}).")
        elif plan.pool_state == "deleting":
            lines.append(f"wait for pool [{args.pool_id}], which is already being deleted")
        else:
            others = f"; other active jobs on it: {', '.join(plan.other_jobs)}" if plan.other_jobs else ""
            lines.append(f"delete pool [{args.pool_id}] ({plan.pool_nodes} node(s) now{others}): its nodes go")
    return lines


def confirm(lines: list[str], args: argparse.Namespace) -> None:
    print("This will:")
    for line in lines:
        print(f"  - {line}")
    if args.yes:
        return
    try:
        answer = input("Go ahead? [y/N] ").strip().lower()
    except EOFError:  # Ctrl-D: the terminal's cursor is still after the question
        print(file=sys.stderr)
        answer = ""
    except KeyboardInterrupt:  # the next line must not start after the question and the terminal's ^C
        print(file=sys.stderr)
        raise ToolkitError("Interrupted: nothing deleted.", EXIT_INTERRUPTED) from None
    if answer not in ("y", "yes"):
        raise ToolkitError("Nothing deleted: not confirmed (answer y, or add --yes).")


def wait(what: str, done: Callable[[], bool], poll_seconds: float) -> None:
    """Call done() until it is true: first after FIRST_POLL_SECONDS, then twice as long each time up to
    poll_seconds (a quick delete ends quickly), saying every PROGRESS_SECONDS that it still waits."""
    started = last_said = time.monotonic()
    delay = min(FIRST_POLL_SECONDS, poll_seconds)
    while not done():
        time.sleep(delay)
        delay = min(delay * 2, poll_seconds)
        now = time.monotonic()
        if now - last_said >= PROGRESS_SECONDS:
            print(f"  still {what} ({now - started:.0f} s)...", flush=True)
            last_said = now


def gone(getter: Callable[[], object]) -> Callable[[], bool]:
    """A done() for wait(): true once getter() answers 404."""
    from azure.core.exceptions import ResourceNotFoundError

    def check() -> bool:
        try:
            getter()
        except ResourceNotFoundError:
            return True
        return False
    return check


def delete_job(client: BatchClient, job_id: str, poll_seconds: float) -> None:
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    print(f"Deleting job [{job_id}]...", flush=True)
    try:
        client.begin_delete_job(job_id, polling_interval=max(1, round(poll_seconds)))
    except ResourceNotFoundError:
        print(f"Job [{job_id}] is already gone.")
        return
    except ResourceExistsError as err:
        if error_code(err) != "JobBeingDeleted":
            raise
    # Our own wait (not the poller's): the same for a delete sent now and for one already under way.
    wait(f"deleting job [{job_id}]", gone(lambda: client.get_job(job_id, select=["id"])), poll_seconds)
    print(f"Job [{job_id}] deleted.")


def delete_pool(client: BatchClient, pool_id: str, poll_seconds: float) -> None:
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    print(f"Deleting pool [{pool_id}]...", flush=True)
    try:
        client.begin_delete_pool(pool_id, polling_interval=max(1, round(poll_seconds)))
    except ResourceNotFoundError:
        print(f"Pool [{pool_id}] is already gone.")
        return
    except ResourceExistsError as err:
        if error_code(err) != "PoolBeingDeleted":
            raise
    wait(f"deleting pool [{pool_id}]", gone(lambda: client.get_pool(pool_id, select=["id"])), poll_seconds)
    print(f"Pool [{pool_id}] deleted.")


def terminate_task(client: BatchClient, job_id: str, task_id: str, poll_seconds: float) -> None:
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    print(f"Terminating task [{task_id}] of job [{job_id}]...", flush=True)
    try:
        client.terminate_task(job_id, task_id)
    except ResourceNotFoundError:
        print(f"Task [{task_id}] is already gone.")
        return
    except ResourceExistsError as err:
        if error_code(err) != "TaskCompleted":
            raise

    def completed() -> bool:
        try:
            return wire_value(client.get_task(job_id, task_id, select=["id", "state"]).state) == "completed"
        except ResourceNotFoundError:
            return True
    wait(f"terminating task [{task_id}]", completed, poll_seconds)
    print(f"Task [{task_id}] terminated. Its outputs: python3 check_task.py --job_id {job_id}")


def dry_run(lines: list[str], args: argparse.Namespace, endpoint: str) -> int:
    print("Dry run: these requests would be sent (nothing is sent; only reads were made):")
    if args.task_id:
        print(f"POST {endpoint}/jobs/{args.job_id}/tasks/{args.task_id}/terminate")
        return 0
    if args.job_id and any(line.startswith("delete job") for line in lines):
        print(f"DELETE {endpoint}/jobs/{args.job_id}")
    if args.pool_id and any(line.startswith("delete pool") for line in lines):
        print(f"DELETE {endpoint}/pools/{args.pool_id}")
    return 0


def delete(args: argparse.Namespace) -> int:
    check_options(args)
    access = load_settings(batch_access)
    client = make_batch_client(access)
    plan = read_plan(client, args)
    if args.pool_id and plan.other_jobs and plan.pool_state not in (None, "deleting") and not args.force:
        jobs = " ".join(f"--job_id {job}" for job in plan.other_jobs[:1])
        raise ToolkitError(f"Pool [{args.pool_id}] is used by other active job(s): {', '.join(plan.other_jobs)}. "
                           f"Delete them first (python3 delete_pool_job.py {jobs} --yes), or add --force "
                           "(their tasks would wait for a pool that is gone).", EXIT_USAGE)
    lines = describe(plan, args)
    if not lines:
        print("Nothing to do.")
        return 0
    if args.dry_run:
        for line in lines:
            print(f"Would {line}.")
        return dry_run(lines, args, access.endpoint)
    confirm(lines, args)
    try:
        if args.task_id:
            terminate_task(client, args.job_id, args.task_id, args.poll_seconds)
            return 0
        if args.job_id and plan.job_state is not None:
            delete_job(client, args.job_id, args.poll_seconds)
        if args.pool_id and plan.pool_state is not None:
            delete_pool(client, args.pool_id, args.poll_seconds)
    except KeyboardInterrupt:
        raise ToolkitError("Interrupted: a delete already sent goes on at the service. Run the same command again "
                           "to finish it and wait for the end.", EXIT_INTERRUPTED) from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda: delete(args))


if __name__ == "__main__":
    sys.exit(main())
