"""Check the tasks of each job and download their outputs once they have all finished.

    python3 check_task.py [--job_id JOB_ID] [--output_dir outputs] [--wait [--poll_seconds 15]]

1. Logs in to the Batch account from config_resources.py.
2. Prints, for every job of the account (or --job_id only), one line of task
   counts: active, running, completed, succeeded, failed (one request per job).
3. When every task of a job has completed, downloads each task's stdout.txt and
   stderr.txt to OUTPUT_DIR/JOB_ID/TASK_ID/: from the blob container where
   send_task.py had them uploaded, else from the node through the task file API.
   Downloads run in parallel, go to a temporary file renamed when complete,
   and skip files already downloaded whole.

With --wait it polls until every task has completed, then downloads.

Exit codes: 0 done (whatever the tasks' own results), 1 the service refused or
--wait stopped because a job's preparation task failed, 2 bad option or
configuration, 130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from config_resources import batch_access, read_settings, storage
from toolkit.batch import make_batch_client, wire_value
from toolkit.cli import EXIT_OK, EXIT_USAGE, ToolkitError, check_id, run, warn_if_env_file_shared
from toolkit.storage import check_container_sas, make_container_client

if TYPE_CHECKING:
    from azure.batch import BatchClient, models
    from azure.storage.blob import ContainerClient

STD_FILES = ("stdout.txt", "stderr.txt")
PARALLEL_REQUESTS = 8
FILE_MODE = 0o666 & ~os.umask(os.umask(0))  # what open() would give under the user's umask (read once, at start)
DOWNLOAD_ATTEMPTS = 3  # per file, when the connection breaks mid-file
DOWNLOAD_SAS_LIFETIME = datetime.timedelta(hours=1)  # when AZURE_STORAGE_KEY lets us make one


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Summarise task states per job; download outputs of finished jobs.")
    parser.add_argument("--job_id", help="check this job only (default: every job of the account)")
    parser.add_argument("--output_dir", default="outputs", help="where outputs go (default: outputs)")
    parser.add_argument("--wait", action="store_true", help="poll until every task has completed, then download")
    parser.add_argument("--poll_seconds", type=float, default=15.0, help="seconds between polls with --wait")
    return parser


def task_counts(client: BatchClient, job_ids: list[str]) -> dict[str, models.BatchTaskCounts]:
    """Task counts of each job, one request per job, in parallel."""
    with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
        counts = pool.map(lambda job_id: client.get_job_task_counts(job_id).task_counts, job_ids)
        return dict(zip(job_ids, counts, strict=True))


def describe(job_id: str, counts: models.BatchTaskCounts) -> str:
    return (f"Job [{job_id}]: active {counts.active}, running {counts.running}, completed {counts.completed} "
            f"(succeeded {counts.succeeded}, failed {counts.failed})")


def completed_tasks(client: BatchClient, job_id: str) -> list[models.BatchTask] | None:
    """The job's tasks when every one has completed (counts can lag, so this confirms), else None."""
    tasks = list(client.list_tasks(job_id, select=["id", "state", "executionInfo"]))
    if any(wire_value(task.state) != "completed" for task in tasks):
        return None
    return tasks


def task_result(task: models.BatchTask) -> str:
    info = task.execution_info
    if info is None or wire_value(info.result) == "success":
        return f"succeeded (exit code {info.exit_code if info else '?'})"
    failure = info.failure_info
    reason = f": {failure.code} - {failure.message}" if failure else ""
    return f"FAILED (exit code {info.exit_code}){reason}"


def preparation_failures(client: BatchClient,
                         job_id: str) -> list[tuple[str | None, models.BatchJobPreparationTaskExecutionInfo]]:
    """Nodes where the job preparation task failed: the usual reason an MPI task stays active."""
    from azure.core.exceptions import ResourceExistsError

    try:
        statuses = client.list_job_preparation_and_release_task_status(job_id)
        return [(status.node_id, status.job_preparation_task_execution_info) for status in statuses
                if status.job_preparation_task_execution_info is not None
                and wire_value(status.job_preparation_task_execution_info.result) == "failure"]
    except ResourceExistsError:  # 409 JobPreparationTaskNotSpecified: the job has none
        return []


