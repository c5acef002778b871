"""Helpers shared by the three scripts: the Batch client, id checks, redaction,
and `run()`, the one place that turns errors into a message and an exit code.

Exit codes of every script:
    0    done
    1    the service refused or failed (the message says why and what to do)
    2    usage or configuration error, found before any network call
    130  interrupted (Ctrl-C)

The azure packages are imported inside functions so that `--help` stays fast.
"""

import datetime
import errno
import logging
import os
import re
import stat
import sys
from typing import Callable, Optional

from config_resources import (ConfigError, Settings, container_parts, read_settings, require, sas_expiry,
                              sas_permissions)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Pool, job and task ids: letters, digits, hyphens and underscores, at most 64 characters.
MAX_ID_LENGTH = 64
_ID_CHARACTERS = re.compile(r"[A-Za-z0-9_-]")
_SAS_SIGNATURE = re.compile(r"(sig=)[^&\s'\"]+", re.IGNORECASE)

# Service error codes with what the user should do about them.
SERVICE_ADVICE = {
    "AuthenticationFailed": "Batch rejected the credentials: check AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY "
                            "(az batch account keys list --name ACCOUNT --resource-group GROUP).",
    "AccountIsDisabled": "the Batch account is disabled: enable it in the Azure portal.",
    "InsufficientAccountPermissions": "the credentials may not do this: use the account's shared key.",
    "PoolQuotaReached": "the account's pool quota is reached: delete an unused pool or ask for a higher quota.",
    "ActiveJobAndScheduleQuotaReached": "the account's job quota is reached: delete finished jobs or ask for a higher quota.",
    "AccountCoreQuotaReached": "the account's core quota is reached: use fewer or smaller nodes, or ask for a higher quota.",
    "PoolBeingDeleted": "the pool is being deleted: wait until it is gone, or use another --pool_id.",
    "JobNotFound": "no job has that id: list the account's jobs with python3 check_task.py (no --job_id).",
    "JobBeingDeleted": "the job is being deleted: wait until it is gone, or use another --job_id.",
}


SAS_LETTERS = {"r": "read", "a": "add", "c": "create", "w": "write", "d": "delete", "l": "list"}
# A SAS made here starts a little in the past, so a node or service with a slightly late clock accepts it.
SAS_CLOCK_SKEW = datetime.timedelta(minutes=5)

# Each run marks what it creates (pool/job metadata, task environment) with a fresh id, so
# that when a retried POST finds the resource already there, the run knows it made it.
SUBMISSION_MARK = "MPI_TOOLKIT_SUBMISSION_ID"

# create_pool_job.py records the pool's node cap here; send_task.py reads it back.
MAX_NODES_METADATA = "mpi-toolkit-max-nodes"


class ToolkitError(Exception):
    """A failure with a one-line message for the user and the exit code to return."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


def check_id(option: str, value: str) -> str:
    """Check a pool, job or task id against the service's rules before any request."""
    if not value:
        raise ToolkitError(f"{option} is empty; give an id of 1 to {MAX_ID_LENGTH} characters.", EXIT_USAGE)
    if len(value) > MAX_ID_LENGTH:
        raise ToolkitError(f"{option} is {len(value)} characters long; ids have at most {MAX_ID_LENGTH}.", EXIT_USAGE)
    bad = sorted({c for c in value if not _ID_CHARACTERS.match(c)})
    if bad:
        raise ToolkitError(f"{option} {value!r} contains {''.join(bad)!r}; ids use only letters, digits, '-' and '_'.",
                           EXIT_USAGE)
    return value


def redact(text: str) -> str:
    """Hide SAS signatures in text that may hold a URL."""
    return _SAS_SIGNATURE.sub(r"\1REDACTED", text)


def wire_value(value) -> str:
    """An enum from the SDK as its lowercase wire value ('active'), robust to other casings from the service."""
    return str(getattr(value, "value", value) or "").lower()


def error_code(err: Exception) -> Optional[str]:
    """The service's error code (e.g. 'PoolExists') of an azure-core exception, if any."""
    return getattr(getattr(err, "error", None), "code", None)


def load_settings(*variables: str) -> Settings:
    """The settings, checked for the variables a script needs; warns when the env file is readable by others."""
    settings = read_settings()
    require(settings, *variables)
    if settings.env_file and os.stat(settings.env_file).st_mode & (stat.S_IRGRP | stat.S_IROTH):
        print(f"Warning: {settings.env_file} holds secrets and other users can read it: chmod 600 {settings.env_file}",
              file=sys.stderr)
    return settings


def made_by(items, submission_id: str) -> bool:
    """Whether name/value items (metadata, environment settings) carry this run's submission id."""
    return any(item.name == SUBMISSION_MARK and item.value == submission_id for item in items or [])


def mpi_problem(pool) -> Optional[str]:
    """Why a pool cannot run multi-instance (MPI) tasks, or None when it can.

    The service accepts such a task on any pool but never schedules it without
    inter-node communication and one task slot per node.
    """
    if not pool.enable_inter_node_communication:
        return "inter-node communication is off"
    if (pool.task_slots_per_node or 1) != 1:
        return f"it has {pool.task_slots_per_node} task slots per node (MPI tasks need exactly 1)"
    return None


def pool_max_nodes(pool) -> Optional[int]:
    """The most nodes a pool can have: its recorded cap, or its target size when fixed; None when unknown."""
    for item in pool.metadata or []:
        if item.name == MAX_NODES_METADATA and item.value.isdigit():
            return int(item.value)
    if not pool.enable_auto_scale:
        return (pool.target_dedicated_nodes or 0) + (pool.target_low_priority_nodes or 0)
    return None


