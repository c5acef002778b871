"""Fault injection rules: which request gets a fault, and which one. Pure and thread-safe.

A rule says what to do (``kind``) to which requests (``method``, ``path``) and how often
(``rate``, ``seed``, ``skip``, ``count``):

    kind         429 / 503  the service's throttling / busy error, with Retry-After (default 1 s)
                 500        InternalError (no Retry-After unless given)
                 409        OperationInvalidForCurrentState (e.g. with code=PoolQuotaReached)
                 400        InvalidRequestBody (e.g. with code=AutoScalingFormulaSyntaxError)
                 delay      sleep ``delay`` seconds, then answer normally
                 close      send the response head and half the body (half the status line
                            when there is no body), then reset the connection
                 drop       read the request, reset the connection without answering
    when         before     the request is not applied (default)
                 after      the emulator applies it first: the fault hides a change that
                            happened (a create whose 201 never arrives)
    method       GET, POST, ... or omitted: any method
    path         omitted: any path; "/jobs/*/taskcounts": the whole path, "*" one segment,
                 "**" any number of them, so "/jobs/**" is /jobs and everything below it;
                 "^/jobs/j[12]/": a regular expression matched at the start of the path.
                 The path is URL-decoded, without the query, compared case-insensitively.
    skip         let the first ``skip`` matching requests through untouched (default 0)
    rate, seed   of the matching requests, a share ``rate`` (0 < rate <= 1, default 1) gets
                 the fault, drawn from random.Random(seed): each matching request after
                 ``skip`` draws one number and gets the fault when it is below ``rate``
    count        at most ``count`` faults, then the rule is spent (default: no limit)
    code         for 429/503/500/409/400: the error code to answer with instead of the kind's
                 own (e.g. 503 with code=TooManyEnableAutoScaleRequests)

Rules are tried in the order they were added; the first that fires wins. The control
endpoint (CONTROL_PATH) never gets a fault.

The emulator takes rules from ``--fault SPEC`` (``parse_spec``) and from its control
endpoint (``control``); tests drive the endpoint with ``add_fault``, ``list_faults`` and
``clear_faults`` (client.py), which sign their requests with the account key like any Batch request.
"""

from __future__ import annotations

import json
import random
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from ..service.errors import BatchServiceError, service_error

T = TypeVar("T")
CONTROL_PATH = "/_emulator/faults"
KINDS = ("429", "503", "500", "409", "400", "delay", "close", "drop")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# 503 ServerBusy is documented for Batch. The service's public error list has no 429 code;
# "TooManyRequests" is the name the newer Batch SDKs give one (a best guess, like ARM's).
ERRORS = {
    "429": (429, "TooManyRequests", "The request was throttled: too many requests. Retry after the "
                                    "number of seconds in the Retry-After header."),
    "503": (503, "ServerBusy", "The server is currently unable to receive requests. Please retry your request."),
    "500": (500, "InternalError", None),
    "409": (409, "OperationInvalidForCurrentState", None),
    "400": (400, "InvalidRequestBody", None),
}
DEFAULT_RETRY_AFTER = {"429": 1, "503": 1, "500": None, "409": None, "400": None}


class FaultError(ValueError):
    """A rule that cannot be understood; the message names the field."""


@dataclass
class FaultRule:
    kind: str
    method: str | None = None
    path: str | None = None
    when: str = "before"
    count: int | None = None
    skip: int = 0
    rate: float = 1.0
    seed: int | None = None
    retry_after: float | None = None
    delay: float = 1.0
    code: str | None = None     # overrides the kind's error code
    id: int = 0
    matched: int = 0            # requests that matched method and path while the rule was live
    fired: int = 0              # faults given
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)
    _random: random.Random = field(default_factory=random.Random, repr=False)   # seeded by make_rule

    @property
    def active(self) -> bool:
        return self.count is None or self.fired < self.count

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method.upper():
            return False
        return self._pattern is None or bool(self._pattern.match(path))

    def error(self) -> BatchServiceError:
        """The service error a 429/503/500 rule answers with (close before applying: a 500)."""
        status, code, message = ERRORS.get(self.kind, ERRORS["500"])
        if self.code:
            code, message = self.code, None
        return service_error(status, code, message)

    def headers(self) -> dict[str, str]:
        if self.kind in ERRORS and self.retry_after is not None:
            return {"Retry-After": _number(self.retry_after)}
        return {}

    def describe(self) -> dict[str, Any]:
        shown = {k: getattr(self, k) for k in ("id", "kind", "method", "path", "when", "count", "skip", "rate",
                                                "seed", "matched", "fired")}
        if self.kind in ERRORS:
            shown["retry_after"] = self.retry_after
            shown["code"] = self.code
        if self.kind == "delay":
            shown["delay"] = self.delay
        shown["active"] = self.active
        return shown