class DownloadCancelled(Exception):
    """Another download failed or the user pressed Ctrl-C: stop, leaving no partial file."""


def write_atomically(target: Path, chunks: Iterable[bytes], cancelled: threading.Event) -> None:
    """Write the byte chunks into a temporary file beside target, renamed to target only when complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as file:
            for chunk in chunks:
                if cancelled.is_set():
                    raise DownloadCancelled()
                file.write(chunk)
        os.chmod(partial, FILE_MODE)  # mkstemp makes it private (0600); a download gets the usual mode
        os.replace(partial, target)
    except BaseException:
        os.unlink(partial)
        raise


def is_broken_connection(err: Exception) -> bool:
    """A connection cut while the answer was read: azure-core raises it with no HTTP status."""
    from azure.core.exceptions import HttpResponseError, ServiceResponseError

    return isinstance(err, ServiceResponseError) or (isinstance(err, HttpResponseError) and err.status_code is None)


def retry_if_cut(download: Callable[[], None], attempts: int = DOWNLOAD_ATTEMPTS) -> None:
    """Run `download` again (from the start) when the connection breaks mid-file; azure-core does not."""
    for attempt in range(1, attempts + 1):
        try:
            return download()
        except Exception as err:
            if attempt == attempts or not is_broken_connection(err):
                raise
            time.sleep(attempt)


def download_file(client: BatchClient, container: ContainerClient | None, job_id: str, task_id: str, name: str,
                  target: Path, cancelled: threading.Event) -> str:
    """Download one output file; returns where it came from, or why not."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    refused = ""
    if container is not None:
        blob = container.get_blob_client(f"{job_id}/{task_id}/{name}")
        try:
            if target.exists() and target.stat().st_size == blob.get_blob_properties().size:
                return "already downloaded"
            write_atomically(target, blob.download_blob().chunks(), cancelled)
            return "from the blob container"
        except ResourceNotFoundError:
            pass  # not uploaded (the upload failed, or the task had none): the node may still have it
        except HttpResponseError as err:  # e.g. a SAS Azure Storage rejects: say so, then try the node
            code = getattr(err, "error_code", None) or err.status_code
            refused = f" (the blob container refused the SAS: {code}; check BLOB_CONTAINER_URL's SAS)"
    try:
        size = client.get_task_file_properties(job_id, task_id, name).content_length
        if target.exists() and target.stat().st_size == size:
            return "already downloaded" + refused
        retry_if_cut(lambda: write_atomically(target, client.download_task_file(job_id, task_id, name), cancelled))
        return "from the node" + refused
    except ResourceNotFoundError:
        return "not available: not in the blob container, and the node no longer has it" + refused


def download_outputs(client: BatchClient, container: ContainerClient | None, job_id: str,
                     tasks: list[models.BatchTask], output_dir: Path) -> None:
    """Download every task's stdout/stderr in parallel; on any failure or Ctrl-C, stop all of them cleanly."""
    files = [(task.id, name) for task in tasks for name in STD_FILES]
    cancelled = threading.Event()
    pool = ThreadPoolExecutor(PARALLEL_REQUESTS)
    try:
        futures = [pool.submit(download_file, client, container, job_id, task_id, name,
                               output_dir / job_id / task_id / name, cancelled) for task_id, name in files]
        for (task_id, name), future in zip(files, futures, strict=True):
            print(f"  {output_dir / job_id / task_id / name}: {future.result()}")
    except BaseException:
        cancelled.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_jobs(client: BatchClient, container: ContainerClient | None, job_ids: list[str], output_dir: Path,
               done: set[str], wait: bool) -> bool:
    """One round: print counts, download what finished; True when no job has work left."""
    all_finished = True
    for job_id, counts in task_counts(client, job_ids).items():
        print(describe(job_id, counts), flush=True)  # --wait may be piped: show progress as it comes
        if counts.active or counts.running:
            all_finished = False
            if counts.active and not counts.running:
                explain_stuck_tasks(client, job_id, stop=wait)
            continue
        if job_id in done or (not counts.completed and not wait):
            continue
        tasks = completed_tasks(client, job_id)  # with --wait, also confirms counts of zero: they can lag
        if tasks is None:
            all_finished = False
            continue
        if not tasks:
            print("  no tasks in this job")
            done.add(job_id)
            continue
        for task in tasks:
            print(f"  task [{task.id}]: {task_result(task)}")
        download_outputs(client, container, job_id, tasks, output_dir)
        done.add(job_id)
    return all_finished


