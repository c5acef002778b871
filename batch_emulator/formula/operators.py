"""The autoscale formula operators: one table of (operator, operand types) -> implementation.

The evaluator (evaluator.py) evaluates the operands, then applies the table's entry for the
operator and the operands' type names. The tables hold exactly the type pairs of the documented
operations table (double, doubleVec, string, timestamp, timeinterval); any other pair is an
evaluation error naming the operator and the types. && and || are not here: the evaluator
short-circuits them on conditions.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .language import FormulaError, Pos
from .values import Interval, Timestamp, Value, Vec, arith, comparable, type_name

# (operator, left, right, position of the operator) -> the value. The table's key holds the operands'
# type names, so an implementation only gets the types its own parameters name (hence Any here).
BinaryImplementation = Callable[[str, Any, Any, Pos], Value]

ARITHMETIC = ("+", "-", "*", "/")
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, "==": operator.eq, ">=": operator.ge, ">": operator.gt, "!=": operator.ne}
COMPARABLE = ("double", "string", "timestamp", "timeinterval")   # each compares with its own type only


def _compare(op: str, left: Value, right: Value, pos: Pos) -> Value:
    return 1.0 if COMPARISONS[op](comparable(left), comparable(right)) else 0.0


def _doubles(op: str, left: float, right: float, pos: Pos) -> Value:
    return arith(op, left, right)


def _vector_and_double(op: str, left: Vec, right: float, pos: Pos) -> Value:
    return Vec(arith(op, x, right) for x in left)


def _vectors(op: str, left: Vec, right: Vec, pos: Pos) -> Value:
    if len(left) != len(right):
        raise FormulaError("runtime", pos, f"{op!r} on doubleVecs of different lengths ({len(left)} and {len(right)})")
    return Vec(arith(op, x, y) for x, y in zip(left, right, strict=False))


def _double_times_interval(op: str, left: float, right: Interval, pos: Pos) -> Value:
    return Interval(left * right.seconds)


def _interval_and_double(op: str, left: Interval, right: float, pos: Pos) -> Value:
    return Interval(arith(op, left.seconds, right))


def _intervals(op: str, left: Interval, right: Interval, pos: Pos) -> Value:
    return Interval(arith(op, left.seconds, right.seconds))


def _timestamp_plus_interval(op: str, left: Timestamp, right: Interval, pos: Pos) -> Value:
    return Timestamp(left.dt + timedelta(seconds=right.seconds))


def _interval_plus_timestamp(op: str, left: Interval, right: Timestamp, pos: Pos) -> Value:
    return Timestamp(right.dt + timedelta(seconds=left.seconds))


def _timestamp_difference(op: str, left: Timestamp, right: Timestamp, pos: Pos) -> Value:
    return Interval((left.dt - right.dt).total_seconds())


# (operator, left type, right type) -> implementation
BINARY: dict[tuple[str, str, str], BinaryImplementation] = {
    **{(op, kind, kind): _compare for op in COMPARISONS for kind in COMPARABLE},
    **{(op, "double", "double"): _doubles for op in ARITHMETIC},
    **{(op, "doubleVec", "double"): _vector_and_double for op in ARITHMETIC},
    **{(op, "doubleVec", "doubleVec"): _vectors for op in ARITHMETIC},
    ("*", "double", "timeinterval"): _double_times_interval,
    **{(op, "timeinterval", "double"): _interval_and_double for op in ("*", "/")},
    **{(op, "timeinterval", "timeinterval"): _intervals for op in ("+", "-")},
    ("+", "timestamp", "timeinterval"): _timestamp_plus_interval,
    ("+", "timeinterval", "timestamp"): _interval_plus_timestamp,
    ("-", "timestamp", "timestamp"): _timestamp_difference,
}

# (operator, operand type) -> implementation
UNARY: dict[tuple[str, str], Callable[[Any], Value]] = {
    ("-", "double"): lambda value: -value,
    ("-", "timeinterval"): lambda value: Interval(-value.seconds),
    ("!", "double"): lambda value: 1.0 if value == 0 else 0.0,
}


def binary(op: str, left: Value, right: Value, pos: Pos) -> Value:
    """``left op right``; raises FormulaError (runtime) when ``op`` is not defined for their types."""
    kinds = (type_name(left), type_name(right))
    implementation = BINARY.get((op, *kinds))
    if implementation is None:
        raise FormulaError("runtime", pos, f"operator {op!r} is not defined for {kinds[0]} and {kinds[1]}")
    return implementation(op, left, right, pos)


def unary(op: str, value: Value, pos: Pos) -> Value:
    """``op value``; raises FormulaError (runtime) when ``op`` is not defined for its type."""
    implementation = UNARY.get((op, type_name(value)))
    if implementation is None:
        raise FormulaError("runtime", pos, f"unary {op!r} is not defined for a {type_name(value)}")
    return implementation(value)
