"""SharedKey signing: the string to sign and its HMAC, computed exactly as azure-batch 15.x signs.

The SDK's string-to-sign differs from the REST documentation: query names are
NOT lowercased, only the first value of a repeated parameter counts, and
values are URL-decoded with parse_qs. The path stays percent-encoded as sent.
We also accept the documented variant (lowercased names, comma-joined values)
so that other clients following the docs are not refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

SIGNED_HEADERS = (
    "content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
    "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range",
)


def string_to_sign(method: str, raw_target: str, headers: dict[str, str], account_name: str,
                   documented_variant: bool = False) -> str:
    """``raw_target`` is the request path and query as received; ``headers`` maps lowercased names to values."""
    method = method.upper()
    parts = urlsplit(raw_target)
    values = []
    for name in SIGNED_HEADERS:
        value = headers.get(name, "")
        if name == "content-length" and method not in ("GET", "HEAD") and not value:
            value = "0"
        values.append(value)
    text = method + "\n" + "\n".join(values) + "\n"
    for name in sorted(n for n in headers if "ocp-" in n and headers[n]):
        text += f"{name}:{headers[name]}\n"
    text += f"/{account_name}{parts.path}"
    query = parse_qs(parts.query)
    if documented_variant:
        merged: dict[str, list[str]] = {}
        for name, vals in query.items():
            merged.setdefault(name.lower(), []).extend(vals)
        for name in sorted(merged):
            text += f"\n{name}:{','.join(merged[name])}"
    else:
        for name in sorted(query):
            if query[name][0]:
                text += f"\n{name}:{query[name][0]}"
    return text


def sign(text: str, account_key: str) -> str:
    key = base64.b64decode(account_key)
    return base64.b64encode(hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()).decode()
