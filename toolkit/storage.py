"""The blob container for the scripts: its client, and the SAS that authorises it (made here from
AZURE_STORAGE_KEY with least privilege, or checked when configured).

The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING

from config_resources import Storage, container_parts, sas_token_expiry, sas_token_permissions
from toolkit.cli import EXIT_USAGE, ToolkitError

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

SAS_LETTERS = {"r": "read", "a": "add", "c": "create", "w": "write", "d": "delete", "l": "list"}
# A SAS made here starts a little in the past, so a node or service with a slightly late clock accepts it.
SAS_CLOCK_SKEW = datetime.timedelta(minutes=5)


def make_container_client(storage: Storage, permission: str, lifetime: datetime.timedelta) -> ContainerClient:
    """A ContainerClient for the configured blob container, authorised by a SAS (see container_sas_url)."""
    from azure.storage.blob import ContainerClient, ExponentialRetry

    logging.getLogger("azure").setLevel(logging.ERROR)
    # The storage SDK's own default waits 15 s before its first retry.
    retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=3)
    return ContainerClient.from_container_url(container_sas_url(storage, permission, lifetime), retry_policy=retry,
                                              connection_timeout=5, read_timeout=30)


def container_sas_url(storage: Storage, permission: str, lifetime: datetime.timedelta) -> str:
    """The container URL with a SAS: the configured one, or, when AZURE_STORAGE_KEY is set, a new SAS
    granting only `permission` for `lifetime` (least privilege: uploads get create/write, downloads read)."""
    sas = storage.sas_token
    if storage.key:
        from azure.storage.blob import generate_container_sas

        parts = container_parts(storage.container_url)
        if parts is None:  # storage() has checked the URL: cannot happen
            raise ToolkitError(f"{storage.container_url} is not a container URL.", EXIT_USAGE)
        account, container = parts
        now = datetime.datetime.now(datetime.timezone.utc)
        sas = generate_container_sas(account, container, account_key=storage.key, permission=permission,
                                     start=now - SAS_CLOCK_SKEW, expiry=now + lifetime)
    return f"{storage.container_url}?{sas}"


def check_container_sas(storage: Storage, needs: str, purpose: str) -> None:
    """Refuse a configured SAS that lacks a permission letter of `needs` or has expired (not made here)."""
    if storage.key:
        return
    permissions = sas_token_permissions(storage.sas_token)
    missing = [letter for letter in needs if permissions and letter not in permissions]
    if missing:
        raise ToolkitError(f"The container SAS allows '{permissions}' but {purpose} need {SAS_LETTERS[missing[0]]} "
                           f"({missing[0]}): make a SAS with permissions racwl.", EXIT_USAGE)
    expiry = sas_token_expiry(storage.sas_token)
    if expiry is not None and expiry <= datetime.datetime.now(datetime.timezone.utc):
        raise ToolkitError(f"The container SAS expired on {expiry:%Y-%m-%d %H:%M} UTC: make a new one "
                           "(az storage container generate-sas ... --expiry DATE).", EXIT_USAGE)


# How long the SAS made from AZURE_STORAGE_KEY for check_container_exists lasts.
CHECK_SAS_LIFETIME = datetime.timedelta(minutes=10)


def check_container_exists(storage: Storage) -> None:
    """Refuse a blob container that does not exist (the task's uploads would fail with
    FileUploadContainerNotFound once it has run).

    It lists at most one blob: a container-level request that a racwl SAS allows (Get Container
    Properties is not open to a container SAS) and that the per-use SAS made from AZURE_STORAGE_KEY
    is made for. A SAS without list permission cannot tell: the script says so and goes on.
    """
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    permissions = sas_token_permissions(storage.sas_token)
    if not storage.key and permissions and "l" not in permissions:
        print(f"Note: the container SAS allows '{permissions}', not list (l): cannot check that the container "
              "exists.")
        return
    client = make_container_client(storage, "l", CHECK_SAS_LIFETIME)
    try:
        with client:
            next(iter(client.list_blobs(results_per_page=1).by_page()), None)
    except ResourceNotFoundError:
        parts = container_parts(storage.container_url)
        account, container = parts if parts else ("ACCOUNT", "CONTAINER")
        raise ToolkitError(f"The blob container {storage.container_url} does not exist: the task's outputs could "
                           f"not be uploaded. Create it (az storage container create --name {container} "
                           f"--account-name {account}) or fix BLOB_CONTAINER_URL.", EXIT_USAGE) from None
    except HttpResponseError as err:
        if err.status_code != 403:
            raise
        print("Note: the storage service did not let this SAS list the container: cannot check that it exists.")
