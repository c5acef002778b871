"""The blob container for the scripts: its client, and the SAS that authorises it (made here with
least privilege from AZURE_STORAGE_KEY, or, with neither a SAS nor a key, from a user delegation key
obtained with the Microsoft Entra ID sign-in; or checked when configured).

The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING

from toolkit.checked import Storage
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.values import container_parts, sas_token_expiry, sas_token_permissions

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient, UserDelegationKey

SAS_LETTERS = {"r": "read", "a": "add", "c": "create", "w": "write", "d": "delete", "l": "list"}
# A SAS made here starts a little in the past, so a node or service with a slightly late clock accepts it.
SAS_CLOCK_SKEW = datetime.timedelta(minutes=5)
# Blob requests give up within about the time a Batch request does (toolkit.batch's retry options).
BLOB_RETRIES = 2
BLOB_CONNECT_SECONDS = 5
BLOB_READ_SECONDS = 30


def make_container_client(storage: Storage, permission: str, lifetime: datetime.timedelta) -> ContainerClient:
    """A ContainerClient for the configured blob container, authorised by a SAS (see container_sas_url),
    that gives up within about the time a Batch request does (the storage SDK's own default waits 15 s
    before its first retry)."""
    from azure.storage.blob import ContainerClient, ExponentialRetry

    logging.getLogger("azure").setLevel(logging.ERROR)
    retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=BLOB_RETRIES, random_jitter_range=1)
    return ContainerClient.from_container_url(container_sas_url(storage, permission, lifetime), retry_policy=retry,
                                              connection_timeout=BLOB_CONNECT_SECONDS, read_timeout=BLOB_READ_SECONDS)


def container_sas_url(storage: Storage, permission: str, lifetime: datetime.timedelta) -> str:
    """The container URL with a SAS: the configured one, or a new SAS granting only `permission` for
    `lifetime` (least privilege: uploads get create/write, downloads read), signed with AZURE_STORAGE_KEY
    when set, else with a user delegation key of the same lifetime (Microsoft Entra ID)."""
    sas = storage.sas_token
    if storage.key or not sas:
        from azure.storage.blob import generate_container_sas

        parts = container_parts(storage.container_url)
        if parts is None:  # storage() has checked the URL: cannot happen
            raise ToolkitError(f"{storage.container_url} is not a container URL.", ExitStatus.USAGE)
        account, container = parts
        now = datetime.datetime.now(datetime.timezone.utc)
        start, expiry = now - SAS_CLOCK_SKEW, now + lifetime
        if storage.key:
            sas = generate_container_sas(account, container, account_key=storage.key, permission=permission,
                                         start=start, expiry=expiry)
        else:
            sas = generate_container_sas(account, container, permission=permission, start=start, expiry=expiry,
                                         user_delegation_key=user_delegation_key(storage, start, expiry))
    return f"{storage.container_url}?{sas}"


def account_url(container_url: str) -> str:
    """The blob service URL of a container URL (the URL without its last path segment)."""
    return container_url.rstrip("/").rsplit("/", 1)[0]


def user_delegation_key(storage: Storage, start: datetime.datetime, expiry: datetime.datetime) -> UserDelegationKey:
    """A user delegation key valid from `start` to `expiry`, asked for with the Entra ID sign-in
    (the identity needs a role that allows it, e.g. Storage Blob Data Contributor)."""
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import BlobServiceClient, ExponentialRetry

    from toolkit.credentials import DELEGATION_REFUSED, STORAGE_SCOPE, entra_credential, require_https

    require_https(storage.container_url, "BLOB_CONTAINER_URL", "SAS and no AZURE_STORAGE_KEY",
                  "AZURE_STORAGE_KEY (for Azurite, its development key) or put a SAS in BLOB_CONTAINER_URL")
    logging.getLogger("azure").setLevel(logging.ERROR)
    print(f"Signing in to storage [{account_url(storage.container_url)}] with Microsoft Entra ID "
          "(user delegation SAS)...")
    credential = entra_credential()
    # Signed in here, outside the client: the storage SDK's retry policy retries any error, a sign-in
    # that found no credential included (for over a minute with its default backoff).
    credential.get_token(STORAGE_SCOPE)
    retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=3)
    service = BlobServiceClient(account_url(storage.container_url), credential=credential, retry_policy=retry,
                                connection_timeout=5, read_timeout=30)
    with service:
        try:
            return service.get_user_delegation_key(start, expiry)
        except HttpResponseError as err:  # without a response, the sign-in itself failed: cli.run() says so
            if err.response is not None and err.status_code in (401, 403):
                code = getattr(err, "error_code", None) or err.status_code  # storage errors carry error_code
                raise ToolkitError(DELEGATION_REFUSED.format(code=code)) from None
            raise


def check_container_sas(storage: Storage, needs: str, purpose: str) -> None:
    """Refuse a configured SAS that lacks a permission letter of `needs` or has expired (not made here)."""
    if storage.key or not storage.sas_token:
        return
    permissions = sas_token_permissions(storage.sas_token)
    missing = [letter for letter in needs if permissions and letter not in permissions]
    if missing:
        raise ToolkitError(f"The container SAS allows '{permissions}' but {purpose} need {SAS_LETTERS[missing[0]]} "
                           f"({missing[0]}): make a SAS with permissions racwl.", ExitStatus.USAGE)
    expiry = sas_token_expiry(storage.sas_token)
    if expiry is not None and expiry <= datetime.datetime.now(datetime.timezone.utc):
        raise ToolkitError(f"The container SAS expired on {expiry:%Y-%m-%d %H:%M} UTC: make a new one "
                           "(az storage container generate-sas ... --expiry DATE).", ExitStatus.USAGE)


# How long the SAS made from AZURE_STORAGE_KEY for check_container_exists lasts.
CHECK_SAS_LIFETIME = datetime.timedelta(minutes=10)


# Storage error codes (403) that mean the SAS itself was refused: its signature does not match (Azure says
# AuthenticationFailed; Azurite says AuthorizationFailure), so the task's uploads would be refused too.
SAS_REJECTED = frozenset({"AuthenticationFailed", "AuthorizationFailure"})


def check_container_exists(storage: Storage) -> None:
    """Refuse a blob container that does not exist, or a credential the storage service refuses (the
    task's uploads would fail with FileUploadContainerNotFound or FileUploadAccessDenied once it has run).

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
        account, container = _account_and_container(storage)
        raise ToolkitError(f"The blob container {storage.container_url} does not exist: the task's outputs could "
                           f"not be uploaded. Create it (az storage container create --name {container} "
                           f"--account-name {account}) or fix BLOB_CONTAINER_URL.", ExitStatus.USAGE) from None
    except HttpResponseError as err:
        if err.status_code != 403:
            raise
        code = getattr(err, "error_code", None)  # set by azure-storage-blob from the x-ms-error-code header
        refused = credential_refused(storage, code)
        if refused:
            raise ToolkitError(refused, ExitStatus.USAGE) from None
        print(f"Note: the storage service did not let this SAS list the container ({code or 403}): cannot check "
              "that it exists.")


def credential_refused(storage: Storage, code: str | None) -> str | None:
    """The one line naming the storage credential the service refused (403 `code` to a list request), or
    None when the refusal says only that listing is not allowed (the uploads may still work)."""
    account, _ = _account_and_container(storage)
    shown = code or "403"
    if storage.key:  # the SAS was made here and grants list: only the key can be wrong
        return (f"The storage service refused the SAS signed with AZURE_STORAGE_KEY ({shown}): it is not a key of "
                f"storage account {account}, so the task's outputs could not be uploaded. Set it to one "
                f"(az storage account keys list --account-name {account}), or leave it empty and give a SAS.")
    if code not in SAS_REJECTED:
        return None
    if storage.sas_token:
        return (f"The storage service refused the container SAS in BLOB_CONTAINER_URL or AZURE_STORAGE_SAS_TOKEN "
                f"({shown}): its signature does not match (mistyped, cut short, or made for another account, "
                "container or key), so the task's outputs could not be uploaded. Make a new one (az storage "
                "container generate-sas ... --permissions racwl --expiry DATE) or set AZURE_STORAGE_KEY.")
    return (f"The storage service refused the user delegation SAS made with the Microsoft Entra ID sign-in "
            f"({shown}), so the task's outputs could not be uploaded. Put a SAS in BLOB_CONTAINER_URL, or set "
            "AZURE_STORAGE_KEY.")


def _account_and_container(storage: Storage) -> tuple[str, str]:
    parts = container_parts(storage.container_url)
    return parts if parts else ("ACCOUNT", "CONTAINER")
