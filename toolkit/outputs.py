"""check_task.py's downloads: the local record of what is complete, atomic writes with the user's
file mode, and each output file fetched from the blob container or, failing that, from the node.

The record (OUTPUT_DIR/.check_task-record.json) lets a re-run skip the Batch and blob requests of
tasks whose outputs are already complete. It is only a shortcut: each recorded file's size is
checked against the file on disk (a local stat) and a missing or truncated file is downloaded
again; a deleted or unreadable record only means the run checks everything, as a first run does.

The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

import enum
import fnmatch
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.retry import Clock, Schedule, is_broken_connection, retry

if TYPE_CHECKING:

    from azure.batch import BatchClient, models
    from azure.storage.blob import ContainerClient

STD_FILES = ("stdout.txt", "stderr.txt")
# The OutputFile that uploads STD_FILES (send_task.py): filePattern is relative to the task working directory
# `wd`, and stdout.txt and stderr.txt sit one level above it, in the task directory.
STD_FILES_PATTERN = "../std*.txt"
WILDCARDS = "*?["  # what makes a filePattern select files rather than name one
RECORD_NAME = ".check_task-record.json"
RECORD_VERSION = 2  # 2: each job's creation time, so a job deleted and made again is not taken for the old one
DOWNLOAD_ATTEMPTS = 3  # per file, when the connection breaks mid-file
# The blob container is given up on (then the nodes' copies are used) within about the time a Batch
# request takes to fail (toolkit.batch.CLIENT_OPTIONS): 3 tries of at most 5 s to connect, short backoffs.


def user_file_mode() -> int:
    """The mode open() gives a new file under the user's umask (0o644 under 022).

    The umask can only be read by setting it: call this once, before any thread starts."""
    umask = os.umask(0o077)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = user_file_mode()


class DownloadCancelled(Exception):
    """Another download failed or the user pressed Ctrl-C: stop, leaving no partial file."""


def write_atomically(target: Path, chunks: Iterable[bytes], cancelled: threading.Event) -> int:
    """Write the byte chunks into a temporary file beside target, renamed to target only when complete;
    returns the number of bytes written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    size = 0
    try:
        with os.fdopen(handle, "wb") as file:
            for chunk in chunks:
                if cancelled.is_set():
                    raise DownloadCancelled()
                file.write(chunk)
                size += len(chunk)
        os.chmod(partial, FILE_MODE)  # mkstemp makes it private (0600); a download gets the usual mode
        os.replace(partial, target)
    except BaseException:
        os.unlink(partial)
        raise
    return size


# --- result files (OUTPUT_FILES) -----------------------------------------------------------------------

def result_file_upload(pattern: str, prefix: str) -> tuple[str, str]:
    """(filePattern, path) of the OutputFile that uploads an OUTPUT_FILES pattern's files as blobs
    prefix/FILE, FILE being each file's path relative to the program's working directory.

    That directory is $AZ_BATCH_TASK_SHARED_DIR, where the default START_COMMAND cds: on the primary node
    it is the task directory, one level above `wd`, which filePattern is relative to. So the pattern gets
    "../", as STD_FILES_PATTERN does; "$AZ_BATCH_TASK_SHARED_DIR/..." would work on Linux too (Batch expands
    $VAR there), but "../" is the form batch-facts documents for the same directory, on every OS.
    With a wildcard, Batch names each blob `path` + the file's path below the pattern's leading directories
    without wildcards (`../results/**/*` with path JOB/TASK gives JOB/TASK/a.txt, not .../results/a.txt), so
    those directories go into path; without a wildcard, path is the blob's whole name."""
    parts = [part for part in pattern.split("/") if part not in ("", ".")]
    fixed = next((i for i, part in enumerate(parts) if any(c in part for c in WILDCARDS)), len(parts))
    return "../" + "/".join(parts), "/".join([prefix, *parts[:fixed]])


def result_patterns(task: models.BatchTask) -> list[str]:
    """The task's result-file patterns, relative to its task directory (the program's on the primary), from
    its OutputFiles other than the std files'; [] for a task sent without OUTPUT_FILES."""
    return [output.file_pattern[len("../"):] for output in task.output_files or []
            if output.file_pattern and output.file_pattern != STD_FILES_PATTERN
            and output.file_pattern.startswith("../")]


def _matches(pattern: list[str], path: list[str]) -> bool:
    """filePattern matching, part by part: `**` is any number of directories; a dot-file matches only a
    part that names it with its dot (as Batch skips dot-files unless the pattern names them)."""
    if not pattern:
        return not path
    if pattern[0] == "**":
        return any(_matches(pattern[1:], path[i:]) for i in range(len(path) + 1))
    if not path or (path[0].startswith(".") and not pattern[0].startswith(".")):
        return False
    return fnmatch.fnmatchcase(path[0], pattern[0]) and _matches(pattern[1:], path[1:])


