"""Why work failed on the nodes, in words a user can act on: the lines of a stderr that say why, a job
preparation task's failure with its node's stderr, the stderr of the other nodes of a failed MPI task, a
pool that cannot get its nodes (resize errors), and an upload refused because its SAS had expired.

Everything here reads what the service or a node already has; nothing is changed.
The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.batch import wire_value
from toolkit.outputs import write_atomically

if TYPE_CHECKING:
    from azure.batch import BatchClient, models

EXCERPT_LINES = 6           # of a stderr, under a FAILED line
NODE_FILE_TAIL = 64 * 1024  # bytes kept of a node's file read for its last lines
TRACEBACK_HEADER = "Traceback (most recent call last):"
FROZEN_FRAME = 'File "<frozen '

# Resize errors (REST ResizeError.code) that waiting cannot cure: the account must get more quota first.
QUOTA_CODES = {"AccountCoreQuotaReached": "dedicated", "AccountLowPriorityCoreQuotaReached": "Spot (low-priority)",
               "AccountSpotCoreQuotaReached": "Spot (low-priority)"}
ALLOCATION_ADVICE = {
    "AllocationFailed": "Azure could not allocate nodes of this size in the region now: the next evaluation of "
                        "the autoscale formula tries again; if it keeps failing, use another size (--vm_size) or "
                        "region",
    "AllocationTimedout": "allocating the nodes took longer than the pool's resize timeout: the next evaluation "
                          "of the autoscale formula tries again; if it keeps failing, use another size (--vm_size) "
                          "or region",
}


def excerpt(text: str, limit: int = EXCERPT_LINES) -> list[str]:
    """The lines of a stderr that say why a program failed: the end of its last Python traceback (mpirun's
    abort banner after it says only that a rank aborted), else its last non-blank lines. The traceback's
    header line is left out: the frames and the exception are what matter."""
    lines = [line.rstrip() for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith(TRACEBACK_HEADER)]
    if starts:
        block = lines[starts[-1] + 1:]
        indent = len(lines[starts[-1]]) - len(lines[starts[-1]].lstrip())
        # The traceback ends with the first line no more indented than its header: the exception line.
        end = next((i for i, line in enumerate(block) if line.strip() and len(line) - len(line.lstrip()) <= indent),
                   len(block) - 1)
        # Frames of the interpreter's own frozen modules (runpy, under python3 -m mpi4py) have no source line
        # and say nothing about the program: they would fill the excerpt before its own frames.
        return [line for line in block[:end + 1] if line.strip() and not line.lstrip().startswith(FROZEN_FRAME)
                ][-limit:]
    return [line for line in lines if line.strip()][-limit:]


def excerpt_lines(title: str, lines: list[str], indent: str = "    ") -> list[str]:
    """'stderr.txt (last lines):' then each line behind '| ', so the program's words stand apart; a line
    repeated in a row (every rank saying the same) is shown once, with how many times it came."""
    if not lines:
        return []
    shown = [f"{indent}{title}:"]
    for line, repeats in itertools.groupby(lines):
        times = len(list(repeats))
        shown.append(f"{indent}| {line}" + (f"   [{times} times]" if times > 1 else ""))
    return shown


def file_excerpt(path: Path) -> list[str]:
    """The excerpt of a downloaded stderr.txt (its last NODE_FILE_TAIL bytes), [] when missing or empty."""
    try:
        with path.open("rb") as file:
            size = file.seek(0, 2)
            file.seek(max(0, size - NODE_FILE_TAIL))
            return excerpt(file.read().decode(errors="replace"))
    except OSError:
        return []


def last_bytes(chunks: Iterable[bytes], keep: int = NODE_FILE_TAIL) -> bytes:
    """The last `keep` bytes of a stream, holding no more than about that much at a time."""
    kept: collections.deque[bytes] = collections.deque()
    size = 0
    for chunk in chunks:
        kept.append(chunk)
        size += len(chunk)
        while kept and size - len(kept[0]) >= keep:
            size -= len(kept.popleft())
    return b"".join(kept)[-keep:]


def node_file_text(client: BatchClient, pool_id: str, node_id: str, path: str) -> str | None:
    """The end of a file on a node, or None when the node or the file is gone (a node that left the pool
    takes its files with it)."""
    from azure.core.exceptions import HttpResponseError

    try:
        return last_bytes(client.download_node_file(pool_id, node_id, path)).decode(errors="replace")
    except HttpResponseError as err:
        if err.status_code in (404, 409):  # NodeNotFound, FileNotFound; a node not in a state to serve files
            return None
        raise


# --- the job preparation task -------------------------------------------------------------------

@dataclass(frozen=True)
class PreparationFailure:
    """A node whose job preparation task failed, with what its stderr.txt (or stdout.txt) says."""

    node_id: str
    exit_code: int | None
    failure: str                 # the service's failureInfo code and message, '' for a plain exit code
    task_root: str               # the preparation task's directory on the node (node files API path)
    shown_file: str              # which of its files the excerpt comes from ('' when neither could be read)
    lines: tuple[str, ...]


def preparation_failures(client: BatchClient, job_id: str) -> list[PreparationFailure]:
    """Nodes where the job's preparation task failed (the usual reason an MPI task stays active), each
    with the end of its output read from the node; [] when the job has no preparation task."""
    from azure.core.exceptions import ResourceExistsError

    try:
        statuses = list(client.list_job_preparation_and_release_task_status(job_id))
    except ResourceExistsError:  # 409 JobPreparationTaskOrReleaseTaskNotSpecified: the job has none
        return []
    failed = [(status, status.job_preparation_task_execution_info) for status in statuses
              if status.job_preparation_task_execution_info is not None
              and wire_value(status.job_preparation_task_execution_info.result) == "failure"]
    found = []
    for index, (status, info) in enumerate(failed):
        shown, lines = "", list[str]()
        if index == 0 and status.pool_id and status.node_id and info.task_root_directory:  # one node tells why
            shown, lines = _preparation_output(client, status.pool_id, status.node_id, info.task_root_directory)
        failure = info.failure_info
        said = f"{failure.code}: {failure.message}" if failure and failure.code and failure.code != "FailureExitCode" \
            else ""
        found.append(PreparationFailure(status.node_id or "?", info.exit_code, said,
                                        info.task_root_directory or "", shown, tuple(lines)))
    return found


def _preparation_output(client: BatchClient, pool_id: str, node_id: str, root: str) -> tuple[str, list[str]]:
    for name in ("stderr.txt", "stdout.txt"):  # pip and git write their errors on stderr; some tools on stdout
        text = node_file_text(client, pool_id, node_id, f"{root.rstrip('/')}/{name}")
        lines = excerpt(text) if text else []
        if lines:
            return name, lines
    return "", []


# --- the other nodes of a failed MPI task ---------------------------------------------------------

SUBTASKS_DIR = "subtasks"


def fetch_subtask_stderr(client: BatchClient, job_id: str, task_id: str, task_dir: Path,
                         cancelled: threading.Event) -> list[Path]:
    """Download the stderr.txt of each subtask (the coordination command on the other nodes) of a failed
    multi-instance task into task_dir/subtasks/ID/, while those nodes still have them; the files that
    are not empty."""
    found = []
    for subtask in client.list_subtasks(job_id, task_id, select=["id", "nodeInfo"]):
        info = subtask.node_info
        if info is None or not (info.pool_id and info.node_id and info.task_root_directory):
            continue
        text = node_file_text(client, info.pool_id, info.node_id, f"{info.task_root_directory.rstrip('/')}/stderr.txt")
        if text and text.strip():
            target = task_dir / SUBTASKS_DIR / str(subtask.id) / "stderr.txt"
            write_atomically(target, [text.encode()], cancelled)
            found.append(target)
    return found


def subtask_stderr_files(task_dir: Path) -> list[Path]:
    """The subtask stderr files fetch_subtask_stderr left for a task, by subtask id."""
    return sorted((task_dir / SUBTASKS_DIR).glob("*/stderr.txt"), key=lambda p: p.parent.name.zfill(8))


# --- a pool that cannot get its nodes -------------------------------------------------------------

@dataclass(frozen=True)
class ResizeProblem:
    """Why a pool has fewer nodes than it asked for, and whether waiting can cure it."""

    code: str
    advice: str
    lasting: bool                # True: no task that needs more nodes than it has will ever start


def resize_problem(pool: models.BatchPool) -> ResizeProblem | None:
    """The pool's first resize error in plain words, or None when it has none."""
    errors = pool.resize_errors or []
    if not errors:
        return None
    error = errors[0]
    code = error.code or "unknown"
    if code in QUOTA_CODES:
        kind = QUOTA_CODES[code]
        return ResizeProblem(code, f"the account's {kind} core quota is used up, so the pool cannot get more nodes "
                                   f"of size {pool.vm_size or '?'}: ask for a higher {kind} vCPU quota for that VM "
                                   "family (Azure portal: the Batch account, Quotas, Request quota increase), or use "
                                   "fewer or smaller nodes", lasting=True)
    advice = ALLOCATION_ADVICE.get(code, (error.message or "").strip().splitlines()[0] if error.message else "")
    return ResizeProblem(code, advice, lasting=False)


