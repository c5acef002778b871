"""The emulator's managed-identity endpoint: Entra ID tokens for Batch and storage, without Azure.

    GET /_emulator/identity/token?api-version=2019-08-01&resource=RESOURCE
    X-IDENTITY-HEADER: <the emulator's --identity-header>
    -> 200 {"access_token", "expires_on": "<epoch seconds>", "resource", "token_type": "Bearer", "client_id"}

This is the App Service managed-identity protocol that azure-identity's ManagedIdentityCredential
(and so DefaultAzureCredential) speaks when IDENTITY_ENDPOINT and IDENTITY_HEADER are set, so the
scripts sign in through the real credential code. The token's audience is RESOURCE: Batch accepts
only https://batch.core.windows.net/, Azurite (--oauth basic) https://storage.azure.com.
The endpoint itself needs no Authorization; a wrong or missing X-IDENTITY-HEADER gets 401,
a missing resource or another api-version 400 (the bodies App Service sends).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from ..service.tokens import DEV_APP_ID, TokenSettings, issue_token
from .http import Request, Response

IDENTITY_PATH = "/_emulator/identity/token"
API_VERSION = "2019-08-01"


def is_identity(raw_target: str) -> bool:
    return urlsplit(raw_target).path.rstrip("/") == IDENTITY_PATH


def answer(settings: TokenSettings | None, req: Request) -> Response:
    """Serve a token request (GET only); `settings` None means the emulator issues no tokens."""
    if settings is None or not settings.allowed_auth.allows_token():
        return Response(404, {"statusCode": 404, "message": "This account does not accept Microsoft Entra ID "
                                                            "tokens (--allowed-auth sharedkey)."})
    if req.method != "GET":
        return Response(405, {"statusCode": 405, "message": "Use GET."})
    given = req.headers.get("x-identity-header", "")
    if not hmac.compare_digest(given.encode(), settings.identity_header.encode()):
        return Response(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong."})
    resource = req.query.get("resource", "")
    if req.query.get("api-version") != API_VERSION or not resource:
        return Response(400, {"statusCode": 400,
                              "message": f"api-version={API_VERSION} and resource are required."})
    token, expires_on = issue_token(settings.secret, resource, settings.token_lifetime)
    return Response(200, {"access_token": token, "expires_on": str(expires_on), "resource": resource,
                          "token_type": "Bearer", "client_id": DEV_APP_ID})