def is_result_name(name: str) -> bool:
    """Whether a blob or node file name can be written under OUTPUT_DIR/JOB/TASK/ as it is: a relative
    path that stays there, and not one of the std files (always fetched) or the subtasks' stderr."""
    parts = name.split("/")
    return (bool(name) and not name.startswith("/") and ".." not in parts and "" not in parts
            and name not in STD_FILES and parts[0] != "subtasks")


# --- the record ----------------------------------------------------------------------------------

@dataclass
class TaskRecord:
    """A task whose outputs are complete on disk: its result line and each file's size."""

    result: str
    failed: bool
    files: dict[str, int]
    ended: str = ""    # the task's end time: another one is a run since (send_task.py --retry), whose files come again


@dataclass
class Record:
    path: Path
    jobs: dict[str, dict[str, TaskRecord]] = field(default_factory=dict)
    created: dict[str, str] = field(default_factory=dict)  # job id -> the job's creation time

    def tasks(self, job_id: str, created: str) -> dict[str, TaskRecord]:
        """The recorded tasks of this job; none when the job of that id was created at another time
        (deleted and made again: the files on disk are the old job's)."""
        if self.created.get(job_id) != created:
            self.jobs[job_id] = {}
            self.created[job_id] = created
        return self.jobs.setdefault(job_id, {})

    def incomplete_files(self, job_id: str, output_dir: Path) -> list[tuple[str, str]]:
        """(task_id, name) of recorded files that are missing on disk or of another size (a local stat each)."""
        found = []
        for task_id, task in self.jobs.get(job_id, {}).items():
            for name, size in task.files.items():
                try:
                    on_disk = (output_dir / job_id / task_id / name).stat().st_size
                except OSError:
                    on_disk = -1
                if on_disk != size:
                    found.append((task_id, name))
        return found

    def save(self) -> None:
        """Write the record atomically (a temporary file renamed over the old one)."""
        data = {"version": RECORD_VERSION,
                "jobs": {job_id: {"created": self.created.get(job_id, ""),
                                  "tasks": {task_id: {"result": task.result, "failed": task.failed,
                                                      "files": task.files, "ended": task.ended}
                                            for task_id, task in tasks.items()}}
                         for job_id, tasks in self.jobs.items() if tasks}}
        text = json.dumps(data, separators=(",", ":"), sort_keys=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, [text.encode()], threading.Event())


