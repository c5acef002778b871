"""Autoscale formula values and the operations on them that do not depend on the syntax tree.

Holds the value types (double is a float, string a str; Vec, Timestamp, Interval), their
names and rendering in results strings, and the helpers the evaluator applies to values:
comparison, IEEE arithmetic, logarithms, doubleVecList flattening and time() date parsing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from .language import FormulaError, Pos


class Vec(tuple[float, ...]):
    """doubleVec."""


@dataclass(frozen=True)
class Timestamp:
    dt: datetime          # aware, UTC


@dataclass(frozen=True)
class Interval:
    seconds: float        # formula time


# A formula value: double, string, doubleVec, timestamp or timeinterval.
Value = float | str | Vec | Timestamp | Interval


def type_name(value: object) -> str:
    if isinstance(value, float):
        return "double"
    return {Vec: "doubleVec", str: "string", Timestamp: "timestamp", Interval: "timeinterval"}[type(value)]


def render(value: object) -> str:
    """A value as the results string shows it: doubles like C's %g (96.6667), vectors [1,2]."""
    if isinstance(value, float):
        text = format(value, "g")
        return "0" if text == "-0" else text
    if isinstance(value, Vec):
        return "[" + ",".join(render(v) for v in value) + "]"
    if isinstance(value, Timestamp):    # the docs' example: $curTime=2016-10-13T19:18:47.805Z
        return value.dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.dt.microsecond // 1000:03d}Z"
    if isinstance(value, Interval):     # [inferred] .NET TimeSpan text, e.g. 00:03:00
        ticks = round(abs(value.seconds) * 10**7)
        days, rest = divmod(ticks, 86400 * 10**7)
        hours, rest = divmod(rest, 3600 * 10**7)
        minutes, rest = divmod(rest, 60 * 10**7)
        seconds, fraction = divmod(rest, 10**7)
        text = f"{days}." if days else ""
        text += f"{hours:02d}:{minutes:02d}:{seconds:02d}" + (f".{fraction:07d}" if fraction else "")
        return ("-" if value.seconds < 0 else "") + text
    return str(value)


def comparable(value: object) -> Any:
    if isinstance(value, Timestamp):
        return value.dt
    if isinstance(value, Interval):
        return value.seconds
    return value


def arith(op: str, a: float, b: float) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:      # IEEE division, as the service's doubles: 1/0 = inf, 0/0 = nan
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def logarithm(function: Callable[[float], float], value: float) -> float:
    if value < 0 or math.isnan(value):
        return math.nan
    return -math.inf if value == 0 else function(value)


def flatten(args: list[Value], pos: Pos, name: str) -> list[float]:
    values: list[float] = []
    for arg in args:
        if isinstance(arg, float):
            values.append(arg)
        elif isinstance(arg, Vec):
            values.extend(arg)
        else:
            raise FormulaError("runtime", pos, f"{name}() takes doubles and doubleVecs, not a {type_name(arg)}")
    return values


def parse_time(text: str, pos: Pos) -> datetime:
    """W3C-DTF (an ISO 8601 profile) or RFC 1123, as the docs say time() reads."""
    value = text.strip()
    try:
        if re.match(r"^[A-Za-z]{3},", value):
            parsed = parsedate_to_datetime(value)
        else:
            parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except (TypeError, ValueError, IndexError):
        raise FormulaError("runtime", pos, f"time(): {text!r} is not a W3C-DTF or RFC 1123 date") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
