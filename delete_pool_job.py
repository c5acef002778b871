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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from toolkit.batch import error_code, make_batch_client, wire_value
from toolkit.checked import batch_access
from toolkit.cli import check_id, make_parser, run
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.retry import Clock, Pause, Schedule, retry
from toolkit.settings import Settings, load_settings

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
class Found:
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
        raise ToolkitError("--task_id needs the --job_id of its job.", ExitStatus.USAGE)
    if not args.job_id and not args.pool_id:
        raise ToolkitError("Give --job_id, --pool_id or both (see --help).", ExitStatus.USAGE)
    if args.task_id and args.pool_id:
        raise ToolkitError("--task_id terminates one task and keeps the job and pool: give it without --pool_id.",
                           ExitStatus.USAGE)
    if args.force and not args.pool_id:  # refused rather than ignored, as check_task.py refuses options doing nothing
        raise ToolkitError("--force lets --pool_id delete a pool other active jobs use, and there is no --pool_id: "
                           "drop --force, or add --pool_id POOL_ID.", ExitStatus.USAGE)
    for option in ("job_id", "pool_id", "task_id"):
        if getattr(args, option) is not None:
            check_id(f"--{option}", getattr(args, option))
    if not args.poll_seconds > 0:
        raise ToolkitError(f"--poll_seconds is {args.poll_seconds:g}; give a number of seconds above 0.",
                           ExitStatus.USAGE)
    if not (args.yes or args.dry_run or sys.stdin.isatty()):
        raise ToolkitError("Refusing to delete without confirmation: there is no terminal to ask in. "
                           "Add --yes to delete without being asked.", ExitStatus.USAGE)


@dataclass(frozen=True)
class Action:
    """One thing the run does: what confirm() lists and the dry run says, the request it sends, and its run."""
    summary: str                        # e.g. "delete job [j1] (active, on pool [p1]; ...)"
    request: tuple[str, str] | None     # (method, path) of the request that changes something; None: it waits
    run: Callable[[BatchClient, float], None]  # (client, poll_seconds)


@dataclass(frozen=True)
class Plan:
    """The actions, in order (the job before its pool), and what needs none: already gone, or done."""
    actions: tuple[Action, ...]
    notes: tuple[str, ...]


def read_found(client: BatchClient, args: argparse.Namespace) -> Found:
    from azure.core.exceptions import ResourceNotFoundError

    found = Found()
    if args.job_id:
        try:
            job = client.get_job(args.job_id, select=["id", "state", "poolInfo"])
            found.job_state = wire_value(job.state)
            found.job_pool = job.pool_info.pool_id if job.pool_info else None
            if found.job_state != "deleting":
                counts = client.get_job_task_counts(args.job_id).task_counts
                found.job_tasks = f"{counts.running} running, {counts.active} waiting, {counts.completed} completed"
        except ResourceNotFoundError:
            pass
    if args.task_id and found.job_state is not None:
        try:
            found.task_state = wire_value(client.get_task(args.job_id, args.task_id, select=["id", "state"]).state)
        except ResourceNotFoundError:
            pass
    if args.pool_id:
        try:
            pool = client.get_pool(args.pool_id, select=["id", "state", "currentDedicatedNodes",
                                                         "currentLowPriorityNodes"])
            found.pool_state = wire_value(pool.state)
            found.pool_nodes = (pool.current_dedicated_nodes or 0) + (pool.current_low_priority_nodes or 0)
        except ResourceNotFoundError:
            pass
        if found.pool_state is not None:
            found.other_jobs = tuple(
                job.id for job in client.list_jobs(select=["id", "state", "poolInfo"])
                if job.pool_info is not None and (job.pool_info.pool_id or "").lower() == args.pool_id.lower()
                and wire_value(job.state) in ACTIVE_JOB_STATES
                and (job.id or "").lower() != (args.job_id or "").lower())
    return found


def make_plan(found: Found, args: argparse.Namespace) -> Plan:
    """What will be done, one action per resource, and a note for each resource that needs nothing."""
    if args.task_id:
        return task_plan(found, args.job_id, args.task_id)
    actions: list[Action] = []
    notes: list[str] = []
    if args.job_id:
        job_id = args.job_id
        if found.job_state is None:
            notes.append(f"No job [{job_id}] in this account: already deleted, or a mistyped id ({LIST_JOBS}).")
        elif found.job_state == "deleting":
            actions.append(Action(f"wait for job [{job_id}], which is already being deleted", None,
                                  lambda client, poll: delete_job(client, job_id, poll)))
        else:
            actions.append(Action(f"delete job [{job_id}] ({found.job_state}, on pool [{found.job_pool}]; tasks: "
                                  f"{found.job_tasks}): its running tasks end, its tasks and their files are deleted",
                                  ("DELETE", f"/jobs/{job_id}"), lambda client, poll: delete_job(client, job_id, poll)))
    if args.pool_id:
        pool_id = args.pool_id
        if found.pool_state is None:
            notes.append(f"No pool [{pool_id}] in this account: already deleted, or a mistyped id ({LIST_POOLS}).")
        elif found.pool_state == "deleting":
            actions.append(Action(f"wait for pool [{pool_id}], which is already being deleted", None,
                                  lambda client, poll: delete_pool(client, pool_id, poll)))
        else:
            others = f"; other active jobs on it: {', '.join(found.other_jobs)}" if found.other_jobs else ""
            actions.append(Action(f"delete pool [{pool_id}] ({found.pool_nodes} node(s) now{others}): its nodes go",
                                  ("DELETE", f"/pools/{pool_id}"),
                                  lambda client, poll: delete_pool(client, pool_id, poll)))
    return Plan(tuple(actions), tuple(notes))