def explain_stuck_tasks(client: BatchClient, job_id: str, stop: bool) -> None:
    """Say why tasks wait (the job's pool is gone, or its preparation task failed); with --wait, stop."""
    from azure.core.exceptions import ResourceNotFoundError

    message = None
    pool_id = client.get_job(job_id, select=["poolInfo"]).pool_info.pool_id
    if pool_id is None:  # an auto pool, which create_pool_job.py never makes: nothing to explain
        return
    try:
        client.get_pool(pool_id, select=["id"])
    except ResourceNotFoundError:
        message = (f"Job [{job_id}]: its pool [{pool_id}] does not exist, so its tasks cannot start. Create it: "
                   f"python3 create_pool_job.py --pool_id {pool_id} --job_id {job_id}")
    failures = [] if message else preparation_failures(client, job_id)
    if failures:
        node_id, info = failures[0]
        message = (f"Job [{job_id}]: the job preparation task failed on {len(failures)} node(s), e.g. {node_id} "
                   f"(exit code {info.exit_code}), so tasks cannot start there. Read its stderr.txt: "
                   f"az batch node file download --pool-id {pool_id} --node-id {node_id} "
                   f"--file-path {info.task_root_directory}/stderr.txt --destination prep-stderr.txt")
    if message is None:
        return
    if stop:
        raise ToolkitError(message)
    print(f"  {message}")


def check_output_dir(output_dir: Path) -> None:
    """Refuse an output directory that could not be created or written, before waiting for anything
    (without creating it: a status check alone leaves nothing behind)."""
    existing = output_dir.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ToolkitError(f"--output_dir {output_dir} cannot be created: {existing} is not a directory.", EXIT_USAGE)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ToolkitError(f"--output_dir {output_dir} is not writable ({existing}): choose another.", EXIT_USAGE)


def check(args: argparse.Namespace) -> int:
    if args.job_id is not None:
        check_id("--job_id", args.job_id)
    if not (math.isfinite(args.poll_seconds) and args.poll_seconds > 0):
        raise ToolkitError("--poll_seconds must be a number of seconds more than 0.", EXIT_USAGE)
    check_output_dir(Path(args.output_dir))
    settings = read_settings()
    access = batch_access(settings)
    warn_if_env_file_shared(settings)
    container = None
    if settings.blob_container["url"]:  # optional: without it, outputs come from the nodes
        blobs = storage(settings)
        check_container_sas(blobs, "r", "downloads")
        container = make_container_client(blobs, "r", DOWNLOAD_SAS_LIFETIME)
    client = make_batch_client(access)

    if args.job_id:
        job_ids = [args.job_id]
    else:
        job_ids = [job.id for job in client.list_jobs(select=["id"])]
        if not job_ids:
            print("No jobs in this Batch account.")
            return EXIT_OK
    done: set[str] = set()
    while not check_jobs(client, container, job_ids, Path(args.output_dir), done, args.wait) and args.wait:
        time.sleep(args.poll_seconds)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda: check(args))


if __name__ == "__main__":
    sys.exit(main())