def load_record(output_dir: Path) -> Record:
    """The record under output_dir; an empty one when it is missing, unreadable or not ours."""
    path = output_dir / RECORD_NAME
    try:
        data = json.loads(path.read_text())
        if data.get("version") != RECORD_VERSION:
            return Record(path)
        jobs = {job_id: {task_id: TaskRecord(str(task["result"]), bool(task["failed"]),
                                             {str(name): int(size) for name, size in task["files"].items()},
                                             str(task.get("ended", "")))
                         for task_id, task in job["tasks"].items()}
                for job_id, job in data["jobs"].items()}
        created = {job_id: str(job["created"]) for job_id, job in data["jobs"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Record(path)
    return Record(path, jobs, created)


# --- fetching files --------------------------------------------------------------------------------

def retry_if_cut(download: Callable[[], int], attempts: int = DOWNLOAD_ATTEMPTS, clock: Clock | None = None) -> int:
    """Run `download` again (from the start) when the connection breaks mid-file; azure-core does not.
    The tries are 1 s, then 2 s apart (then twice as long each time, at most 8 s)."""
    return retry(download, Schedule(first=1, longest=8, attempts=attempts),
                 again=is_broken_connection, clock=clock)


class Source(enum.Enum):
    """Where one output file came from, or why it is not available; the value is the words said of it."""
    ALREADY_DOWNLOADED = "already downloaded"
    BLOB_CONTAINER = "from the blob container"
    NODE = "from the node"
    GONE_FROM_NODE = "not available: not in the blob container, and the node no longer has it"
    NEVER_RAN = "not available: not in the blob container, and the task never ran on a node"

    @property
    def downloaded_now(self) -> bool:
        """Whether this run downloaded the file (the outputs line counts these)."""
        return self in (Source.BLOB_CONTAINER, Source.NODE)


@dataclass(frozen=True)
class Fetched:
    """Where one file came from (or why not), why the blob container was not used (`note`, '' when it
    was), and its size on disk (None when not available)."""

    source: Source
    size: int | None
    note: str = ""

    @property
    def how(self) -> str:
        """The words for the user: the source, then the note (e.g. 'from the node (the blob container ...)')."""
        return self.source.value + self.note

    def origin(self) -> Fetched:
        """The same without its size: what the outputs line counts (files by where they came from)."""
        return Fetched(self.source, None, self.note)


class Downloader:
    """Fetches output files: from the blob container while it answers, else from the nodes.

    When the container cannot be reached at all, it is given up on for the rest of the run, said
    once (`notice`), and every file comes from the node's copy through the task file API."""

    def __init__(self, client: BatchClient, container_factory: Callable[[], ContainerClient] | None,
                 notice: Callable[[str], None]):
        self.client = client
        self._factory = container_factory
        self._container: ContainerClient | None = None
        self._unreachable = False
        self._lock = threading.Lock()
        self._notice = notice
        self.cancelled = threading.Event()

    def container(self) -> ContainerClient | None:
        with self._lock:  # created on first use: a re-run with nothing to fetch never imports the storage SDK
            if self._unreachable or self._factory is None:
                return None
            if self._container is None:
                self._container = self._factory()
            return self._container

    def _give_up_on_container(self, err: Exception) -> None:
        with self._lock:
            if self._unreachable:
                return
            self._unreachable = True
        detail = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        self._notice(f"The blob container cannot be reached ({type(err).__name__}: {detail}); "
                     "reading outputs from the nodes instead. Check BLOB_CONTAINER_URL and the network.")

    def fetch(self, job_id: str, task_id: str, name: str, target: Path, check_existing: bool) -> Fetched:
        """Download one output file. With check_existing, a file already on disk with the source's
        size is kept (a run without a record does this once per file)."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

        refused = ""
        container = self.container()
        if container is not None:
            blob = container.get_blob_client(f"{job_id}/{task_id}/{name}")
            try:
                if check_existing and target.exists():
                    size = blob.get_blob_properties().size
                    if target.stat().st_size == size:
                        return Fetched(Source.ALREADY_DOWNLOADED, size)
                size = write_atomically(target, blob.download_blob().chunks(), self.cancelled)
                return Fetched(Source.BLOB_CONTAINER, size)
            except ResourceNotFoundError:
                pass  # not uploaded (the upload failed, or the task had none): the node may still have it
            except ServiceRequestError as err:  # no connection at all, after the client's retries
                self._give_up_on_container(err)
                refused = " (the blob container cannot be reached)"
            except HttpResponseError as err:  # e.g. a SAS Azure Storage rejects: say so, then try the node
                if err.status_code is None or err.status_code >= 500:
                    self._give_up_on_container(err)
                    refused = " (the blob container cannot be reached)"
                else:
                    code = getattr(err, "error_code", None) or err.status_code
                    refused = f" (the blob container refused the SAS: {code}; check BLOB_CONTAINER_URL's SAS)"
        return self._from_node(job_id, task_id, name, target, check_existing, refused)

    def result_names(self, job_id: str, task: models.BatchTask) -> list[str]:
        """The task's result files (OUTPUT_FILES), as paths below OUTPUT_DIR/JOB/TASK/: the blobs under
        JOB/TASK/ but the std files, or, when the blob container cannot be listed, the files of the task's
        directory on the node that its result patterns select. One request; none for a task without them."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

        patterns = result_patterns(task)
        if not patterns:
            return []
        container = self.container()
        if container is not None:
            prefix = f"{job_id}/{task.id}/"
            try:
                names = [blob.name[len(prefix):] for blob in container.list_blobs(name_starts_with=prefix)]
                return [name for name in names if is_result_name(name)]
            except ResourceNotFoundError:
                pass  # no such container: the node may still have them
            except ServiceRequestError as err:
                self._give_up_on_container(err)
            except HttpResponseError as err:  # e.g. a SAS without list permission: the node's listing instead
                if err.status_code is None or err.status_code >= 500:
                    self._give_up_on_container(err)
        return self._results_on_node(job_id, str(task.id), patterns)

    def _results_on_node(self, job_id: str, task_id: str, patterns: list[str]) -> list[str]:
        from azure.core.exceptions import HttpResponseError

        try:
            files = list(self.client.list_task_files(job_id, task_id, recursive=True))
        except HttpResponseError:  # the node is gone (404) or the task never ran on one (409)
            return []
        wanted = [pattern.split("/") for pattern in patterns]
        return [file.name for file in files if file.name and not file.is_directory and is_result_name(file.name)
                and any(_matches(pattern, file.name.split("/")) for pattern in wanted)]

    def _from_node(self, job_id: str, task_id: str, name: str, target: Path, check_existing: bool,
                   refused: str) -> Fetched:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        from toolkit.batch import error_code

        client = self.client
        try:
            if check_existing and target.exists():
                size = client.get_task_file_properties(job_id, task_id, name).content_length
                if target.stat().st_size == size:
                    return Fetched(Source.ALREADY_DOWNLOADED, size, refused)
            size = retry_if_cut(lambda: write_atomically(target, client.download_task_file(job_id, task_id, name),
                                                         self.cancelled))
            return Fetched(Source.NODE, size, refused)
        except ResourceNotFoundError:
            return Fetched(Source.GONE_FROM_NODE, None, refused)
        except HttpResponseError as err:
            if error_code(err) != "OperationInvalidForCurrentState":
                raise
            # A task ended before it ran (terminated while waiting, say) has no node to read files from.
            return Fetched(Source.NEVER_RAN, None, refused)
