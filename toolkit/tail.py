"""check_task.py --tail: print a task's stdout.txt and stderr.txt while it runs, following new output (range
reads of the node's files) until the task completes, then its exit state.

While only one of the two files has output, its lines are printed as they are (so `--tail > file` of a
program that writes no stderr is its stdout); once both have, each line is marked `stdout| ` or
`stderr| `. Lines are printed whole, in the order the polls read them (stdout's new lines, then stderr's).

The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, TextIO

from toolkit.batch import wire_value
from toolkit.errors import ExitStatus
from toolkit.progress import Display, Outage, now_utc, running_line, task_result

if TYPE_CHECKING:
    from azure.batch import BatchClient, models

TAIL_FILE = "stdout.txt"
TAIL_FILES = ("stdout.txt", "stderr.txt")
MARKS = {"stdout.txt": b"stdout| ", "stderr.txt": b"stderr| "}
TASK_FIELDS = ["id", "state", "executionInfo", "nodeInfo", "constraints", "multiInstanceSettings"]


@dataclass
class StreamLines:
    """The lines of stdout.txt and stderr.txt as --tail prints them (see the module's docstring)."""

    pending: dict[str, bytes] = field(default_factory=lambda: dict.fromkeys(TAIL_FILES, b""))
    seen: set[str] = field(default_factory=set)

    @property
    def marked(self) -> bool:
        return len(self.seen) == len(TAIL_FILES)

    def feed(self, name: str, chunk: bytes) -> bytes:
        """What to print of `name`'s new bytes: its complete lines (the rest waits for its end)."""
        if chunk:
            self.seen.add(name)
        data = self.pending[name] + chunk
        cut = data.rfind(b"\n") + 1
        self.pending[name] = data[cut:]
        return self.render(name, data[:cut])

    def finish(self) -> bytes:
        """The last lines, without their end (a program that wrote no final newline): as they are while
        unmarked (`--tail > file` gets the program's bytes), else each ended, so that marks start lines."""
        end = b"\n" if self.marked else b""
        rest = b"".join(self.render(name, self.pending[name] + end) for name in TAIL_FILES if self.pending[name])
        self.pending = dict.fromkeys(TAIL_FILES, b"")
        return rest

    def render(self, name: str, lines: bytes) -> bytes:
        if not self.marked:
            return lines
        # Split at newlines only: a carriage return (a progress bar redrawing its line) stays inside its line.
        return b"".join(MARKS[name] + line + b"\n" for line in lines.split(b"\n")[:-1])


def read_from(client: BatchClient, job_id: str, task_id: str, offset: int, name: str = TAIL_FILE) -> bytes | None:
    """The bytes of the task's file `name` (stdout.txt) from `offset` on (b'' when nothing new); None when the
    node has no such file (not yet written, or gone with its node)."""
    from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

    try:
        return b"".join(client.download_task_file(job_id, task_id, name, ocp_range=f"bytes={offset}-"))
    except ResourceNotFoundError:
        return None
    except ResourceExistsError:  # 409: the task is not on a node (any more)
        return None
    except HttpResponseError as err:
        if err.status_code == 416:  # the range starts at the end of the file: nothing new
            return b""
        if err.status_code == 206 and err.response is not None:
            # The SDK accepts only 200 (what the emulator answers); should the service answer a range with
            # 206 Partial Content, the SDK raises, having read the body: that body is the range.
            content: bytes = getattr(err.response, "content", b"")  # azure.core.rest.HttpResponse, read
            return bytes(content)
        raise


def status_line(task: models.BatchTask, task_id: str) -> str:
    """What --tail says of a task that has not completed: waiting for a node, or running where and how long."""
    if wire_value(task.state) == "active":
        return f"Task [{task_id}] is waiting for a node..."
    text, _ = running_line(task, now_utc())
    return f"Task [{task_id}]: following its stdout.txt and stderr.txt: {text.split(': ', 1)[1]} (Ctrl-C stops)"


def follow(client: BatchClient, job_id: str, task_id: str, poll_seconds: float, out: BinaryIO | None = None,
           notes: TextIO | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Copy the task's stdout.txt and stderr.txt to `out` as they grow; notes (waiting, node, exit state) go
    to `notes`."""
    out = out or sys.stdout.buffer
    notes = notes or sys.stderr
    display = Display(waiting=True, out=notes, live=False)
    outage = Outage(display, sleep=sleep)
    offsets = dict.fromkeys(TAIL_FILES, 0)
    lines = StreamLines()
    said = ""

    def note(text: str) -> None:
        nonlocal said
        if text != said:
            said = text
            display.event(text)

    def step() -> tuple[models.BatchTask, dict[str, bytes | None]]:
        task = client.get_task(job_id, task_id, select=TASK_FIELDS)
        if wire_value(task.state) == "active":
            return task, dict.fromkeys(TAIL_FILES)
        return task, {name: read_from(client, job_id, task_id, offsets[name], name) for name in TAIL_FILES}

    while True:
        task, chunks = outage.attempt(step, poll_seconds)
        state = wire_value(task.state)
        was_marked = lines.marked
        lines.seen.update(name for name, chunk in chunks.items() if chunk)  # this poll's lines are marked alike
        if state != "completed":   # the status line first: it says what the lines below it are
            note(status_line(task, task_id))
        if lines.marked and not was_marked:
            note(f"Task [{task_id}]: stdout.txt and stderr.txt both have output: each line is now marked "
                 "stdout| or stderr|")
        for name in TAIL_FILES:
            chunk = chunks[name] or b""
            offsets[name] += len(chunk)
            printed = lines.feed(name, chunk)
            if printed:
                out.write(printed)
                out.flush()
        if state == "completed":
            out.write(lines.finish())
            out.flush()
            if not any(offsets.values()) and all(chunk is None for chunk in chunks.values()):
                note(f"Task [{task_id}]: its stdout.txt and stderr.txt are not on the node; python3 check_task.py "
                     f"--job_id {job_id} downloads them from the blob container.")
            result, _ = task_result(task)
            note(f"Task [{task_id}] completed: {result}")
            return ExitStatus.OK
        sleep(poll_seconds)
