"""check_task.py's words and screen: a task's result in plain words, the lines of running tasks, the
display of --wait (a live view in a terminal, timed lines of what changed when piped), and riding
out a service that is briefly unreachable.

The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

import datetime
import shutil
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO, TypeVar

from toolkit.batch import wire_value
from toolkit.errors import ToolkitError
from toolkit.failures import expired_upload
from toolkit.retry import Clock, Pause, Schedule, SystemClock, is_transient, retry

if TYPE_CHECKING:
    from azure.batch import models

T = TypeVar("T")

# 0xC000013A: the exit code the service gives a task it ended (wall clock, terminate).
ENDED_EXIT_CODE = -1073741510
# How long --wait and --tail ride out a service that cannot be reached or answers 5xx/429.
OUTAGE_LIMIT_SECONDS = 600.0
OUTAGE_BACKOFF_MAX = 30.0
MAX_TASK_LINES = 10  # per job and kind (running, waiting): then "... and N more"
Line = tuple[str, str, str]  # a status line: (key, text, live part), see Display


def duration(seconds: float) -> str:
    """'45s', '3m05s', '2h07m'."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def failure_reason(task: models.BatchTask) -> str:
    """Why a completed task failed, in plain words, from its executionInfo (branching on codes only)."""
    info = task.execution_info
    exit_code = info.exit_code if info else None
    failure = info.failure_info if info else None
    code = failure.code if failure else None
    if code == "CommandProgramNotFound":
        detail = next((d.value for d in failure.details or [] if d.name == "Message" and d.value), "") \
            if failure else ""
        return f"the command was not found (CommandProgramNotFound{': ' + detail if detail else ''})"
    if code == "TaskEnded" or exit_code == ENDED_EXIT_CODE:
        return ended_reason(task)
    if code and code.startswith("FileUpload"):
        expired = expired_upload(task)
        if expired:
            return expired
        # The task carries the SAS send_task.py made or was given: from AZURE_STORAGE_KEY, from a SAS in the
        # settings, or from the Entra ID sign-in; check_task cannot tell which, so it names all three.
        return (f"its outputs could not be uploaded to the blob container ({code}: check BLOB_CONTAINER_URL "
                f"and the SAS, AZURE_STORAGE_KEY or sign-in send_task.py used); the program exited with {exit_code}")
    if code and code.startswith(("Blob", "ResourceContainer")):
        return f"a resource file could not be downloaded to the node ({code}: {failure.message if failure else ''})"
    if exit_code is not None and (code is None or code == "FailureExitCode"):
        return f"exit code {exit_code}"
    message = f": {failure.message}" if failure and failure.message else ""
    return f"{code or 'unknown failure'}{message} (exit code {exit_code})"


def ended_reason(task: models.BatchTask) -> str:
    """A task the service ended: by its wall clock when it ran that long, otherwise terminated."""
    info = task.execution_info
    limit = task.constraints.max_wall_clock_time if task.constraints else None
    ran = (info.end_time - info.start_time) if info and info.start_time and info.end_time else None
    if limit is not None and ran is not None and ran >= limit * 0.99:
        return f"ended by its wall clock: it ran {duration(ran.total_seconds())}, its maxWallClockTime"
    category = wire_value(info.failure_info.category) if info and info.failure_info else ""
    by = "by a user or its job's end" if category == "usererror" else "by the service (e.g. its node left the pool)"
    return f"ended {by} (TaskEnded)"


def task_result(task: models.BatchTask) -> tuple[str, bool]:
    """('succeeded (exit code 0)', False) or ('FAILED (exit code 3)' / 'FAILED: the command ...', True)."""
    info = task.execution_info
    if info is None or wire_value(info.result) != "failure":
        return f"succeeded (exit code {info.exit_code if info else '?'})", False
    reason = failure_reason(task)
    return (f"FAILED ({reason})" if reason.startswith("exit code") else f"FAILED: {reason}"), True


def running_line(task: models.BatchTask, now: datetime.datetime) -> tuple[str, str]:
    """(what stays the same while it runs, how long it has run): 'task [t]: running on node N (+1 more)'."""
    node = task.node_info.node_id if task.node_info else None
    instances = task.multi_instance_settings.number_of_instances if task.multi_instance_settings else None
    more = f" (+{instances - 1} more node{'s' if instances > 2 else ''})" if instances and instances > 1 else ""
    state = wire_value(task.state)
    where = f"on node {node}{more}" if node else "(no node yet)"
    started = task.execution_info.start_time if task.execution_info else None
    since = f" since {started.astimezone():%H:%M:%S}" if started else ""
    elapsed = f" for {duration((now - started).total_seconds())}" if started else ""
    return f"task [{task.id}]: {state} {where}{since}", elapsed


def limited(lines: list[str], kind: str) -> list[str]:
    if len(lines) <= MAX_TASK_LINES:
        return lines
    return [*lines[:MAX_TASK_LINES], f"... and {len(lines) - MAX_TASK_LINES} more {kind}"]


