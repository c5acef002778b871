"""Autoscale formulas: the evaluator, and the entry point to the language's other modules.

This module holds Environment, Outcome, evaluate() and the evaluation of the syntax tree;
check(), FormulaError, MESSAGES and the other names the emulator uses are imported here too.
The rest of the language is split by what it does:
    language.py   error codes, FormulaError, constants, service variables, methods
    functions.py  the functions: name -> (argument count, implementation)
    values.py     value types (Vec, Timestamp, Interval), rendering, value operations
    operators.py  the operators: (operator, operand types) -> implementation
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
from typing import Any, Protocol

from . import operators
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
    Pos,
    service_name,
)
from .syntax import Binary, Call, Cond, Member, Method, Name, Node, Num, Statement, Str, Unary
from .values import Interval, Timestamp, Value, Vec, render, type_name

__all__ = ["Environment", "Outcome", "evaluate", "check", "FormulaError", "MESSAGES", "SAMPLE_PERIOD_SECONDS",
           "TIME_INTERVALS"]


class Samples(Protocol):
    """A pool's sample history as a formula evaluated now reads it (service/autoscale.py's SampleView)."""

    def last(self, metric: str, count: int) -> list[float]:
        """The newest ``count`` readable values of ``metric``, oldest first."""

    def window(self, metric: str, start: datetime, end: datetime) -> tuple[list[float], float]:
        """The values taken in (start, end] and the percentage of the samples that window should hold."""

    def count(self, metric: str) -> int:
        """How many samples are readable."""

    def begin(self, metric: str) -> datetime | None:
        """When the oldest readable sample was taken; None when there is none."""


@dataclass
class Environment:
    """What an evaluation sees."""
    now: datetime                       # aware UTC: time() and look-back windows end here
    target_dedicated: int = 0           # the pool's current targets: $TargetDedicatedNodes starts there
    target_low_priority: int = 0
    current: dict[str, float] = field(default_factory=dict)   # "$CurrentDedicatedNodes" -> value, for direct reads
    samples: Samples | None = None      # None: no sample history, a sampled-variable method fails
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
        return Outcome(evaluation.starting_results(), error=err)


class _Evaluation:
    def __init__(self, env: Environment) -> None:
        self.env = env
        # The node counts the formula sets, each spelling (full name, alias) in its own slot.
        self.targets: dict[str, float] = {"$TargetDedicatedNodes": float(env.target_dedicated),
                                          "$TargetDedicated": float(env.target_dedicated),
                                          "$TargetLowPriorityNodes": float(env.target_low_priority),
                                          "$TargetLowPriority": float(env.target_low_priority)}
        self.deallocation = DEFAULT_DEALLOCATION     # $NodeDeallocationOption
        self.set_at: dict[str, Pos] = {}             # service variable -> position of its last assignment
        self.user: dict[str, Value] = {}

    # -- statements

    def run(self, statements: list[Statement]) -> None:
        try:
            for statement in statements:
                value = self.value(statement.value)
                if statement.target is not None:
                    self.assign(statement.target, statement.pos, value)
        except Stop:
            pass

    def assign(self, target: str, pos: Pos, value: Value) -> None:
        canonical = service_name(target)
        if canonical is None:
            self.user[target] = value
            return
        if canonical == "$NodeDeallocationOption":
            if not isinstance(value, str) or value.lower() not in DEALLOCATION_OPTIONS:
                raise FormulaError("runtime", pos, f"$NodeDeallocationOption must be one of "
                                                   f"{', '.join(DEALLOCATION_OPTIONS)}, not {render(value)}")
            self.deallocation = value.lower()
        elif isinstance(value, float):      # a node count: check() refused writes to the other service variables
            self.targets[canonical] = value
        else:
            raise FormulaError("runtime", pos, f"{canonical} must be a double, not a {type_name(value)}")
        self.set_at[canonical] = pos

    def target(self, full: str, alias: str) -> int:
        """The node count the formula asks for: the full name wins over its alias; [inferred] truncated."""
        name = full if full in self.set_at or alias not in self.set_at else alias
        value = self.targets[name]
        pos = self.set_at.get(name, (1, 1))
        if math.isnan(value) or math.isinf(value):
            raise FormulaError("runtime", pos, f"{full} is {render(value)}; a node count must be a finite number")
        if value < 0:
            raise FormulaError("runtime", pos, f"{full} is {render(value)}; a node count cannot be negative "
                                               "(use max(0, ...))")
        return int(value)

    def outcome(self) -> Outcome:
        dedicated = self.target("$TargetDedicatedNodes", "$TargetDedicated")
        low_priority = self.target("$TargetLowPriorityNodes", "$TargetLowPriority")
        return Outcome(self.results(dedicated, low_priority), dedicated, low_priority, self.deallocation)

    def results(self, dedicated: int, low_priority: int) -> str:
        """$TargetDedicatedNodes=..;$TargetLowPriorityNodes=..;$NodeDeallocationOption=..;<user variables>.

        User variables are listed as written ($x or x), sorted ordinally, as a real pool's
        autoScaleRun shows: "...;$samples=96.6667;$targetVMs=0.5;$tasks=0;cappedPoolSize=3".
        """
        parts = [f"$TargetDedicatedNodes={dedicated}", f"$TargetLowPriorityNodes={low_priority}",
                 f"$NodeDeallocationOption={self.deallocation}"]
        parts += [f"{name}={render(self.user[name])}" for name in sorted(self.user)]
        return ";".join(parts)

    def starting_results(self) -> str:
        """The results of a failed evaluation: the pool's starting values, no user variables."""
        return ";".join([f"$TargetDedicatedNodes={self.env.target_dedicated}",
                         f"$TargetLowPriorityNodes={self.env.target_low_priority}",
                         f"$NodeDeallocationOption={DEFAULT_DEALLOCATION}"])

    # -- expressions

    def value(self, node: Node) -> Value:
        if isinstance(node, (Num, Str)):
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
            return operators.unary(node.op, self.value(node.operand), node.pos)
        if isinstance(node, Cond):
            return self.value(node.then) if self.truth(node.test) else self.value(node.other)
        if isinstance(node, Binary):
            return self.binary(node)
        raise AssertionError(node)

    def truth(self, node: Node) -> bool:
        value = self.value(node)
        if not isinstance(value, float):
            raise FormulaError("runtime", node.pos, f"a condition must be a double (non-zero is true), "
                                                    f"not a {type_name(value)}")
        return value != 0

    def name(self, node: Name) -> Value:
        name = node.name
        canonical = service_name(name)
        if canonical == "$NodeDeallocationOption":
            return self.deallocation
        if canonical is not None:
            if canonical in self.targets:
                return self.targets[canonical]
            # a node metric read directly: its current value
            return float(self.env.current.get(METRIC_ALIASES.get(canonical, canonical), 0))
        if name in TIME_INTERVALS:
            return Interval(TIME_INTERVALS[name])
        if name in self.user:
            return self.user[name]
        if name in DEALLOCATION_OPTIONS:
            return name
        raise FormulaError("runtime", node.pos, f"variable {name!r} is used before it is assigned")

    def member(self, node: Member) -> Value:
        target = self.value(node.target)
        if not isinstance(target, Timestamp):
            raise FormulaError("runtime", node.pos, f".{node.name} needs a timestamp, not a {type_name(target)}")
        dt = target.dt
        value = dt.isoweekday() if node.name == "weekday" else getattr(dt, node.name)
        return float(value)

    def binary(self, node: Binary) -> Value:
        op = node.op
        if op in ("&&", "||"):      # the right side is evaluated only when the left one does not decide
            left = self.truth(node.left)
            if (op == "&&" and not left) or (op == "||" and left):
                return 1.0 if left else 0.0
            return 1.0 if self.truth(node.right) else 0.0
        return operators.binary(op, self.value(node.left), self.value(node.right), node.pos)

    # -- functions

    def call(self, node: Call) -> Value:
        args = [self.value(arg) for arg in node.args]
        return FUNCTIONS[node.name].implementation(node.name, args, node.pos, self.env)

    # -- sampled variables

    def method(self, node: Method) -> Value:
        metric = _sampled_metric(node)
        samples, name, pos = self.env.samples, node.name, node.pos
        args = [self.value(arg) for arg in node.args]
        if name == "GetSamplePeriod":
            return Interval(SAMPLE_PERIOD_SECONDS)
        if samples is None:
            raise FormulaError("samples", pos, f"{metric} has no samples: the evaluation has no sample history")
        if name == "Count":
            return float(samples.count(metric))
        if name == "HistoryBeginTime":
            begin = samples.begin(metric)
            if begin is None:
                raise FormulaError("runtime", pos, f"{metric} has no samples yet")
            return Timestamp(begin)
        if name == "GetSamplePercent":
            start, end, _percent = self.window(args, pos, f"{metric}.GetSamplePercent()", allow_percent=False)
            return samples.window(metric, start, end)[1]
        return self.get_sample(samples, metric, args, pos)

    def get_sample(self, samples: Samples, metric: str, args: list[Value], pos: Pos) -> Value:
        """GetSample(count), or the samples of a look-back window, failing below the percentage it asks for."""
        if len(args) == 1 and isinstance(args[0], float):
            return Vec(float(v) for v in samples.last(metric, max(0, int(args[0]))))
        start, end, wanted = self.window(args, pos, f"{metric}.GetSample()", allow_percent=True)
        values, percent = samples.window(metric, start, end)
        if wanted is not None and percent < wanted:
            raise FormulaError("samples", pos, f"Insufficient data from data set: {metric} wanted {render(wanted)}%, "
                                               f"received {int(percent)}%")
        return Vec(float(v) for v in values)

    def window(self, args: list[Value], pos: Pos, shown: str,
               allow_percent: bool) -> tuple[datetime, datetime, float | None]:
        """(start, end, percent or None) with start and end as wall-clock datetimes: look-backs count from
        now, in scaled time."""
        times = [a for a in args if isinstance(a, (Interval, Timestamp))]
        rest = args[len(times):]
        percents = [r for r in rest if isinstance(r, float)]
        shape_ok = args[:len(times)] == times and 1 <= len(times) <= 2 and \
            len(rest) <= (1 if allow_percent else 0) and len(percents) == len(rest)
        if not shape_ok:
            usage = "(count), (start[, percent]) or (start, end[, percent])" if allow_percent else "(start[, end])"
            got = ", ".join(type_name(a) for a in args)
            raise FormulaError("runtime", pos, f"{shown} takes {usage} with start and end as timeintervals or "
                                               f"timestamps, not ({got})")
        points = [self.at(t) for t in times] + ([self.env.now] if len(times) == 1 else [])
        return min(points), max(points), (percents[0] if percents else None)

    def at(self, when: Interval | Timestamp) -> datetime:
        if isinstance(when, Timestamp):
            return when.dt
        return self.env.now - timedelta(seconds=when.seconds / self.env.time_scale)


def _sampled_metric(node: Method) -> str:
    """The metric a method reads (check() accepts methods of the sampled service variables only)."""
    canonical = service_name(node.target.name) if isinstance(node.target, Name) else None
    if canonical is None:
        raise AssertionError(node)
    return METRIC_ALIASES.get(canonical, canonical)
