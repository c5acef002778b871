"""Upload a node's service logs (POST pools/{poolId}/nodes/{nodeId}/uploadbatchservicelogs, issue 21).

The service decides under the account lock which logs the node has: its agent log (AGENT_LOG, which the runtime
writes: start-up, start task, job preparation, task runs, node actions, these uploads), and the stdout.txt and
stderr.txt of its start task, of the job preparation tasks that ran on it and of the tasks (multi-instance
subtasks included) it ran, each with the time its first line was written at the latest. The runtime then, without
the lock, keeps those written to since startTime and uploads them in the background (service.work.Runtime
upload_node_logs); the answer says how many will be uploaded, as the REST reference words it ("the number of log
files which will be uploaded"), not how many were.

The answer's shape is the recorded one (Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/
test_batch.pyTestBatchtest_batch_compute_nodes[sync].json): 200 with odata.metadata, virtualDirectoryName
"batch-22ECC15FFD102503/{poolId}/{nodeId}/{request-id}" and numberOfFilesUploaded. The blobs are
"{virtualDirectoryName}/{path under the node root}" [inferred: the service's file names were not found].
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from toolkit.redaction import redact

from .changes import read
from .errors import conflict, invalid_property, missing_property
from .state import Account, Job, Node, Pool, get_node, get_pool
from .states import NodeState
from .validation import require_object
from .work import LogFile, LogUpload, Runtime

AGENT_LOG = "agent-logs/agent.log"   # under the node's root: what the emulator's node agent writes
# [inferred] A node whose agent does not run has no logs to send: one being made, or deallocated. The service's
# codes for these were not found: those of the other node operations (service/nodes.py).
REFUSED = {NodeState.CREATING: "NodeBeingCreated", NodeState.DEALLOCATING: "OperationInvalidForCurrentState",
           NodeState.DEALLOCATED: "OperationInvalidForCurrentState"}


@dataclass(frozen=True)
class LogsRequest:
    """An upload request's body, checked: the container URL (with its SAS), the time range."""
    container_url: str
    start_time: datetime
    end_time: datetime | None


@dataclass(frozen=True)
class UploadedLogs:
    """The answer: the blob name prefix of the upload and how many files go there."""
    virtual_directory: str
    files: int


def _moment(value: object) -> datetime | None:
    """An ISO-8601 date and time (UTC when it names no offset; the SDK sends "...Z"), or None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _time(value: Any, name: str) -> datetime:
    moment = _moment(value)
    if moment is None:
        raise invalid_property(name, value, "The value is not a valid ISO-8601 date and time.")
    return moment


def parse_request(raw: object) -> LogsRequest:
    """containerUrl and startTime are required (400 MissingRequiredProperty), containerUrl an http(s) URL and the
    times dates (400 InvalidPropertyValue, the URL shown without its SAS signature); endTime is optional.
    identityReference is accepted and not used: the upload is authorised by the URL's SAS alone."""
    body = require_object(raw)
    url = body.get("containerUrl")
    if url is None:
        raise missing_property("containerUrl")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise invalid_property("containerUrl", redact(url), "The value is not a valid http or https URL.")
    if body.get("startTime") is None:
        raise missing_property("startTime")
    start = _time(body["startTime"], "startTime")
    end = _time(body["endTime"], "endTime") if body.get("endTime") is not None else None
    if end is not None and end < start:
        # [inferred] The REST reference does not say; a range that ends before it starts is refused.
        raise invalid_property("endTime", body["endTime"], "The end time is before the start time.")
    return LogsRequest(url, start, end)


def _virtual_directory(account: Account, pool: Pool, node: Node) -> str:
    """batch-{16 hex digits}/{poolId}/{nodeId}/{unique id}, as recorded. [inferred] What the first part is made
    from was not found: here, of the account's name, so it is the same for every upload of the account."""
    tag = hashlib.sha256(account.name.encode()).hexdigest()[:16].upper()
    return f"batch-{tag}/{pool.id}/{node.id}/{uuid.uuid4()}"


def _task_logs(job: Job, node: Node) -> list[LogFile]:
    """The stdout.txt and stderr.txt of the job's preparation task and tasks on ``node`` (lock held)."""
    found: list[LogFile] = []

    def add(directory: str, started: object) -> None:
        since = _moment(started) or node.allocation_time
        found.extend(LogFile(f"{directory}/{name}", since) for name in ("stdout.txt", "stderr.txt"))

    run = job.prep_runs.get(node.id)
    if run is not None:
        add(run["info"]["taskRootDirectory"], run["info"].get("startTime"))
    for task in job.tasks.values():
        if node.id not in task.node_ids:
            continue
        directory = f"workitems/{job.id}/job-1/{task.id}"
        index = task.node_ids.index(node.id)
        if index == 0:
            add(directory, task.execution.get("startTime"))
        else:   # a subtask of a multi-instance task: its own directory, its own start
            sub = next((s for s in task.subtasks if s.get("id") == index), {})
            add(f"{directory}/{index}", sub.get("startTime"))
    return found


def _node_logs(account: Account, node: Node) -> list[LogFile]:
    """Every log ``node`` may have (lock held): its agent log, its start task's output, its tasks' output."""
    logs = [LogFile(AGENT_LOG, node.allocation_time)]
    if node.start_task_info is not None:
        since = _moment(node.start_task_info.get("startTime")) or node.allocation_time
        logs += [LogFile(f"startup/{name}", since) for name in ("stdout.txt", "stderr.txt")]
    for job in account.jobs.values():
        logs += _task_logs(job, node)
    return logs


def upload_node_logs(account: Account, runtime: Runtime, pool_id: str, node_id: str, raw: object) -> UploadedLogs:
    """What the node uploads (under the lock), then the upload begins (the runtime, without the lock)."""
    request = parse_request(raw)

    def plan() -> LogUpload:
        pool = get_pool(account, pool_id)
        node = get_node(account, pool_id, node_id)
        if node.state in REFUSED:
            raise conflict(REFUSED[node.state])
        files = tuple(log for log in _node_logs(account, node)
                      if request.end_time is None or log.since <= request.end_time)
        return LogUpload(node.root, files, request.start_time, request.end_time, request.container_url,
                         _virtual_directory(account, pool, node))

    upload = read(account, plan)
    return UploadedLogs(upload.virtual_directory, runtime.upload_node_logs(upload))
