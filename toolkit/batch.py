"""Azure Batch for the scripts: the client with bounded retries, the service's errors (their code, and
one line with advice), the marks a run leaves on what it creates, and the checks of a pool's fitness
for MPI tasks.

The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from toolkit.checked import BatchAccess

if TYPE_CHECKING:
    from azure.batch import BatchClient, models
    from azure.core.exceptions import HttpResponseError

# Each run marks what it creates (pool/job metadata, task environment) with a fresh id, so
# that when a retried POST finds the resource already there, the run knows it made it.
SUBMISSION_MARK = "MPI_TOOLKIT_SUBMISSION_ID"

# create_pool_job.py records the pool's node cap here; send_task.py reads it back.
MAX_NODES_METADATA = "mpi-toolkit-max-nodes"

# Retries are bounded so that a dead endpoint or a service answering 503 to everything
# surfaces in seconds, not after azure-core's defaults (10 tries, backoff up to 120 s).
# Retry-After from the service is honoured. POSTs are retried only where the caller
# can recognise its own resource if the first attempt did reach the service.
CLIENT_OPTIONS: dict[str, Any] = dict(retry_total=4, retry_connect=2, retry_read=2, retry_status=3,
                                      retry_backoff_factor=0.5, retry_backoff_max=8, timeout=90,
                                      connection_timeout=5, read_timeout=30)
RETRY_POST: dict[str, Any] = {"retry_on_methods": frozenset({"HEAD", "GET", "PUT", "DELETE", "POST"})}

# Service error codes with what the user should do about them
# (https://learn.microsoft.com/rest/api/batchservice/batch-status-and-error-codes).
SERVICE_ADVICE = {
    "AuthenticationFailed": "Batch rejected the credentials: check AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY "
                            "(az batch account keys list --name ACCOUNT --resource-group GROUP), or, if the account "
                            "does not accept keys, unset AZURE_BATCH_ACCESS_KEY and sign in with `az login`.",
    "AccountIsDisabled": "the Batch account is disabled: enable it in the Azure portal.",
    "InsufficientAccountPermissions": "the credentials may not do this: give the signed-in identity a role on the "
                                      "Batch account (e.g. Azure Batch Data Contributor), or use the account's "
                                      "shared key.",
    "PoolQuotaReached": "the account's pool quota is reached: delete an unused pool or ask for a higher quota.",
    "ActiveJobAndScheduleQuotaReached": "the account's job quota is reached: delete finished jobs or ask for a "
                                        "higher quota.",
    "AccountCoreQuotaReached": "the account's core quota is reached: use fewer or smaller nodes, or ask for a "
                               "higher quota.",
    "PoolBeingDeleted": "the pool is being deleted: wait until it is gone, or use another --pool_id.",
    "JobNotFound": "no job has that id: list the account's jobs with python3 check_task.py (no --job_id).",
    "TaskNotFound": "the job has no task with that id: list its tasks with python3 check_task.py --job_id JOB_ID "
                    "--verbose.",
    "JobBeingDeleted": "the job is being deleted: wait until it is gone, or use another --job_id.",
}


def make_batch_client(access: BatchAccess, announce: TextIO | None = None) -> BatchClient:
    """A BatchClient for the configured account, with bounded retries and timeouts, signed in with the
    account's key or with Microsoft Entra ID (toolkit/credentials.py; the SDK's default token scope
    https://batch.core.windows.net//.default is the one the service accepts). Which sign-in is used is
    printed to `announce` (default stdout; check_task.py --tail keeps stdout for the task's output)."""
    from azure.batch import BatchClient

    from toolkit.credentials import batch_credential

    logging.getLogger("azure").setLevel(logging.ERROR)  # the SDK logs tracebacks for answers it then raises
    credential = batch_credential(access, announce or sys.stdout)
    return BatchClient(endpoint=access.endpoint, credential=credential, **CLIENT_OPTIONS)


def wire_value(value: object) -> str:
    """An enum from the SDK as its lowercase wire value ('active'), robust to other casings from the service."""
    return str(getattr(value, "value", value) or "").lower()


def error_code(err: Exception) -> str | None:
    """The service's error code (e.g. 'PoolExists') of an azure-core exception, if any.

    A streamed download (a task file) fails before the SDK reads the error body, so err.error is
    None there: the code is then read from the body, which the service sends as JSON."""
    from azure.core.exceptions import HttpResponseError

    if not isinstance(err, HttpResponseError):
        return None
    if err.error is not None:
        return err.error.code
    read = getattr(err.response, "read", None)  # azure.core.rest.HttpResponse: the SDK's responses
    try:
        body = json.loads(read()) if callable(read) else None
    except Exception:  # no body (a HEAD), not JSON, or the connection is gone: no code to tell
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def service_message(err: HttpResponseError) -> str:
    """One line describing an error answered by the service: advice for a known error code, else its message."""
    code = error_code(err)
    if code in SERVICE_ADVICE:
        return f"{code}: {SERVICE_ADVICE[code]}"
    message = (err.error.message if err.error is not None else None) or err.message or str(err)
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else type(err).__name__
    return f"{code}: {first_line}" if code else first_line


def made_by(items: Iterable[models.BatchMetadataItem | models.EnvironmentSetting] | None, submission_id: str) -> bool:
    """Whether name/value items (metadata, environment settings) carry this run's submission id."""
    return any(item.name == SUBMISSION_MARK and item.value == submission_id for item in items or [])


def mpi_problem(pool: models.BatchPool) -> str | None:
    """Why a pool cannot run multi-instance (MPI) tasks, or None when it can.

    The service accepts such a task on any pool but never schedules it without
    inter-node communication and one task slot per node
    (https://learn.microsoft.com/azure/batch/batch-mpi).
    """
    if not pool.enable_inter_node_communication:
        return "inter-node communication is off"
    if (pool.task_slots_per_node or 1) != 1:
        return f"it has {pool.task_slots_per_node} task slots per node (MPI tasks need exactly 1)"
    return None


def pool_max_nodes(pool: models.BatchPool) -> int | None:
    """The most nodes a pool can have: its recorded cap, or its target size when fixed; None when unknown."""
    for item in pool.metadata or []:
        if item.name == MAX_NODES_METADATA and item.value.isdigit():
            return int(item.value)
    if not pool.enable_auto_scale:
        return (pool.target_dedicated_nodes or 0) + (pool.target_low_priority_nodes or 0)
    return None
