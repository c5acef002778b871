"""SharedKey authentication of each request: the service's 403 AuthenticationFailed unless it is signed with the key.

The string to sign and the signature are computed in service/sharedkey.py (shared with the
fault-control client); this module checks a request's Authorization header against them.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from ..service.errors import BatchServiceError, service_error
from ..service.sharedkey import sign, string_to_sign
from ..service.tokens import TokenSettings, check_bearer, refusal

__all__ = ["sign", "string_to_sign", "verify_request"]


def _failed(detail: str) -> BatchServiceError:
    return service_error(403, "AuthenticationFailed", AuthenticationErrorDetail=detail)


def verify_request(method: str, raw_target: str, headers: dict[str, str], account_name: str, account_key: str,
                   tokens: TokenSettings | None = None) -> None:
    """Raise the service's 403 AuthenticationFailed unless the request is signed with our key, or,
    with `tokens`, its 401 unless it carries a token the account accepts (service/tokens.py).

    The error tells which string the server signed (useful to debug a client), never the
    expected signature or the key.
    """
    auth = headers.get("authorization", "")
    if tokens is not None:
        if auth.partition(" ")[0].lower() == "bearer" or (not auth and not tokens.allowed_auth.allows_key()):
            check_bearer(tokens, auth)
            return
        if not tokens.allowed_auth.allows_key():  # refused by scheme, before any signature check
            raise refusal("sharedkey_not_allowed")
    if not auth:
        raise _failed("Server failed to authenticate the request. The Authorization header is missing.")
    scheme, _, credential = auth.partition(" ")
    name, _, signature = credential.strip().rpartition(":")
    if scheme != "SharedKey" or not name or not signature:
        raise _failed("The Authorization header must have the form 'SharedKey <account>:<signature>'.")
    if name != account_name:
        raise _failed(f"The account name '{name}' in the Authorization header is not the account of this server.")
    try:
        base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise _failed("The MAC signature found in the HTTP request is not valid base64.") from None
    text = string_to_sign(method, raw_target, headers, account_name)
    for candidate in (text, string_to_sign(method, raw_target, headers, account_name, documented_variant=True)):
        if hmac.compare_digest(sign(candidate, account_key), signature):
            return
    shown = text.replace("\n", "\\n")
    raise _failed(
        f"The MAC signature found in the HTTP request '{signature}' is not the same as any computed "
        f"signature. Server used following string to sign: '{shown}'."
    )
