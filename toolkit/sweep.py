"""Parameter sweeps (send_task.py --sweep FILE): one MPI task per line of FILE, the line being that task's
PROGRAM_ARGS, added with the task-collection request, 100 tasks a request.

Every task of a sweep carries the same submission mark, made from the sweep's task id and lines, so a
second run of the same sweep recognises its own tasks and adds only the missing ones, while a task of
another sweep (or another send_task.py) with one of its ids is a clash, reported before anything is added.
check_task.py recognises a sweep's tasks in a job's listing by that mark (sweep_progress).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .batch import RETRY_POST, SUBMISSION_MARK, made_by, wire_value
from .errors import ExitStatus, ToolkitError

if TYPE_CHECKING:
    from azure.batch import BatchClient, models

MAX_SWEEP_TASKS = 10_000
TASKS_PER_REQUEST = 100   # the service's limit for one task-collection request
COMMENT = "#"
MARK_PREFIX = "sweep-"    # a sweep's mark; send_task.py's single tasks carry a bare uuid


@dataclass(frozen=True)
class SweepTask:
    task_id: str
    program_args: str
    line_number: int   # in the sweep file, from 1


@dataclass(frozen=True)
class Sweep:
    file: str
    tasks: tuple[SweepTask, ...]
    mark: str          # the submission mark every task of this sweep carries


def read_sweep(path: str, task_id: str) -> Sweep:
    """The tasks of sweep file PATH, ids TASK_ID-1 .. TASK_ID-N zero-padded to N's width. Raises ToolkitError
    (usage) for a file that cannot be read, has no task line or more than MAX_SWEEP_TASKS, or a line that
    cannot go into PROGRAM_ARGS."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
        raise ToolkitError(f"--sweep {path}: cannot read it ({reason}).", ExitStatus.USAGE) from None
    lines = [(number, line.strip()) for number, line in enumerate(text.split("\n"), start=1)]
    wanted = [(number, line) for number, line in lines if line and not line.startswith(COMMENT)]
    if not wanted:
        raise ToolkitError(f"--sweep {path} has no task line: write one line of program arguments per task "
                           f"({COMMENT} starts a comment).", ExitStatus.USAGE)
    if len(wanted) > MAX_SWEEP_TASKS:
        raise ToolkitError(f"--sweep {path} has {len(wanted):,} task lines, more than {MAX_SWEEP_TASKS:,}: "
                           "split it into several sweeps with different --task_id.", ExitStatus.USAGE)
    for number, line in wanted:
        if "'" in line or "\r" in line:
            raise ToolkitError(f"--sweep {path}, line {number}: contains a single quote or a carriage return, "
                               "which cannot go into PROGRAM_ARGS: use double quotes.", ExitStatus.USAGE)
    width = len(str(len(wanted)))
    tasks = tuple(SweepTask(f"{task_id}-{index:0{width}d}", line, number)
                  for index, (number, line) in enumerate(wanted, start=1))
    digest = hashlib.sha256("\n".join([task_id, *(task.program_args for task in tasks)]).encode()).hexdigest()
    return Sweep(path, tasks, f"{MARK_PREFIX}{digest[:32]}")


def clashes_and_missing(existing: Iterable[models.BatchTask], sweep: Sweep) -> tuple[list[str], list[SweepTask]]:
    """(ids of the job's tasks that are not this sweep's but have one of its ids, this sweep's tasks the job
    lacks). Task ids are case-insensitive."""
    mine: set[str] = set()
    others: set[str] = set()
    for task in existing:
        (mine if made_by(task.environment_settings, sweep.mark) else others).add(str(task.id).lower())
    clashes = [task.task_id for task in sweep.tasks if task.task_id.lower() in others]
    missing = [task for task in sweep.tasks if task.task_id.lower() not in mine | others]
    return clashes, missing


def batches(tasks: Sequence[models.BatchTaskCreateOptions]) -> list[list[models.BatchTaskCreateOptions]]:
    return [list(tasks[start:start + TASKS_PER_REQUEST]) for start in range(0, len(tasks), TASKS_PER_REQUEST)]


def add_sweep_tasks(client: BatchClient, job_id: str, tasks: Sequence[models.BatchTaskCreateOptions],
                    sweep: Sweep) -> None:
    """Add TASKS with task-collection requests. A task the service says exists and that carries the sweep's
    mark is this run's own (a retried request); any other refusal is an error naming the task."""
    from azure.batch import models

    for batch in batches(tasks):
        result = client.create_task_collection(job_id, models.BatchTaskGroup(task_values=batch), **RETRY_POST)
        for outcome in result.result_values or []:
            if str(outcome.status).lower() == "success":
                continue
            code = outcome.error.code if outcome.error else "unknown"
            if code == "TaskExists":
                existing = client.get_task(job_id, outcome.task_id, select=["id", "environmentSettings"])
                if made_by(existing.environment_settings, sweep.mark):
                    continue
            message = outcome.error.message.value if outcome.error and outcome.error.message else ""
            raise ToolkitError(f"Task [{outcome.task_id}] of the sweep was refused ({code}): {message}")


# --- what check_task.py says of a sweep ------------------------------------------------------------

@dataclass(frozen=True)
class SweepProgress:
    """Where the tasks of one sweep in a job stand (from one listing of the job's tasks)."""

    mark: str
    first_id: str
    last_id: str
    tasks: int
    completed: int
    succeeded: int
    failed: int
    running: int       # running or preparing
    waiting: int       # active: not yet on a node


def sweep_mark(task: models.BatchTask) -> str | None:
    """The mark of the sweep the task belongs to, or None for a task not sent with --sweep."""
    return next((item.value for item in task.environment_settings or []
                 if item.name == SUBMISSION_MARK and item.value and item.value.startswith(MARK_PREFIX)), None)


def sweep_progress(tasks: Iterable[models.BatchTask]) -> list[SweepProgress]:
    """The sweeps among a job's tasks, in the order of their first ids (the tasks need id, state,
    executionInfo and environmentSettings)."""
    by_mark: dict[str, list[models.BatchTask]] = {}
    for task in tasks:
        mark = sweep_mark(task)
        if mark is not None:
            by_mark.setdefault(mark, []).append(task)
    found = []
    for mark, members in by_mark.items():
        ids = sorted((str(task.id) for task in members), key=str.lower)  # zero-padded: text order is number order
        states = [wire_value(task.state) for task in members]
        # Failed as the service counts it: the task's executionInfo.result (a completed task without one succeeded).
        failed = sum(1 for task, state in zip(members, states, strict=True) if state == "completed"
                     and task.execution_info is not None and wire_value(task.execution_info.result) == "failure")
        completed = states.count("completed")
        found.append(SweepProgress(mark, ids[0], ids[-1], len(members), completed, completed - failed, failed,
                                   states.count("running") + states.count("preparing"), states.count("active")))
    return sorted(found, key=lambda sweep: sweep.first_id.lower())


def progress_line(sweep: SweepProgress) -> str:
    """'Sweep [T-01] .. [T-12]: 12 tasks: 9 completed (8 succeeded, 1 failed), 2 running, 1 waiting' (no
    running or waiting part when there are none)."""
    parts = [f"{sweep.completed} completed ({sweep.succeeded} succeeded, {sweep.failed} failed)",
             *([f"{sweep.running} running"] if sweep.running else []),
             *([f"{sweep.waiting} waiting"] if sweep.waiting else [])]
    tasks = f"{sweep.tasks} task{'s' if sweep.tasks != 1 else ''}"
    return f"Sweep [{sweep.first_id}] .. [{sweep.last_id}]: {tasks}: {', '.join(parts)}"
