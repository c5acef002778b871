"""check_task.py --tail: print a task's stdout.txt while it runs, following new output (range reads of the
node's file) until the task completes, then its exit state.

The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, TextIO

from toolkit.batch import wire_value
from toolkit.cli import EXIT_OK
from toolkit.progress import Display, Outage, now_utc, running_line, task_result

if TYPE_CHECKING:
    from azure.batch import BatchClient, models

TAIL_FILE = "stdout.txt"
TASK_FIELDS = ["id", "state", "executionInfo", "nodeInfo", "constraints", "multiInstanceSettings"]


def read_from(client: BatchClient, job_id: str, task_id: str, offset: int) -> bytes | None:
    """The bytes of the task's stdout.txt from `offset` on (b'' when nothing new); None when the node
    has no such file (not yet written, or gone with its node)."""
    from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

    try:
        return b"".join(client.download_task_file(job_id, task_id, TAIL_FILE, ocp_range=f"bytes={offset}-"))
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


def follow(client: BatchClient, job_id: str, task_id: str, poll_seconds: float, out: BinaryIO | None = None,
           notes: TextIO | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Copy the task's stdout.txt to `out` as it grows; notes (waiting, node, exit state) go to `notes`."""
    out = out or sys.stdout.buffer
    notes = notes or sys.stderr
    display = Display(waiting=True, out=notes, live=False)
    outage = Outage(display, sleep=sleep)
    offset, said = 0, ""

    def note(text: str) -> None:
        nonlocal said
        if text != said:
            said = text
            display.event(text)

    def step() -> tuple[models.BatchTask, bytes | None]:
        task = client.get_task(job_id, task_id, select=TASK_FIELDS)
        return task, read_from(client, job_id, task_id, offset) if wire_value(task.state) != "active" else None

    while True:
        task, chunk = outage.attempt(step, poll_seconds)
        state = wire_value(task.state)
        if chunk:
            out.write(chunk)
            out.flush()
            offset += len(chunk)
        if state == "completed":
            if chunk is None and offset == 0:
                note(f"Task [{task_id}]: its {TAIL_FILE} is not on the node; python3 check_task.py --job_id {job_id} "
                     "downloads it from the blob container.")
            result, _ = task_result(task)
            note(f"Task [{task_id}] completed: {result}")
            return EXIT_OK
        if state == "active":
            note(f"Task [{task_id}] is waiting for a node...")
        else:
            text, _ = running_line(task, now_utc())
            note(f"Task [{task_id}]: following its {TAIL_FILE}: {text.split(': ', 1)[1]} (Ctrl-C stops)")
        sleep(poll_seconds)
