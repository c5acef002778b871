"""Client side of fault injection, for tests and scripts: drive a running emulator's control endpoint.

add_fault, list_faults and clear_faults sign their requests with SharedKey (the development
account by default), as the control endpoint requires.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from email.utils import formatdate
from typing import Any

from .. import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from ..service import sharedkey
from .rules import CONTROL_PATH


class FaultControlError(RuntimeError):
    pass


def _call(endpoint, method, account, key, body=None, suffix="", timeout=10):
    target = CONTROL_PATH + suffix
    payload = b"" if body is None else json.dumps(body).encode()
    headers = {"ocp-date": formatdate(usegmt=True)}
    if method != "GET":
        headers["content-length"] = str(len(payload))
    if body is not None:
        headers["content-type"] = "application/json"
    signature = sharedkey.sign(sharedkey.string_to_sign(method, target, headers, account), key)
    headers["authorization"] = f"SharedKey {account}:{signature}"
    request = urllib.request.Request(endpoint.rstrip("/") + target, data=payload or None,
                                     method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())
            detail = f"{error['code']}: {error['message']['value'].splitlines()[0]}"
            detail += "".join(f"; {v['value']}" for v in error.get("values", []))
        except (ValueError, KeyError, TypeError, AttributeError):
            detail = exc.reason
        raise FaultControlError(f"{method} {target} -> {exc.code} {detail}") from None


def add_fault(endpoint: str, account: str = DEFAULT_ACCOUNT_NAME, key: str = DEFAULT_ACCOUNT_KEY, **rule: Any) -> dict:
    """add_fault(url, kind="503", method="GET", path="/jobs/j1/taskcounts", count=2) -> the rule, with its id."""
    return _call(endpoint, "POST", account, key, body=rule)["value"][0]


def list_faults(endpoint: str, account: str = DEFAULT_ACCOUNT_NAME, key: str = DEFAULT_ACCOUNT_KEY) -> list[dict]:
    """Every rule with its counters: matched, fired, active."""
    return _call(endpoint, "GET", account, key)["value"]


def clear_faults(endpoint: str, account: str = DEFAULT_ACCOUNT_NAME, key: str = DEFAULT_ACCOUNT_KEY,
                 rule_id: int | None = None) -> int:
    """Remove every rule (or one); returns how many were removed."""
    suffix = "" if rule_id is None else f"/{int(rule_id)}"
    return _call(endpoint, "DELETE", account, key, suffix=suffix)["removed"]