def pool_node_count(pool: models.BatchPool) -> int:
    return (pool.current_dedicated_nodes or 0) + (pool.current_low_priority_nodes or 0)


# --- an upload refused because its SAS had expired ----------------------------------------------

def upload_sas_expiry(task: models.BatchTask) -> datetime.datetime | None:
    """When the SAS of the task's output upload stopped working: the earlier of its `se` and, for a user
    delegation SAS, its key's `ske`; None when the task has no container URL or no expiry in it."""
    expiries = []
    for output in task.output_files or []:
        container = output.destination.container if output.destination else None
        if container is None or not container.container_url:
            continue
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(container.container_url).query)
        for field in ("se", "ske"):
            for value in query.get(field, []):
                try:
                    expiries.append(datetime.datetime.fromisoformat(value.replace("Z", "+00:00")))
                except ValueError:
                    continue
    return min(expiries) if expiries else None


def expired_upload(task: models.BatchTask) -> str | None:
    """For a task whose upload was refused (FileUploadAccessDenied) after its SAS expired: what happened and
    what to do; else None."""
    info = task.execution_info
    code = info.failure_info.code if info and info.failure_info else None
    if code != "FileUploadAccessDenied" or info is None or info.end_time is None:
        return None
    expiry = upload_sas_expiry(task)
    if expiry is None or expiry > info.end_time:
        return None
    return (f"its outputs could not be uploaded: the SAS it was given expired at {expiry:%Y-%m-%d %H:%M:%S} UTC, "
            f"before the task ended at {info.end_time:%Y-%m-%d %H:%M:%S} UTC (FileUploadAccessDenied). Send it again "
            "with a SAS that outlasts the task: a later expiry in the SAS of BLOB_CONTAINER_URL or "
            "AZURE_STORAGE_SAS_TOKEN, or no SAS at all (AZURE_STORAGE_KEY or Entra ID sign-in: send_task.py then makes "
            "one for TASK_MAX_WALL_CLOCK_MINUTES plus 15 minutes); the program exited with "
            f"{info.exit_code}")