def _number(value: float) -> str:
    return f"{value:g}"


def _glob(pattern: str) -> re.Pattern[str]:
    """'/jobs/*/taskcounts' -> regex over the whole path; a trailing '/**' also matches the parent."""
    tail = ""
    if pattern.endswith("/**"):
        pattern, tail = pattern[:-3], "(?:/.*)?"
    parts = re.split(r"(\*\*|\*)", pattern)
    body = "".join({"**": ".*", "*": "[^/]*"}.get(p, re.escape(p)) for p in parts)
    return re.compile(body + tail + r"\Z", re.IGNORECASE)


def _as_int(name: str, value: Any, minimum: int) -> int:
    try:
        number = int(value)
        if number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise FaultError(f"{name} must be an integer, not {value!r}") from None
    if number < minimum:
        raise FaultError(f"{name} must be >= {minimum}, not {number}")
    return number


def _as_seconds(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FaultError(f"{name} must be a number of seconds, not {value!r}") from None
    if not 0 <= number <= 3600:
        raise FaultError(f"{name} must be between 0 and 3600 seconds, not {value!r}")
    return number


def make_rule(kind: str, method: str | None = None, path: str | None = None, when: str = "before", count: Any = None,
              skip: Any = 0, rate: Any = 1.0, seed: Any = None, retry_after: Any = "default", delay: Any = 1.0,
              code: Any = None) -> FaultRule:
    """Check every field and build a FaultRule; FaultError names the field that is wrong (checked in this order)."""
    kind = str(kind).lower()
    if kind not in KINDS:
        raise FaultError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    method = _method(method)
    path = None if path in (None, "") else path
    pattern = _path_pattern(path)
    if when not in ("before", "after"):
        raise FaultError(f"when must be before or after, not {when!r}")
    count = None if count in (None, "", "none") else _as_int("count", count, 1)
    skip = _as_int("skip", skip, 0)
    rate = _rate(rate)
    seed = None if seed in (None, "", "none") else _as_int("seed", seed, -(2 ** 63))
    retry_after = _retry_after(kind, retry_after)
    delay = _as_seconds("delay", delay)
    code = _code(kind, code)
    return FaultRule(kind=kind, method=method, path=path, when=when, count=count, skip=skip, rate=rate, seed=seed,
                     retry_after=retry_after, delay=delay, code=code, _pattern=pattern, _random=random.Random(seed))


def _method(method: str | None) -> str | None:
    if method in (None, "", "*"):
        return None
    if str(method).upper() not in METHODS:
        raise FaultError(f"method must be one of {', '.join(METHODS)} or *, not {method!r}")
    return str(method).upper()


def _path_pattern(path: object) -> re.Pattern[str] | None:
    """What a rule's path matches: None (every path), a glob, or a regular expression (^...)."""
    if path is None:
        return None
    if not isinstance(path, str) or path[0] not in "/^":
        raise FaultError(f"path must start with / (a path, * and ** allowed) or ^ (a regular expression), not {path!r}")
    if path[0] == "^":
        try:
            return re.compile(path, re.IGNORECASE)
        except re.error as exc:
            raise FaultError(f"path is not a valid regular expression: {exc}") from None
    return _glob(path)


def _rate(rate: Any) -> float:
    try:
        number = float(rate)
    except (TypeError, ValueError):
        raise FaultError(f"rate must be a number, not {rate!r}") from None
    if not 0 < number <= 1:
        raise FaultError(f"rate must be > 0 and <= 1, not {number!r}")
    return number


def _retry_after(kind: str, retry_after: Any) -> float | None:
    if retry_after == "default":
        return DEFAULT_RETRY_AFTER.get(kind)
    if retry_after in (None, "", "none"):
        return None
    if kind not in ERRORS:
        raise FaultError(f"retry_after applies to 429, 503 and 500, not to {kind}")
    return _as_seconds("retry_after", retry_after)


def _code(kind: str, code: Any) -> str | None:
    if code in (None, ""):
        return None
    if kind not in ERRORS or not re.fullmatch(r"[A-Za-z]+", str(code)):
        raise FaultError(f"code must be letters only and goes with 429, 503, 500, 409 or 400, not {code!r} with {kind}")
    return str(code)


FIELDS = ("kind", "method", "path", "when", "count", "skip", "rate", "seed", "retry_after", "delay", "code")


def rule_from_json(obj: object) -> FaultRule:
    """A rule from the control endpoint's JSON object (unknown keys are refused, not ignored)."""
    if not isinstance(obj, dict):
        raise FaultError("a fault rule is a JSON object")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise FaultError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    if "kind" not in obj:
        raise FaultError("kind is required")
    return make_rule(**obj)


SPEC_HELP = """\
--fault SPEC adds a rule (repeat it for more): SPEC is 'KIND [METHOD] [PATH] [key=value ...]'
  KIND     429 | 503 (Retry-After, default 1 s) | 500 | 409 | 400 | delay | close | drop
  METHOD   GET, POST, ... (default: any);  PATH  /jobs/*/taskcounts, /jobs/** or ^regex (default: any)
  keys     count=N  skip=N  rate=0.3  seed=N  when=before|after  retry-after=S|none  delay=S  code=ErrorCode
examples:
  --fault "503 rate=0.3 seed=1"                            30% of all requests get 503 ServerBusy
  --fault "503 GET /jobs/*/taskcounts count=2"             the next 2 task-count reads get 503
  --fault "close POST /jobs/j1/tasks when=after count=1"   create the task, then cut its 201
  --fault "delay GET /pools/** delay=5"                    every pool read answers after 5 s
  --fault "409 POST /pools code=PoolQuotaReached"          the account's pool quota is reached
Rules can also be added, listed and cleared at run time: POST/GET/DELETE /_emulator/faults
(signed with the account key, see batch_emulator/README.md).
"""


def parse_spec(text: str) -> FaultRule:
    """'503 GET /jobs/*/taskcounts count=2 retry-after=1' -> FaultRule (FaultError if wrong)."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise FaultError(f"cannot split {text!r}: {exc}") from None
    if not tokens:
        raise FaultError("empty fault spec")
    fields = {"kind": tokens[0]}
    for token in tokens[1:]:
        key, eq, value = token.partition("=")
        if eq:
            key = key.replace("-", "_").lower()
            if key not in FIELDS or key == "kind":
                raise FaultError(f"unknown key {key!r} in {text!r}; known: "
                                 f"{', '.join(f for f in FIELDS if f not in ('kind', 'method', 'path'))}")
            fields[key] = value
        elif token[0] in "/^" and "path" not in fields:
            fields["path"] = token
        elif token.upper() in METHODS + ("*",) and "method" not in fields:
            fields["method"] = token
        else:
            raise FaultError(f"do not understand {token!r} in {text!r} (expected METHOD, PATH or key=value)")
    return make_rule(**fields)


class Faults:
    """The emulator's live rule list: add, list, clear, and decide() per request."""

    def __init__(self, rules: Iterable[FaultRule] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1
        for rule in rules:
            self.add(rule)

    def add(self, rule: FaultRule) -> dict[str, Any]:
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self._rules.append(rule)
            return rule.describe()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.describe() for rule in self._rules]

    def clear(self, rule_id: int | None = None) -> int:
        """Remove every rule (or the one with ``rule_id``); returns how many went."""
        with self._lock:
            kept = [r for r in self._rules if rule_id is not None and r.id != rule_id]
            removed = len(self._rules) - len(kept)
            self._rules = kept
            return removed

    def decide(self, method: str, path: str) -> FaultRule | None:
        """The rule whose fault this request gets, or None. ``path`` may be raw (quoted, with a query)."""
        path = "/" + unquote(urlsplit(path).path).strip("/")
        if is_control(path):
            return None
        with self._lock:
            for rule in self._rules:
                if not rule.active or not rule.matches(method, path):
                    continue
                rule.matched += 1
                if rule.matched <= rule.skip:
                    continue
                if rule.rate < 1 and rule._random.random() >= rule.rate:
                    continue
                rule.fired += 1
                return rule
        return None


def is_control(path: str) -> bool:
    path = "/" + unquote(urlsplit(path).path).strip("/").lower()
    return path == CONTROL_PATH or path.startswith(CONTROL_PATH + "/")


def control(faults: Faults, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Serve the control endpoint (the caller has checked the signature). Returns (status, JSON body).

    POST   /_emulator/faults          body: one rule object, or a list of them -> 201 {"value": [added...]}
    GET    /_emulator/faults          -> 200 {"value": [rules with matched/fired/active]}
    DELETE /_emulator/faults          -> 200 {"removed": N}
    DELETE /_emulator/faults/<id>     -> 200 {"removed": 1}, or 404 ResourceNotFound
    """
    rest = "/" + unquote(urlsplit(path).path).strip("/")
    rest = rest[len(CONTROL_PATH):].strip("/")
    if rest:
        if method != "DELETE":
            raise service_error(405, "UnsupportedHttpVerb", Verb=method)
        try:
            rule_id = int(rest)
        except ValueError:
            raise service_error(400, "InvalidUri", Reason=f"No fault rule {rest!r}") from None
        if not faults.clear(rule_id):
            raise service_error(404, "ResourceNotFound", Reason=f"No fault rule {rule_id}")
        return 200, {"removed": 1}
    if method == "GET":
        return 200, {"value": faults.list()}
    if method == "DELETE":
        return 200, {"removed": faults.clear()}
    if method == "POST":
        try:
            obj = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise service_error(400, "InvalidRequestBody", Reason=f"The body is not valid JSON: {exc}") from None
        try:
            rules = [rule_from_json(o) for o in (obj if isinstance(obj, list) else [obj])]
        except FaultError as exc:
            raise service_error(400, "InvalidRequestBody", Reason=str(exc)) from None
        return 201, {"value": [faults.add(rule) for rule in rules]}
    raise service_error(405, "UnsupportedHttpVerb", Verb=method)


def apply(rule: FaultRule | None, answer: Callable[[], T],
          refuse: Callable[[BatchServiceError, dict[str, str]], T],
          sleep: Callable[[float], None] = time.sleep) -> tuple[T | None, str]:
    """Serve one request under ``rule`` (None: no fault).

    ``answer()`` applies the request and returns the emulator's own response;
    ``refuse(err, headers)`` builds an error response; ``sleep(seconds)`` waits out a delay
    rule (tests pass one that records the delays instead of waiting). Returns (response, how):
    how is "send", "cut" (send part of it, then reset) or "drop" (reset, send nothing; response None).
    """
    if rule is None:
        return answer(), "send"
    if rule.kind == "delay":
        if rule.when == "before":
            sleep(rule.delay)
            return answer(), "send"
        delayed = answer()
        sleep(rule.delay)
        return delayed, "send"
    response = answer() if rule.when == "after" else None
    if rule.kind in ERRORS:
        return refuse(rule.error(), rule.headers()), "send"
    if rule.kind == "close":
        return (response if response is not None else refuse(rule.error(), {})), "cut"
    return None, "drop"


def cut(data: bytes, head_length: int) -> bytes:
    """The part of a response that ``close`` sends: the head and half the body, or half the status line."""
    if len(data) > head_length:
        return data[:head_length + (len(data) - head_length) // 2]
    return data[:max(1, data.index(b"\r\n") // 2)]
