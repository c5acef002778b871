"""Autoscale formulas: the evaluator, and the entry point to the language's other modules.

This module holds Environment, Outcome, evaluate() and the evaluation of the syntax tree;
check(), FormulaError, MESSAGES and the other names the emulator uses are imported here too.
The rest of the language is split by what it does:
    language.py   error codes, FormulaError, constants, service variables, methods
    functions.py  the functions: name -> (argument count, implementation)
    values.py     value types (Vec, Timestamp, Interval), rendering, value operations
    syntax.py     tokenizer, syntax tree, recursive-descent parser
    checks.py     static checks: check(formula)

Pure: no I/O and no clock reads. The caller passes the time, the pool's current values and
a view of its sample history (service/autoscale.py); nothing here changes a pool.

    check(formula)                 -> raises FormulaError for what the service (or the
                                      emulator) refuses at pool create / enable autoscale
    evaluate(formula, env)         -> Outcome(results, targets, deallocation, error)

The language, as Microsoft documents it in "Create a formula to automatically scale compute
nodes in a Batch pool" (https://learn.microsoft.com/azure/batch/batch-automatic-scaling):
- statements `$var = expr;` or `var = expr;` (at most 100), `//` comments, line breaks;
  the last `;` is optional. A statement may also be a bare expression (e.g. `stop();`).
- doubles, strings in double quotes, the TimeInterval_* constants, the deallocation options
  written bare (`requeue`, `terminate`, `taskcompletion`, `retaineddata`).
- operators `+ - * /`, `< <= == >= > !=`, `&& ||`, unary `- !`, `cond ? a : b`, on exactly the
  type pairs of the documented operations table (double, doubleVec, string, timestamp,
  timeinterval); anything else is an evaluation error naming the operator and types.
- functions avg, len, lg, ln, log, max, min, norm, percentile, rand, range, std, stop, sum,
  time, val; a doubleVecList argument is any mix of doubles and doubleVecs, flattened.
- sampled service variables with GetSample(count | start[, percent] | start, end[, percent]),
  GetSamplePercent(start[, end]), GetSamplePeriod(), Count(), HistoryBeginTime(); timestamp
  members year, month, day, weekday (1 = Monday), hour, minute, second.
- writable $TargetDedicatedNodes (alias $TargetDedicated; the full name wins),
  $TargetLowPriorityNodes (alias $TargetLowPriority) and $NodeDeallocationOption.

Choices where the service is not documented (each marked [inferred] in these modules) are
listed in batch_emulator/README.md. Errors say "Line L, Col C: <what>", as the service's
AutoScaleRunError values do ("Line 1, Col 37: Insufficient data from data set: ...").
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .checks import check
from .functions import FUNCTIONS, Stop
from .language import (
    DEALLOCATION_OPTIONS,
    DEFAULT_DEALLOCATION,
    MESSAGES,
    METRIC_ALIASES,
    SAMPLE_PERIOD_SECONDS,
    TIME_INTERVALS,
    FormulaError,
    service_name,
)
from .syntax import Binary, Call, Cond, Member, Method, Name, Num, Str, Unary
from .values import Interval, Timestamp, Vec, arith, comparable, render, type_name

__all__ = ["Environment", "Outcome", "evaluate", "check", "FormulaError", "MESSAGES", "SAMPLE_PERIOD_SECONDS",
           "TIME_INTERVALS"]


@dataclass
class Environment:
    """What an evaluation sees. ``samples`` answers last/window/count/begin (service/autoscale.py's SampleView)."""
    now: datetime                       # aware UTC: time() and look-back windows end here
    target_dedicated: int = 0           # the pool's current targets: $TargetDedicatedNodes starts there
    target_low_priority: int = 0
    current: dict = field(default_factory=dict)   # "$CurrentDedicatedNodes" -> value, for direct reads
    samples: object = None
    time_scale: float = 1.0             # formula seconds per wall second for sample look-backs
    rand: Callable[[], float] = random.random


@dataclass
class Outcome:
    results: str
    target_dedicated: int | None = None   # None when the evaluation failed
    target_low_priority: int | None = None
    deallocation: str = DEFAULT_DEALLOCATION
    error: FormulaError | None = None

    def run(self, timestamp: str) -> dict[str, Any]:
        """The AutoScaleRun wire object; on failure the service still shows results (the starting values)."""
        run: dict[str, Any] = {"timestamp": timestamp, "results": self.results}
        if self.error is not None:
            run["error"] = self.error.run_error()
        return run


def evaluate(formula: str, env: Environment) -> Outcome:
    """Evaluate ``formula`` against ``env``; never raises for a problem of the formula itself."""
    evaluation = _Evaluation(env)
    try:
        statements = check(formula)
        evaluation.run(statements)
        return evaluation.outcome()
    except FormulaError as err:
        return Outcome(evaluation.results(initial=True), error=err)


class _Evaluation:
    def __init__(self, env):
        self.env = env
        self.service: dict[str, Any] = {"$TargetDedicatedNodes": float(env.target_dedicated),
                        "$TargetDedicated": float(env.target_dedicated),
                        "$TargetLowPriorityNodes": float(env.target_low_priority),
                        "$TargetLowPriority": float(env.target_low_priority),
                        "$NodeDeallocationOption": DEFAULT_DEALLOCATION}
        self.set_at = {}        # service variable -> position of its last assignment
        self.user = {}

    # -- statements

    def run(self, statements):
        try:
            for statement in statements:
                value = self.value(statement.value)
                if statement.target is not None:
                    self.assign(statement, value)
        except Stop:
            pass

    def assign(self, statement, value):
        canonical = service_name(statement.target)
        if canonical is None:
            self.user[statement.target] = value
            return
        if canonical == "$NodeDeallocationOption":
            if not isinstance(value, str) or value.lower() not in DEALLOCATION_OPTIONS:
                raise FormulaError("runtime", statement.pos, f"$NodeDeallocationOption must be one of "
                                                             f"{', '.join(DEALLOCATION_OPTIONS)}, not {render(value)}")
            value = value.lower()
        elif not isinstance(value, float):
            raise FormulaError("runtime", statement.pos, f"{canonical} must be a double, not a {type_name(value)}")
        self.service[canonical] = value
        self.set_at[canonical] = statement.pos

    def target(self, full, alias):
        """The node count the formula asks for: the full name wins over its alias; [inferred] truncated."""
        name = full if full in self.set_at or alias not in self.set_at else alias
        value = self.service[name]
        pos = self.set_at.get(name, (1, 1))
        if math.isnan(value) or math.isinf(value):
            raise FormulaError("runtime", pos, f"{full} is {render(value)}; a node count must be a finite number")
        if value < 0:
            raise FormulaError("runtime", pos, f"{full} is {render(value)}; a node count cannot be negative "
                                               "(use max(0, ...))")
        return int(value)

    def outcome(self):
        dedicated = self.target("$TargetDedicatedNodes", "$TargetDedicated")
        low_priority = self.target("$TargetLowPriorityNodes", "$TargetLowPriority")
        deallocation = self.service["$NodeDeallocationOption"]
        return Outcome(self.results(dedicated=dedicated, low_priority=low_priority), dedicated, low_priority,
                       deallocation)

    def results(self, initial=False, dedicated=None, low_priority=None):
        """$TargetDedicatedNodes=..;$TargetLowPriorityNodes=..;$NodeDeallocationOption=..;<user variables>.

        User variables are listed as written ($x or x), sorted ordinally, as a real pool's
        autoScaleRun shows: "...;$samples=96.6667;$targetVMs=0.5;$tasks=0;cappedPoolSize=3".
        """
        if initial:
            dedicated, low_priority = self.env.target_dedicated, self.env.target_low_priority
            parts = [f"$TargetDedicatedNodes={dedicated}", f"$TargetLowPriorityNodes={low_priority}",
                     f"$NodeDeallocationOption={DEFAULT_DEALLOCATION}"]
            return ";".join(parts)
        parts = [f"$TargetDedicatedNodes={dedicated}", f"$TargetLowPriorityNodes={low_priority}",
                 f"$NodeDeallocationOption={self.service['$NodeDeallocationOption']}"]
        parts += [f"{name}={render(self.user[name])}" for name in sorted(self.user)]
        return ";".join(parts)

    # -- expressions

    def value(self, node):
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Str):
            return node.value
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Method):
            return self.method(node)
        if isinstance(node, Member):
            return self.member(node)
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Cond):
            return self.value(node.then) if self.truth(node.test) else self.value(node.other)
        if isinstance(node, Binary):
            return self.binary(node)
        raise AssertionError(node)

    def truth(self, node):
        value = self.value(node)
        if not isinstance(value, float):
            raise FormulaError("runtime", node.pos, f"a condition must be a double (non-zero is true), "
                                                    f"not a {type_name(value)}")
        return value != 0

    def name(self, node):
        name = node.name
        canonical = service_name(name)
        if canonical in self.service:
            return self.service[canonical]
        if canonical is not None:        # a node metric read directly: its current value
            canonical = METRIC_ALIASES.get(canonical, canonical)
            return float(self.env.current.get(canonical, 0))
        if name in TIME_INTERVALS:
            return Interval(TIME_INTERVALS[name])
        if name in self.user:
            return self.user[name]
        if name in DEALLOCATION_OPTIONS:
            return name
        raise FormulaError("runtime", node.pos, f"variable {name!r} is used before it is assigned")

    def member(self, node):
        target = self.value(node.target)
        if not isinstance(target, Timestamp):
            raise FormulaError("runtime", node.pos, f".{node.name} needs a timestamp, not a {type_name(target)}")
        dt = target.dt
        value = dt.isoweekday() if node.name == "weekday" else getattr(dt, node.name)
        return float(value)

    def unary(self, node):
        value = self.value(node.operand)
        if node.op == "-" and isinstance(value, float):
            return -value
        if node.op == "-" and isinstance(value, Interval):
            return Interval(-value.seconds)
        if node.op == "!" and isinstance(value, float):
            return 1.0 if value == 0 else 0.0
        raise FormulaError("runtime", node.pos, f"unary {node.op!r} is not defined for a {type_name(value)}")

    def binary(self, node):
        op = node.op
        if op in ("&&", "||"):
            left = self.truth(node.left)
            if (op == "&&" and not left) or (op == "||" and left):
                return 1.0 if left else 0.0
            return 1.0 if self.truth(node.right) else 0.0
        left, right = self.value(node.left), self.value(node.right)
        kinds = (type_name(left), type_name(right))
        if op in ("<", "<=", "==", ">=", ">", "!="):
            if kinds[0] == kinds[1] and kinds[0] in ("double", "string", "timestamp", "timeinterval"):
                a, b = comparable(left), comparable(right)
                return 1.0 if {"<": a < b, "<=": a <= b, "==": a == b, ">=": a >= b, ">": a > b,
                               "!=": a != b}[op] else 0.0
        elif kinds == ("double", "double"):
            return arith(op, left, right)
        elif kinds == ("doubleVec", "double"):
            return Vec(arith(op, x, right) for x in left)
        elif kinds == ("doubleVec", "doubleVec"):
            if len(left) != len(right):
                raise FormulaError("runtime", node.pos, f"{op!r} on doubleVecs of different lengths "
                                                        f"({len(left)} and {len(right)})")
            return Vec(arith(op, x, y) for x, y in zip(left, right, strict=False))
        elif kinds == ("double", "timeinterval") and op == "*":
            return Interval(left * right.seconds)
        elif kinds == ("timeinterval", "double") and op in ("*", "/"):
            return Interval(arith(op, left.seconds, right))
        elif kinds == ("timeinterval", "timeinterval") and op in ("+", "-"):
            return Interval(arith(op, left.seconds, right.seconds))
        elif op == "+" and kinds == ("timestamp", "timeinterval"):
            return Timestamp(left.dt + timedelta(seconds=right.seconds))
        elif op == "+" and kinds == ("timeinterval", "timestamp"):
            return Timestamp(right.dt + timedelta(seconds=left.seconds))
        elif op == "-" and kinds == ("timestamp", "timestamp"):
            return Interval((left.dt - right.dt).total_seconds())
        raise FormulaError("runtime", node.pos, f"operator {op!r} is not defined for {kinds[0]} and {kinds[1]}")

    # -- functions

    def call(self, node):
        args = [self.value(arg) for arg in node.args]
        return FUNCTIONS[node.name].implementation(node.name, args, node.pos, self.env)

    # -- sampled variables

    def method(self, node):
        canonical = service_name(node.target.name)
        metric = None if canonical is None else METRIC_ALIASES.get(canonical, canonical)
        samples, name, pos = self.env.samples, node.name, node.pos
        args = [self.value(arg) for arg in node.args]
        if name == "GetSamplePeriod":
            return Interval(SAMPLE_PERIOD_SECONDS)
        if name == "Count":
            return float(samples.count(metric))
        if name == "HistoryBeginTime":
            begin = samples.begin(metric)
            if begin is None:
                raise FormulaError("runtime", pos, f"{metric} has no samples yet")
            return Timestamp(begin)
        if name == "GetSamplePercent":
            start, end = self.window(args, pos, f"{metric}.GetSamplePercent()", allow_percent=False)
            return samples.window(metric, start, end)[1]
        # GetSample
        if len(args) == 1 and isinstance(args[0], float):
            return Vec(float(v) for v in samples.last(metric, max(0, int(args[0]))))
        start, end, wanted = self.window(args, pos, f"{metric}.GetSample()", allow_percent=True)
        values, percent = samples.window(metric, start, end)
        if wanted is not None and percent < wanted:
            raise FormulaError("samples", pos, f"Insufficient data from data set: {metric} wanted {render(wanted)}%, "
                                               f"received {int(percent)}%")
        return Vec(float(v) for v in values)

    def window(self, args, pos, shown, allow_percent):
        """(start, end[, percent]) as wall-clock datetimes: look-backs count from now, in scaled time."""
        times = [a for a in args if isinstance(a, (Interval, Timestamp))]
        rest = args[len(times):]
        shape_ok = args[:len(times)] == times and 1 <= len(times) <= 2 and \
            len(rest) <= (1 if allow_percent else 0) and all(isinstance(r, float) for r in rest)
        if not shape_ok:
            usage = "(count), (start[, percent]) or (start, end[, percent])" if allow_percent else "(start[, end])"
            got = ", ".join(type_name(a) for a in args)
            raise FormulaError("runtime", pos, f"{shown} takes {usage} with start and end as timeintervals or "
                                               f"timestamps, not ({got})")
        points = [self.at(t) for t in times] + ([self.env.now] if len(times) == 1 else [])
        start, end = min(points), max(points)
        if allow_percent:
            return start, end, (rest[0] if rest else None)
        return start, end

    def at(self, when):
        if isinstance(when, Timestamp):
            return when.dt
        return self.env.now - timedelta(seconds=when.seconds / self.env.time_scale)
