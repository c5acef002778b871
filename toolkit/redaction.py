"""The one redaction function: SAS signatures, account keys and tokens never reach output or logs.

Used by the scripts, the local Batch emulator and the tools alike. It depends on nothing but `re`,
so any layer may import it.
"""

import re
from collections.abc import Iterable

PLACEHOLDER = "REDACTED"

# Each pattern keeps its first group (the name) and hides what follows it.
_PATTERNS = (
    re.compile(r"(\bsig=)[^&\s'\"]+", re.IGNORECASE),  # a SAS signature in a URL or query string
    re.compile(r"(\bAccountKey=)[^;\s'\"]+", re.IGNORECASE),  # a storage connection string
    re.compile(r"(\bSharedKey\s+[^:\s]+:)[^\s'\"]+", re.IGNORECASE),  # an Authorization header's signature
    # An OAuth access token: a JWT (header.claims.signature, the signature possibly empty) or a long opaque
    # string; not any word after "Bearer", which would blank prose such as "Bearer token authentication".
    re.compile(r"(\bBearer\s+)(?:[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*|[A-Za-z0-9._~+/-]{20,}=*)",
               re.IGNORECASE),
    re.compile(r"(\"access_token\"\s*:\s*\")[^\"]+", re.IGNORECASE),  # a token endpoint's answer
)


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """`text` as a string with SAS signatures, keys and tokens replaced by REDACTED.

    `secrets` are literal values (an account key, say) hidden wherever they appear, whatever the case.
    """
    result = str(text)
    for pattern in _PATTERNS:
        result = pattern.sub(rf"\g<1>{PLACEHOLDER}", result)
    for secret in secrets:
        if secret and len(secret) >= 8:  # too short a value would blank ordinary words
            result = re.sub(re.escape(secret), PLACEHOLDER, result, flags=re.IGNORECASE)
    return result
