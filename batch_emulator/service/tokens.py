"""Microsoft Entra ID access tokens the emulator issues itself and accepts on Batch requests.

A token is a JWT signed with HMAC-SHA256 by a secret derived from the account key (never the key
itself). Its claims are shaped like an Entra v1 managed-identity token: aud, iss
(https://sts.windows.net/<tid>/), iat, nbf, exp, oid, sub, tid, appid, idtyp, ver, and a random
uti so that every token differs. That shape also passes Azurite's `--oauth basic` check (issuer
prefix, audience https://storage.azure.com, oid and tid for user delegation keys; Azurite does not
check signatures), so one issuer serves Batch and storage.

Verification order: missing, malformed, signature (alg must be HS256: no alg=none, no algorithm
swap), lifetime, audience. A refused token gets the service's 401 AuthenticationFailed with an
AuthenticationErrorDetail, and a `WWW-Authenticate: Bearer ... error="invalid_token"` challenge:
never "insufficient_claims", so azure-core hands the 401 back instead of retrying.
Nothing here puts a token into an error or a log.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterable
from enum import Enum
from typing import Any

from .errors import BatchServiceError, service_error

# Fixed, obviously fake development identities (stable, so user delegation keys are reproducible).
DEV_TENANT_ID = "00000000-0000-0000-0000-00000000e0e0"
DEV_OBJECT_ID = "00000000-0000-0000-0000-0000000000a1"
DEV_APP_ID = "00000000-0000-0000-0000-0000000000b2"
# What the real service accepts as `aud`: exactly this, with the trailing slash. azure-batch asks for
# the scope https://batch.core.windows.net//.default, which gives this resource.
BATCH_AUDIENCES = ("https://batch.core.windows.net/",)
DEFAULT_TOKEN_LIFETIME = 3600.0

_HEADER = {"alg": "HS256", "typ": "JWT"}


class AllowedAuth(str, Enum):
    """Which credentials the emulated account accepts (its allowedAuthenticationModes)."""
    SHAREDKEY = "sharedkey"
    AAD = "aad"
    BOTH = "both"

    def allows_key(self) -> bool:
        return self is not AllowedAuth.AAD

    def allows_token(self) -> bool:
        return self is not AllowedAuth.SHAREDKEY


@dataclasses.dataclass(frozen=True)
class TokenSettings:
    """What the emulator's Entra ID side needs: the accepted schemes, the token secret and lifetime,
    and the value the identity endpoint expects in X-IDENTITY-HEADER."""
    allowed_auth: AllowedAuth
    secret: bytes = dataclasses.field(repr=False)
    identity_header: str = dataclasses.field(repr=False)
    token_lifetime: float = DEFAULT_TOKEN_LIFETIME


def derive_secret(account_key_b64: str) -> bytes:
    """The token-signing key: derived from the account key, so tokens of another emulator never pass."""
    return hmac.new(base64.b64decode(account_key_b64), b"batch-emulator-token-v1", hashlib.sha256).digest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(secret: bytes, audience: str, lifetime: float, now: float | None = None) -> tuple[str, int]:
    """A signed token for `audience`; returns (token, expires_on in epoch seconds)."""
    issued = int(time.time() if now is None else now)
    expires_on = int(issued + lifetime)
    claims = {"aud": audience, "iss": f"https://sts.windows.net/{DEV_TENANT_ID}/",
              "iat": issued, "nbf": issued, "exp": expires_on,
              "oid": DEV_OBJECT_ID, "sub": DEV_OBJECT_ID, "tid": DEV_TENANT_ID,
              "appid": DEV_APP_ID, "idtyp": "app", "ver": "1.0", "uti": uuid.uuid4().hex}
    signing_input = (_b64url(json.dumps(_HEADER, separators=(",", ":")).encode()) + "."
                     + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}", expires_on


@dataclasses.dataclass(frozen=True)
class Verification:
    reason: str = ""        # "" when accepted; else missing, malformed, tampered, expired, not_yet_valid,
    audience: str = ""      # wrong_audience. The token's aud, for the wrong-audience detail (not secret).
    expires_on: int = 0


def verify_token(secret: bytes, authorization: str | None, accepted_audiences: Iterable[str] = BATCH_AUDIENCES,
                 now: float | None = None) -> Verification:
    """Check an Authorization header value "Bearer <jwt>". The signature is checked before any claim."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Verification("missing")
    parts = token.strip().split(".")
    if len(parts) != 3:
        return Verification("malformed")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        signature = _b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError):
        return Verification("malformed")
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return Verification("tampered")
    expected = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        return Verification("tampered")
    try:
        claims: dict[str, Any] = json.loads(_b64url_decode(parts[1]))
        expires_on, not_before = int(claims["exp"]), int(claims.get("nbf", 0))
    except (ValueError, KeyError, TypeError, AttributeError):
        return Verification("malformed")
    current = time.time() if now is None else now
    audience = str(claims.get("aud", ""))
    if current >= expires_on:
        return Verification("expired", audience, expires_on)
    if current < not_before:
        return Verification("not_yet_valid", audience, expires_on)
    if audience not in tuple(accepted_audiences):
        return Verification("wrong_audience", audience, expires_on)
    return Verification("", audience, expires_on)


# AuthenticationErrorDetail per refusal. Verified wording of the real service: wrong_audience
# (Azure/azure-sdk-for-net#8026) and sharedkey_not_allowed (Azure/BatchExplorer#239). The others
# were not found for Batch and are the emulator's, modelled on other Entra-protected services.
DETAILS = {
    "wrong_audience": "The access token has been obtained from wrong audience or resource '{audience}'. It should "
                      "exactly match (including forward slash) with one of the allowed audiences "
                      "'https://batch.core.windows.net/'",
    "sharedkey_not_allowed": "The specified type of authentication SharedKey is not allowed for this account.",
    "aad_not_allowed": "The specified type of authentication AAD is not allowed for this account.",
    "expired": "The access token expiry UTC time '{expiry}' is earlier than current UTC time '{now}'.",
    "not_yet_valid": "The access token is not yet valid.",
    "tampered": "The access token signature is invalid.",
    "malformed": "The access token is malformed.",
    "missing": "The authorization header is missing access token.",
}


def _utc(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def refusal(reason: str, verification: Verification | None = None) -> BatchServiceError:
    """The service's 401 AuthenticationFailed for `reason` (a key of DETAILS), with the Bearer challenge."""
    detail = DETAILS[reason].format(audience=verification.audience if verification else "",
                                    expiry=_utc(verification.expires_on if verification else 0), now=_utc(time.time()))
    error = service_error(401, "AuthenticationFailed", AuthenticationErrorDetail=detail)
    error.headers["WWW-Authenticate"] = (
        f'Bearer authorization_uri="https://login.microsoftonline.com/{DEV_TENANT_ID}/oauth2/authorize", '
        f'error="invalid_token", error_description="{reason}"')
    return error


def check_bearer(settings: TokenSettings, authorization: str) -> None:
    """Raise the service's 401 unless `authorization` carries a valid Batch token the account accepts."""
    if not settings.allowed_auth.allows_token():
        raise refusal("aad_not_allowed")
    verification = verify_token(settings.secret, authorization)
    if verification.reason:
        raise refusal(verification.reason, verification)