def task_plan(found: Found, job_id: str, task_id: str) -> Plan:
    if found.job_state is None:
        return Plan((), (f"No job [{job_id}] in this account: task [{task_id}] is already gone, or the id is "
                         f"mistyped ({LIST_JOBS}).",))
    if found.task_state is None:
        return Plan((), (f"No task [{task_id}] in job [{job_id}]: nothing to terminate (already gone, or a "
                         f"mistyped id: python3 check_task.py --job_id {job_id} --verbose lists its tasks).",))
    if found.task_state == "completed":
        return Plan((), (f"Task [{task_id}] of job [{job_id}] has already completed: nothing to terminate.",))
    effect = "its processes are stopped, its outputs are uploaded" if found.task_state == "running" \
        else "it will never run"
    return Plan((Action(f"terminate task [{task_id}] of job [{job_id}] (it is {found.task_state}; {effect})",
                        ("POST", f"/jobs/{job_id}/tasks/{task_id}/terminate"),
                        lambda client, poll: terminate_task(client, job_id, task_id, poll)),), ())


def confirm(plan: Plan, args: argparse.Namespace) -> None:
    print("This will:")
    for action in plan.actions:
        print(f"  - {action.summary}")
    if args.yes:
        return
    try:
        answer = input("Go ahead? [y/N] ").strip().lower()
    except EOFError:  # Ctrl-D: the terminal's cursor is still after the question
        print(file=sys.stderr)
        answer = ""
    except KeyboardInterrupt:  # the next line must not start after the question and the terminal's ^C
        print(file=sys.stderr)
        raise ToolkitError("Interrupted: nothing deleted.", ExitStatus.INTERRUPTED) from None
    if answer not in ("y", "yes"):
        raise ToolkitError("Nothing deleted: not confirmed (answer y, or add --yes).")


def wait(what: str, done: Callable[[], bool], poll_seconds: float, clock: Clock | None = None) -> None:
    """Call done() until it is true: first after FIRST_POLL_SECONDS, then twice as long each time up to
    poll_seconds (a quick delete ends quickly), saying every PROGRESS_SECONDS that it still waits."""
    said = 0.0  # seconds waited when it last said so

    def say_still_waiting(pause: Pause) -> None:
        nonlocal said
        if pause.waited - said >= PROGRESS_SECONDS:
            print(f"  still {what} ({pause.waited:.0f} s)...", flush=True)
            said = pause.waited
    retry(done, Schedule(first=min(FIRST_POLL_SECONDS, poll_seconds), longest=poll_seconds), accept=bool,
          on_pause=say_still_waiting, clock=clock)


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


def dry_run(plan: Plan, endpoint: str) -> int:
    for action in plan.actions:
        print(f"Would {action.summary}.")
    print("Dry run: these requests would be sent (nothing is sent; only reads were made):")
    for action in plan.actions:
        if action.request is not None:
            method, path = action.request
            print(f"{method} {endpoint}{path}")
    return 0


def delete(args: argparse.Namespace, settings: Settings) -> int:
    check_options(args)
    access = load_settings(settings, batch_access)
    client = make_batch_client(access)
    found = read_found(client, args)
    if args.pool_id and found.other_jobs and found.pool_state not in (None, "deleting") and not args.force:
        jobs = " ".join(f"--job_id {job}" for job in found.other_jobs[:1])
        raise ToolkitError(f"Pool [{args.pool_id}] is used by other active job(s): {', '.join(found.other_jobs)}. "
                           f"Delete them first (python3 delete_pool_job.py {jobs} --yes), or add --force "
                           "(their tasks would wait for a pool that is gone).", ExitStatus.USAGE)
    plan = make_plan(found, args)
    for note in plan.notes:
        print(note)
    if not plan.actions:
        print("Nothing to do.")
        return 0
    if args.dry_run:
        return dry_run(plan, access.endpoint)
    confirm(plan, args)
    try:
        for action in plan.actions:
            action.run(client, args.poll_seconds)
    except KeyboardInterrupt:
        raise ToolkitError("Interrupted: a delete already sent goes on at the service. Run the same command again "
                           "to finish it and wait for the end.", ExitStatus.INTERRUPTED) from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda settings: delete(args, settings))


if __name__ == "__main__":
    sys.exit(main())