# --- the display -----------------------------------------------------------------------------------

class Display:
    """Where check_task.py's lines go.

    - once (no --wait): every line, as it comes;
    - waiting, piped: events and changed status lines, each with the time (HH:MM:SS);
    - waiting, in a terminal: events printed once (with the time), then a block of status lines
      redrawn in place each poll (ANSI: cursor up, clear to the end of the screen). Each of its lines is
      cut to the terminal's width: a line that wrapped would take more rows than the cursor goes up, and
      each redraw would leave rows behind. When done, the block gives way to its lines in full.
    Status lines are (key, text, live): `live` (how long something has run) is shown only in the
    live view, so that a piped log gets a line only when something really changed."""

    def __init__(self, waiting: bool, out: TextIO | None = None, live: bool | None = None,
                 columns: Callable[[], int] = lambda: shutil.get_terminal_size().columns):
        self.out = out or sys.stdout
        self.columns = columns
        self.waiting = waiting
        self.live = waiting and (self.out.isatty() if live is None else live)
        self._shown: dict[str, str] = {}
        self._drawn = 0
        self._last: list[tuple[str, str, str]] = []
        self._started = time.monotonic()

    def stamp(self) -> str:
        return f"{datetime.datetime.now():%H:%M:%S} " if self.waiting else ""

    def event(self, line: str) -> None:
        """Something that happened (a task finished, outputs downloaded, the service came back)."""
        self._erase()
        print(f"{self.stamp()}{line}", file=self.out, flush=True)
        self._redraw_last()

    def status(self, lines: list[tuple[str, str, str]]) -> None:
        """The current state, one poll's worth."""
        if not self.waiting:
            for _, text, live in lines:
                print(f"{text}{live}", file=self.out, flush=True)
            return
        if self.live:
            self._erase()
            self._last = lines
            self._redraw_last()
            return
        for key, text, _ in lines:
            if self._shown.get(key) != text:
                self._shown[key] = text
                print(f"{self.stamp()}{text}", file=self.out, flush=True)

    def _erase(self) -> None:
        if self.live and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _redraw_last(self) -> None:
        if not self.live or not self._last:
            return
        # The time waited so far, not a countdown; Ctrl-C ends only the waiting, never the tasks.
        elapsed = (f"waited {duration(time.monotonic() - self._started)} so far "
                   "(Ctrl-C stops waiting; the tasks keep running)")
        # One column short of the width: a line filling the last column wraps early on some terminals.
        width = max(self.columns() - 1, 10)
        rows = [fitted(f"{text}{live}", width) for _, text, live in self._last] + [fitted(elapsed, width)]
        self.out.write("".join(f"{row}\n" for row in rows))
        self.out.flush()
        self._drawn = len(rows)

    def finish(self) -> None:
        """End the live view: its block (cut lines, the 'waited' line) gives way to the last status in full."""
        if not self.live or not self._drawn:
            return
        self._erase()
        for _, text, live in self._last:
            print(f"{text}{live}", file=self.out)
        self.out.flush()
        self._last = []  # an event still to come (a download ending) is printed alone, drawing no block again


def fitted(line: str, width: int) -> str:
    """The line, cut to `width` characters with '...' when longer (ids and states are ASCII)."""
    return line if len(line) <= width else f"{line[:width - 3]}..."


# --- riding out an outage --------------------------------------------------------------------------

class Outage:
    """Retries a poll through transient failures with backoff; says so once per outage, and when it
    ends; gives up (the last error is raised) after `limit` seconds without a successful poll."""

    def __init__(self, display: Display, limit: float = OUTAGE_LIMIT_SECONDS,
                 sleep: Callable[[float], None] = time.sleep, clock: Clock | None = None):
        self.display = display
        self.limit = limit
        self.clock = clock or SystemClock(sleep)
        self.since: float | None = None

    def attempt(self, poll: Callable[[], T], pause: float) -> T:
        try:
            result = retry(poll, Schedule(first=pause, longest=OUTAGE_BACKOFF_MAX, within=self.limit),
                           again=is_transient, on_pause=self._pausing, clock=self.clock)
        except Exception as err:
            if not is_transient(err):
                self._back()  # it answered, if only to refuse
                raise
            raise ToolkitError(f"The service could not be reached for {duration(self._outage())}; "
                               f"stopped waiting. Run the command again later. Last error: "
                               f"{type(err).__name__}") from err
        self._back()
        return result

    def _pausing(self, pause: Pause) -> None:
        if self.since is not None or pause.error is None:
            return
        self.since = pause.at - pause.waited  # the first failure
        err = pause.error
        reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        self.display.event(f"The service cannot be reached or is busy ({type(err).__name__}: {reason}); "
                           f"retrying for up to {self.limit / 60:g} minutes...")

    def _outage(self) -> float:
        return self.clock.now() - self.since if self.since is not None else 0.0

    def _back(self) -> None:
        if self.since is not None:
            self.display.event(f"The service answers again (after {duration(self._outage())}).")
            self.since = None
