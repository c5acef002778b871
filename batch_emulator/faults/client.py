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


def _call(endpoint: str, method: str, account: str, key: str, body: dict[str, Any] | None = None, suffix: str = "",
          timeout: float = 10) -> dict[str, Any]:
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
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return answer
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())
            detail = f"{error['code']}: {error['message']['value'].splitlines()[0]}"
            detail += "".join(f"; {v['value']}" for v in error.get("values", []))
        except (ValueError, KeyError, TypeError, AttributeError):
            detail = exc.reason
        raise FaultControlError(f"{method} {target} -> {exc.code} {detail}") from None


def add_fault(endpoint: str, account: str = DEFAULT_ACCOUNT_NAME, key: str = DEFAULT_ACCOUNT_KEY,
              **rule: Any) -> dict[str, Any]:
    """add_fault(url, kind="503", method="GET", path="/jobs/j1/taskcounts", count=2) -> the rule, with its id."""
    added: dict[str, Any] = _call(endpoint, "POST", account, key, body=rule)["value"][0]
    return added


def list_faults(endpoint: str, account: str = DEFAULT_ACCOUNT_NAME,
                key: str = DEFAULT_ACCOUNT_KEY) -> list[dict[str, Any]]:
    """Every rule with its counters: matched, fired, active."""
    rules: list[dict[str, Any]] = _call(endpoint, "GET", account, key)["value"]
    return rules


def clear_faults(endpoint: str, account: str = DEFAULT_ACCOUNT_NAME, key: str = DEFAULT_ACCOUNT_KEY,
                 rule_id: int | None = None) -> int:
    """Remove every rule (or one); returns how many were removed."""
    suffix = "" if rule_id is None else f"/{int(rule_id)}"
    removed: int = _call(endpoint, "DELETE", account, key, suffix=suffix)["removed"]
    return removed
