"""Signing in: the Batch account's shared key when AZURE_BATCH_ACCESS_KEY is set, else Microsoft Entra ID.

Entra ID goes through azure-identity's DefaultAzureCredential, so whatever it finds works: a service
principal in the environment (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), workload
identity, a managed identity, or a developer sign-in such as `az login`. AZURE_TOKEN_CREDENTIALS
narrows that chain (azure-identity's own variable). One credential per process serves Batch and
storage (user delegation keys, toolkit/storage.py); it caches and renews its tokens itself.

azure-identity is imported only on that path (inside functions), so `--help` and key-based runs
never load it. Nothing here prints a token or a key.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TextIO

from toolkit.checked import BatchAccess

if TYPE_CHECKING:
    from azure.core.credentials import AzureNamedKeyCredential, TokenCredential

# The one-line messages toolkit/cli.py's run() prints for sign-in failures (no token, key or signature).
SIGN_IN_HOW = ("run `az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service "
               "principal), or run where a managed identity is assigned")
NO_CREDENTIAL = (f"No Microsoft Entra ID sign-in worked (DefaultAzureCredential): {SIGN_IN_HOW}; "
                 "or set AZURE_BATCH_ACCESS_KEY to use the Batch account's key instead.")
BAD_TOKEN_CREDENTIALS = ("AZURE_TOKEN_CREDENTIALS has a value azure-identity does not know: unset it, or use dev, "
                         "prod or one credential's name, e.g. AzureCliCredential or ManagedIdentityCredential.")
KEYS_REFUSED = ("This Batch account does not accept its shared key (local authentication is disabled): unset "
                f"AZURE_BATCH_ACCESS_KEY and sign in with Microsoft Entra ID: {SIGN_IN_HOW}.")
TOKEN_REJECTED = ("Batch rejected the Microsoft Entra ID token (AuthenticationFailed{detail}): the signed-in "
                  "identity needs a role on the Batch account (Access control (IAM), e.g. Azure Batch Data "
                  "Contributor) in the account's tenant (`az login --tenant TENANT`); or, if the account accepts "
                  "only shared keys, set AZURE_BATCH_ACCESS_KEY.")
ENTRA_NEEDS_HTTPS = ("{variable} is {url}: with no {without} the scripts sign in with Microsoft Entra ID, which "
                     "needs an https:// endpoint. Set {fix}, or use https://.")
BATCH_KEY_FIX = "AZURE_BATCH_ACCESS_KEY (for the local emulator, its development key)"
DELEGATION_REFUSED = ("The storage account refused a user delegation key ({code}): the signed-in identity needs "
                      "'Storage Blob Data Contributor' on the storage account or container; or put a SAS in "
                      "BLOB_CONTAINER_URL, or set AZURE_STORAGE_KEY.")

# The storage SDK's default scope for Entra ID tokens (Batch's, https://batch.core.windows.net//.default,
# is azure-batch's default: the scripts pass none).
STORAGE_SCOPE = "https://storage.azure.com/.default"

_credential: TokenCredential | None = None


def entra_credential() -> TokenCredential:
    """This process's DefaultAzureCredential (made on first use; raises SignInConfigError for a bad
    AZURE_TOKEN_CREDENTIALS)."""
    global _credential
    if _credential is None:
        # The chain logs a multi-line WARNING for each credential it skips; the failure itself is raised.
        logging.getLogger("azure.identity").setLevel(logging.CRITICAL)
        from azure.identity import DefaultAzureCredential

        try:
            _credential = DefaultAzureCredential()
        except ValueError:  # raised only for AZURE_TOKEN_CREDENTIALS, when the chain is built
            raise SignInConfigError(BAD_TOKEN_CREDENTIALS) from None
    return _credential


class SignInConfigError(Exception):
    """The sign-in settings are unusable (found before any request); the message is one line."""


def require_https(url: str, variable: str, without: str, fix: str) -> None:
    """Refuse, before any request, to sign in with Entra ID to a plain http:// URL: azure-core refuses to
    send a token there only at the first request, with an error that reads like a network fault."""
    if not url.lower().startswith("https://"):
        raise SignInConfigError(ENTRA_NEEDS_HTTPS.format(variable=variable, url=url, without=without, fix=fix))


def batch_credential(access: BatchAccess, announce: TextIO) -> AzureNamedKeyCredential | TokenCredential:
    """The Batch account's shared key when configured, else Entra ID; prints which one to `announce`
    (never the secret)."""
    if access.key:
        from azure.core.credentials import AzureNamedKeyCredential

        print(f"Signing in to Batch account [{access.account}] with its shared key (AZURE_BATCH_ACCESS_KEY)...",
              file=announce, flush=True)
        return AzureNamedKeyCredential(access.account, access.key)
    require_https(access.endpoint, "AZURE_BATCH_ENDPOINT", "AZURE_BATCH_ACCESS_KEY", BATCH_KEY_FIX)
    print(f"Signing in to Batch account [{access.account}] with Microsoft Entra ID (DefaultAzureCredential)...",
          file=announce, flush=True)
    return entra_credential()
