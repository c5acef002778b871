"""The autoscale formula functions: one registry of name -> (argument count, implementation).

The static checks (checks.py) read each function's argument count from FUNCTIONS, the
evaluator (evaluator.py) calls its implementation with the evaluated arguments. An
implementation is only called on arguments whose count the checks accepted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .language import Arity, FormulaError, Pos
from .values import Timestamp, Value, Vec, flatten, logarithm, parse_time, render, type_name


class Context(Protocol):
    """What a function may read of its evaluation (evaluator.py's Environment); read-only."""

    @property
    def now(self) -> datetime: ...

    @property
    def rand(self) -> Callable[[], float]: ...


class Stop(Exception):
    """stop(): the evaluation ends here; the assignments made so far stand."""


# (name, evaluated arguments, position of the call, context) -> the value
Implementation = Callable[[str, list[Value], Pos, Context], Value]


@dataclass(frozen=True)
class Function:
    arity: Arity | None         # (least, most) arguments; None: a doubleVecList, any number of them
    implementation: Implementation


def _stop(name: str, args: list[Value], pos: Pos, context: Context) -> Value:
    raise Stop()


def _rand(name: str, args: list[Value], pos: Pos, context: Context) -> Value:
    return float(context.rand())


def _time(name: str, args: list[Value], pos: Pos, context: Context) -> Value:
    if not args:
        return Timestamp(context.now)
    if not isinstance(args[0], str):
        raise FormulaError("runtime", pos, f"time() takes a date string, not a {type_name(args[0])}")
    return Timestamp(parse_time(args[0], pos))


def _val(name: str, args: list[Value], pos: Pos, context: Context) -> Value:
    vector, index = args
    if not isinstance(vector, Vec) or not isinstance(index, float):
        raise FormulaError("runtime", pos, f"val() takes (doubleVec, double), not ({type_name(vector)}, "
                                           f"{type_name(index)})")
    if not 0 <= index < len(vector):
        raise FormulaError("runtime", pos, f"val(): index {render(index)} is outside the vector "
                                           f"(length {len(vector)})")
    return vector[int(index)]


def _percentile(name: str, args: list[Value], pos: Pos, context: Context) -> Value:
    vector, percent = args
    if not isinstance(vector, (Vec, float)) or not isinstance(percent, float):
        raise FormulaError("runtime", pos, f"percentile() takes (doubleVec, double), not "
                                           f"({type_name(vector)}, {type_name(percent)})")
    values = sorted(flatten([vector], pos, name))
    if not values:
        raise FormulaError("runtime", pos, "percentile() of an empty vector")
    if not 0 <= percent <= 100:
        raise FormulaError("runtime", pos, f"percentile(): {render(percent)} is not between 0 and 100")
    # [inferred] nearest-rank percentile
    return values[min(len(values) - 1, max(0, math.ceil(percent / 100 * len(values)) - 1))]


def _logarithm(function: Callable[[float], float]) -> Implementation:
    """lg, ln, log: of one double a double; of a doubleVecList a doubleVec."""
    def apply(name: str, args: list[Value], pos: Pos, context: Context) -> Value:
        if len(args) == 1 and isinstance(args[0], float):
            return logarithm(function, args[0])
        return Vec(logarithm(function, v) for v in flatten(args, pos, name))
    return apply


def _doubles(name: str, args: list[Value], pos: Pos, empty_allowed: bool = False) -> list[float]:
    """A doubleVecList's doubles and doubleVecs flattened into one list of doubles."""
    values = flatten(args, pos, name)
    if not values and not empty_allowed:
        raise FormulaError("runtime", pos, f"{name}() of an empty list (a GetSample on a new pool can be "
                                           f"empty: write {name}(0, ...) or check GetSamplePercent first)")
    return values


def _of_list(reduce: Callable[[list[float]], float], empty_allowed: bool = False) -> Implementation:
    """A function of a doubleVecList, as ``reduce`` of its doubles."""
    def apply(name: str, args: list[Value], pos: Pos, context: Context) -> Value:
        return reduce(_doubles(name, args, pos, empty_allowed))
    return apply


def _std(name: str, args: list[Value], pos: Pos, context: Context) -> Value:
    values = _doubles(name, args, pos)
    if len(values) < 2:
        raise FormulaError("runtime", pos, "std() needs at least 2 values (it is the sample standard deviation)")
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


FUNCTIONS: dict[str, Function] = {
    "avg": Function(None, _of_list(lambda values: math.fsum(values) / len(values))),
    "len": Function(None, _of_list(lambda values: float(len(values)), empty_allowed=True)),
    "lg": Function((1, None), _logarithm(math.log2)),
    "ln": Function((1, None), _logarithm(math.log)),
    "log": Function((1, None), _logarithm(math.log10)),
    "max": Function(None, _of_list(max)),
    "min": Function(None, _of_list(min)),
    "norm": Function(None, _of_list(lambda values: math.sqrt(math.fsum(v * v for v in values)), empty_allowed=True)),
    "percentile": Function((2, 2), _percentile),
    "rand": Function((0, 0), _rand),
    "range": Function(None, _of_list(lambda values: max(values) - min(values))),
    "std": Function(None, _std),
    "stop": Function((0, 0), _stop),
    "sum": Function(None, _of_list(lambda values: float(math.fsum(values)), empty_allowed=True)),
    "time": Function((0, 1), _time),
    "val": Function((2, 2), _val),
}