# Retries are bounded so that a dead endpoint or a service answering 503 to everything
# surfaces in seconds, not after azure-core's defaults (10 tries, backoff up to 120 s).
# Retry-After from the service is honoured. POSTs are retried only where the caller
# can recognise its own resource if the first attempt did reach the service.
CLIENT_OPTIONS = dict(retry_total=4, retry_connect=2, retry_read=2, retry_status=3,
                      retry_backoff_factor=0.5, retry_backoff_max=8, timeout=90,
                      connection_timeout=5, read_timeout=30)
RETRY_POST = {"retry_on_methods": frozenset({"HEAD", "GET", "PUT", "DELETE", "POST"})}


def make_batch_client(settings: Settings):
    """A BatchClient for the configured account, with bounded retries and timeouts."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    logging.getLogger("azure").setLevel(logging.ERROR)  # the SDK logs tracebacks for answers it then raises
    credential = AzureNamedKeyCredential(settings.batch["name"], settings.batch["key"])
    return BatchClient(endpoint=settings.batch["url"], credential=credential, **CLIENT_OPTIONS)


def make_container_client(settings: Settings, permission: str, lifetime: datetime.timedelta):
    """A ContainerClient for the configured blob container, authorised by a SAS (see container_sas_url)."""
    from azure.storage.blob import ContainerClient, ExponentialRetry

    logging.getLogger("azure").setLevel(logging.ERROR)
    # The storage SDK's own default waits 15 s before its first retry.
    retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=3)
    return ContainerClient.from_container_url(container_sas_url(settings, permission, lifetime), retry_policy=retry,
                                              connection_timeout=5, read_timeout=30)


def container_sas_url(settings: Settings, permission: str, lifetime: datetime.timedelta) -> str:
    """The container URL with a SAS: the configured one, or, when AZURE_STORAGE_KEY is set, a new SAS
    granting only `permission` for `lifetime` (least privilege: uploads get create/write, downloads read)."""
    sas = settings.blob_container["sas_token"]
    if settings.storage_key:
        from azure.storage.blob import generate_container_sas

        account, container = container_parts(settings.blob_container["url"])
        now = datetime.datetime.now(datetime.timezone.utc)
        sas = generate_container_sas(account, container, account_key=settings.storage_key, permission=permission,
                                     start=now - SAS_CLOCK_SKEW, expiry=now + lifetime)
    return f"{settings.blob_container['url']}?{sas}"


def check_container_sas(settings: Settings, needs: str, purpose: str) -> None:
    """Refuse a configured SAS that lacks a permission letter of `needs` or has expired (not made here)."""
    if settings.storage_key:
        return
    permissions = sas_permissions(settings)
    missing = [letter for letter in needs if permissions and letter not in permissions]
    if missing:
        raise ToolkitError(f"The container SAS allows '{permissions}' but {purpose} need {SAS_LETTERS[missing[0]]} "
                           f"({missing[0]}): make a SAS with permissions racwl.", EXIT_USAGE)
    expiry = sas_expiry(settings)
    if expiry is not None and expiry <= datetime.datetime.now(datetime.timezone.utc):
        raise ToolkitError(f"The container SAS expired on {expiry:%Y-%m-%d %H:%M} UTC: make a new one "
                           "(az storage container generate-sas ... --expiry DATE).", EXIT_USAGE)


def service_message(err: Exception) -> str:
    """One line describing an error answered by the service."""
    code = error_code(err)
    if code in SERVICE_ADVICE:
        return f"{code}: {SERVICE_ADVICE[code]}"
    message = getattr(getattr(err, "error", None), "message", None) or getattr(err, "message", None) or str(err)
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else type(err).__name__
    return f"{code}: {first_line}" if code else first_line


def run(body: Callable[[], int]) -> int:
    """Run a script's body and turn every expected failure into one line on stderr and an exit code."""
    try:
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    except ImportError as err:
        return _fail(f"The Python package {err.name} is missing: pip install -r requirements.txt", EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("Interrupted.", EXIT_INTERRUPTED)
    try:
        return body()
    except ConfigError as err:
        return _fail(f"Configuration error: {err}", EXIT_USAGE)
    except ToolkitError as err:
        return _fail(str(err), err.exit_code)
    except (ServiceRequestError, ServiceResponseError) as err:
        return _fail(f"Cannot reach the service ({type(err).__name__}): check AZURE_BATCH_ENDPOINT, "
                     f"BLOB_CONTAINER_URL and the network. Detail: {str(err).splitlines()[0] if str(err) else ''}",
                     EXIT_FAILED)
    except HttpResponseError as err:
        if err.status_code is None:  # the connection broke while the answer was being read
            return _fail("The connection to the service broke while reading its answer; run the command again "
                         "(completed downloads are kept).", EXIT_FAILED)
        return _fail(f"The service refused the request: {service_message(err)}", EXIT_FAILED)
    except OSError as err:  # local files: a full disk, a read-only or missing output directory
        advice = "Free some space" if err.errno == errno.ENOSPC else "Choose another --output_dir"
        return _fail(f"Cannot write {err.filename or 'a file'}: {err.strerror or err}. {advice}.", EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail("Interrupted.", EXIT_INTERRUPTED)


def _fail(message: str, exit_code: int) -> int:
    print(f"Error: {redact(message)}", file=sys.stderr)
    return exit_code
