"""A node's service logs: the agent log the emulator writes for each node, and their upload to a blob container.

The agent log (service.node_logs.AGENT_LOG, under the node's root) gets one line per event of the node's life
that a real node agent logs: start-up, start task, job preparation, task runs, node actions and these uploads.
Its lines never hold a command line or a URL's query (a SAS signature); the upload's errors go through ``redact``.

An upload (service.work.Runtime.upload_node_logs) keeps the files the service named that were written to since
the request's start time (a file is uploaded whole, as the REST reference says of the service), answers how many,
and uploads them on a worker thread with azure-storage-blob, as blobio.py uploads output files. Storage refusing
them (a bad or expired SAS: 403) does not change the answer, which has gone already: the agent log says so.
[inferred] The service's answer to such a container was not found; the REST reference's "files which will be
uploaded" says the answer comes before the upload.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from stat import S_ISREG
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient, ExponentialRetry

from toolkit.redaction import redact

from ..service.node_logs import AGENT_LOG
from ..service.work import LogFile, LogUpload

UPLOAD_TIMEOUT = 60
# A file's last-modified time comes from the kernel's coarse clock, a tick (up to 10 ms) behind the precise one
# the request's startTime was read from: a file written just after startTime may show a time just before it.
# Taken a little early, the range picks such a file (more, never fewer, as the REST reference allows).
MTIME_SLACK = timedelta(milliseconds=50)
_append_lock = threading.Lock()   # one line at a time: the node's workers log from several threads


def agent_log(node_root: str, message: str, level: str = "INFO") -> None:
    """Append one line to the node's agent log; nothing once the node's directory is gone (it left its pool)."""
    if not os.path.isdir(node_root):
        return
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path = os.path.join(node_root, AGENT_LOG)
    with _append_lock:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a", encoding="utf-8") as log:
                log.write(f"{stamp} {level} {redact(message)}\n")
        except OSError:   # the node's directory went meanwhile: no one is left to read its log
            pass


def _written_since(node_root: str, log: LogFile, start: datetime) -> bool:
    """Whether the file exists and was last written at or after ``start``: it then holds a line of the range."""
    try:
        stat = os.stat(os.path.join(node_root, log.relative))
    except OSError:
        return False
    return S_ISREG(stat.st_mode) and datetime.fromtimestamp(stat.st_mtime, timezone.utc) >= start - MTIME_SLACK


def _where(url: str) -> str:
    """The container's URL as the agent log shows it: without its query, so without its SAS."""
    return url.split("?", 1)[0]


def start_upload(upload: LogUpload, spawn: Callable[..., Any]) -> int:
    """Pick the files, log the request, upload them on a worker thread (``spawn``); how many will be uploaded."""
    agent_log(upload.node_root, f"Uploading service logs to {_where(upload.container_url)}/"
                                f"{upload.virtual_directory}/")
    # The agent log's own line above is a line of the range: it is always among the files (while it exists).
    chosen = [log for log in upload.files if _written_since(upload.node_root, log, upload.start_time)]
    spawn(_upload, upload, chosen)
    return len(chosen)


def _container(url: str) -> ContainerClient:
    # The storage SDK's default retry waits 15 s, 45 s, ...; a refused upload is logged within a second here.
    return ContainerClient.from_container_url(
        # The storage SDK annotates these two as int; it computes with them as seconds, fractions work.
        url, retry_policy=ExponentialRetry(initial_backoff=0.3, increment_base=1, retry_total=1,  # type: ignore[arg-type]
                                           random_jitter_range=0.2),  # type: ignore[arg-type]
        connection_timeout=10, read_timeout=UPLOAD_TIMEOUT)


def _refusal(exc: Exception) -> str:
    """What storage said, without secrets: its status and error code (AuthenticationFailed, ...), else the error."""
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "error_code", None)
    code = getattr(code, "value", code)   # a StorageErrorCode: its wire string (AuthenticationFailed, ...)
    if status is not None:
        return f"HTTP {status} {code or ''}".rstrip()
    return redact(exc)


def _upload(upload: LogUpload, chosen: list[LogFile]) -> None:
    """Upload each file as {virtual directory}/{its path under the node root}; the first refusal ends the upload."""
    where = f"{_where(upload.container_url)}/{upload.virtual_directory}/"
    sent = 0
    try:
        with _container(upload.container_url) as container:
            for log in chosen:
                path = os.path.join(upload.node_root, log.relative)
                try:
                    with open(path, "rb") as data:
                        container.upload_blob(f"{upload.virtual_directory}/{log.relative}", data, overwrite=True)
                except FileNotFoundError:   # removed since it was chosen (its task was deleted)
                    continue
                sent += 1
    except (AzureError, OSError, ValueError) as exc:
        agent_log(upload.node_root, f"Uploading service logs to {where} failed after {sent} of {len(chosen)} "
                                    f"file(s): {_refusal(exc)}", "ERROR")
        return
    agent_log(upload.node_root, f"Uploaded {sent} service log file(s) to {where}")


def log_ended(node_root: str, what: str, exit_code: int | None, failure: dict[str, Any] | None,
              state: str | None = None) -> None:
    """The agent log's line for a start task, job preparation task or task run that ended: the task's state (a
    task's: completed, or active again to be retried or run elsewhere), its exit code and the code of its failure,
    if any (WARN then)."""
    parts = ([state] if state else []) + ([f"exit code {exit_code}"] if exit_code is not None else []) + \
        ([f"failure {failure.get('code')}"] if failure else [])
    agent_log(node_root, f"{what} ended: {', '.join(parts) or 'it did not run'}", "WARN" if failure else "INFO")
