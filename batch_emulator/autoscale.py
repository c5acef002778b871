"""Autoscale formulas: tokenizer, recursive-descent parser, static checks and evaluator.

Pure: no I/O and no clock reads. The caller passes the time, the pool's current values and
a view of its sample history (autoscale_samples.py); nothing here changes a pool.

    check(formula)                 -> raises FormulaError for what the service (or the
                                      emulator) refuses at pool create / enable autoscale
    evaluate(formula, env)         -> Outcome(results, targets, deallocation, error)

The language, as documented (fact sheet section 6, "Create a formula to automatically scale
compute nodes in a Batch pool"):
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

Choices where the service is not documented (each marked [inferred] below) are listed in
batch_emulator/README.md. Errors say "Line L, Col C: <what>", as the service's
AutoScaleRunError values do ("Line 1, Col 37: Insufficient data from data set: ...").
"""

import math
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

MAX_STATEMENTS = 100
SAMPLE_PERIOD_SECONDS = 30.0    # the service samples every 30 s (formula time)

# Error codes. The first three are the service's (Batch error-code list; the InsufficientSampleData
# body is the REST reference example; AutoScalingFormulaEvaluationError is what the service returns
# for "$something_useless", per the azure-sdk-for-js Batch tests).
SYNTAX_ERROR = "AutoScalingFormulaSyntaxError"
INVALID_SETTINGS = "InvalidAutoScalingSettings"
INSUFFICIENT_SAMPLES = "InsufficientSampleData"
EVALUATION_ERROR = "AutoScalingFormulaEvaluationError"
MESSAGES = {
    SYNTAX_ERROR: "The specified auto-scaling formula has a syntax error.",
    INVALID_SETTINGS: "The specified auto-scaling settings are not valid.",
    INSUFFICIENT_SAMPLES: "Autoscale evaluation failed due to insufficient sample data",
    EVALUATION_ERROR: "Autoscale evaluation failed due to an error in the formula",   # [inferred] wording
}

DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")
DEFAULT_DEALLOCATION = "requeue"
TIME_INTERVALS = {
    "TimeInterval_Zero": 0.0, "TimeInterval_100ns": 1e-7, "TimeInterval_Microsecond": 1e-6,
    "TimeInterval_Millisecond": 1e-3, "TimeInterval_Second": 1.0, "TimeInterval_Minute": 60.0,
    "TimeInterval_Hour": 3600.0, "TimeInterval_Day": 86400.0, "TimeInterval_Week": 604800.0,
    "TimeInterval_Year": 365 * 86400.0,
}
TIMESTAMP_MEMBERS = ("year", "month", "day", "weekday", "hour", "minute", "second")

# Service-defined variables, canonical spelling (matched case-insensitively: the REST reference
# example writes $targetDedicatedNodes). Aliases read and write their own slot.
WRITABLE = ("$TargetDedicatedNodes", "$TargetDedicated", "$TargetLowPriorityNodes", "$TargetLowPriority",
            "$NodeDeallocationOption")
TASK_METRICS = ("$ActiveTasks", "$RunningTasks", "$PendingTasks", "$SucceededTasks", "$FailedTasks")
NODE_METRICS = ("$CurrentDedicatedNodes", "$CurrentDedicated", "$CurrentLowPriorityNodes", "$PreemptedNodeCount",
                "$UsableNodeCount", "$SampleNodeCount", "$TaskSlotsPerNode")
RESOURCE_METRICS = ("$CPUPercent", "$WallClockSeconds", "$MemoryBytes", "$DiskBytes", "$DiskReadBytes",
                    "$DiskWriteBytes", "$DiskReadOps", "$DiskWriteOps", "$NetworkInBytes", "$NetworkOutBytes")
SERVICE_VARIABLES = {name.lower(): name for name in WRITABLE + TASK_METRICS + NODE_METRICS + RESOURCE_METRICS}
METRIC_ALIASES = {"$CurrentDedicated": "$CurrentDedicatedNodes"}

# name -> (least, most) arguments; None: any number (a doubleVecList)
FUNCTIONS = {"avg": None, "len": None, "lg": (1, None), "ln": (1, None), "log": (1, None), "max": None,
             "min": None, "norm": None, "percentile": (2, 2), "rand": (0, 0), "range": None, "std": None,
             "stop": (0, 0), "sum": None, "time": (0, 1), "val": (2, 2)}
METHODS = {"GetSample": (1, 3), "GetSamplePercent": (1, 2), "GetSamplePeriod": (0, 0), "Count": (0, 0),
           "HistoryBeginTime": (0, 0)}


class FormulaError(Exception):
    """What is wrong with a formula, where. kind: syntax | invalid | unsupported | runtime | samples."""

    def __init__(self, kind, pos, text):
        self.kind, self.pos, self.text = kind, pos, text
        super().__init__(self.detail)

    @property
    def detail(self):
        return f"Line {self.pos[0]}, Col {self.pos[1]}: {self.text}"

    @property
    def request_code(self):
        """Code of the 400 the service returns at pool create / enable autoscale."""
        return SYNTAX_ERROR if self.kind == "syntax" else INVALID_SETTINGS

    @property
    def run_code(self):
        """Code of the AutoScaleRunError of an evaluation (evaluate API or periodic run)."""
        return {"syntax": SYNTAX_ERROR, "samples": INSUFFICIENT_SAMPLES}.get(self.kind, EVALUATION_ERROR)

    def run_error(self):
        code = self.run_code
        return {"code": code, "message": MESSAGES[code], "values": [{"name": "Message", "value": self.detail}]}


# ---------------------------------------------------------------- values

class Vec(tuple):
    """doubleVec."""


@dataclass(frozen=True)
class Timestamp:
    dt: datetime          # aware, UTC


@dataclass(frozen=True)
class Interval:
    seconds: float        # formula time


def type_name(value):
    if isinstance(value, float):
        return "double"
    return {Vec: "doubleVec", str: "string", Timestamp: "timestamp", Interval: "timeinterval"}[type(value)]


def render(value):
    """A value as the results string shows it: doubles like C's %g (96.6667), vectors [1,2]."""
    if isinstance(value, float):
        text = "%g" % value
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


# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(r"""
    (?P<newline>\n) | (?P<space>[ \t\r\f\v]+) | (?P<comment>//[^\n]*) | (?P<block>/\*) |
    (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?) |
    (?P<string>"[^"\n]*") | (?P<open_string>"[^"\n]*) |
    (?P<name>\$?[A-Za-z_][A-Za-z0-9_]*) |
    (?P<op>&&|\|\||<=|>=|==|!=|[-+*/<>!?:;=(),.])
""", re.VERBOSE)
_UNSUPPORTED_CHARACTERS = {
    "{": "'{' is not part of the formula language: there are no vector literals (GetSample returns vectors)",
    "[": "'[' is not part of the formula language: there are no vector literals or indexing (use val(v, i))",
    "'": "strings are written in double quotes",
    "&": "'&' is not an operator: use && for a logical and",
    "|": "'|' is not an operator: use || for a logical or",
}


@dataclass
class Token:
    kind: str       # number | string | name | op | end
    text: str
    pos: tuple      # (line, column), 1-based


def tokenize(formula):
    tokens, line, line_start, index = [], 1, 0, 0
    while index < len(formula):
        match = _TOKEN.match(formula, index)
        pos = (line, index - line_start + 1)
        if match is None:
            char = formula[index]
            raise FormulaError("syntax", pos, _UNSUPPORTED_CHARACTERS.get(char, f"unexpected character {char!r}"))
        kind, text = match.lastgroup, match.group()
        if kind == "newline":
            line, line_start = line + 1, match.end()
        elif kind == "block":
            raise FormulaError("syntax", pos, "block comments /* */ are not supported: start comments with //")
        elif kind == "open_string":
            raise FormulaError("syntax", pos, "the string is not closed with \" on this line")
        elif kind not in ("space", "comment"):
            tokens.append(Token(kind, text, pos))
        index = match.end()
    tokens.append(Token("end", "", (line, index - line_start + 1)))
    return tokens


# ---------------------------------------------------------------- syntax tree

@dataclass
class Num:
    pos: tuple
    value: float


@dataclass
class Str:
    pos: tuple
    value: str


@dataclass
class Name:
    pos: tuple
    name: str


@dataclass
class Call:
    pos: tuple
    name: str
    args: list


@dataclass
class Method:
    pos: tuple
    target: Name
    name: str
    args: list


@dataclass
class Member:
    pos: tuple
    target: object
    name: str


@dataclass
class Unary:
    pos: tuple
    op: str
    operand: object


@dataclass
class Binary:
    pos: tuple
    op: str
    left: object
    right: object


@dataclass
class Cond:
    pos: tuple
    test: object
    then: object
    other: object


@dataclass
class Statement:
    pos: tuple
    target: str     # None for a bare expression
    value: object


class _Parser:
    """formula   := statement? (';' statement?)*
    statement := NAME '=' expr | expr
    expr      := or ('?' expr ':' expr)?
    or        := and ('||' and)*          and := compare ('&&' compare)*
    compare   := sum (('<'|'<='|'=='|'>='|'>'|'!=') sum)*
    sum       := product (('+'|'-') product)*
    product   := unary (('*'|'/') unary)*
    unary     := ('-'|'!') unary | postfix
    postfix   := primary ('.' NAME ('(' args ')')?)*
    primary   := NUMBER | STRING | NAME ('(' args ')')? | '(' expr ')'
    """

    def __init__(self, tokens):
        self.tokens, self.index = tokens, 0

    @property
    def token(self):
        return self.tokens[self.index]

    def take(self):
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, *ops):
        return self.token.kind == "op" and self.token.text in ops

    def expect(self, op, what):
        if not self.at(op):
            raise FormulaError("syntax", self.token.pos, f"expected {op!r} {what}, found {describe(self.token)}")
        return self.take()

    def program(self):
        statements = []
        while self.token.kind != "end":
            if self.at(";"):
                self.take()
                continue
            statements.append(self.statement())
            if self.token.kind != "end":
                self.expect(";", "between statements")
        return statements

    def statement(self):
        first = self.token
        if first.kind == "name" and self.tokens[self.index + 1].kind == "op" and self.tokens[self.index + 1].text == "=":
            self.index += 2
            return Statement(first.pos, first.text, self.expression())
        return Statement(first.pos, None, self.expression())

    def expression(self):
        test = self.binary(0)
        if self.at("?"):
            pos = self.take().pos
            then = self.expression()
            self.expect(":", "after the '?' branch of a conditional")
            return Cond(pos, test, then, self.expression())
        return test

    LEVELS = (("||",), ("&&",), ("<", "<=", "==", ">=", ">", "!="), ("+", "-"), ("*", "/"))

    def binary(self, level):
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.at(*self.LEVELS[level]):
            token = self.take()
            left = Binary(token.pos, token.text, left, self.binary(level + 1))
        return left

    def unary(self):
        if self.at("-", "!"):
            token = self.take()
            return Unary(token.pos, token.text, self.unary())
        return self.postfix()

    def postfix(self):
        node = self.primary()
        while self.at("."):
            self.take()
            name = self.token
            if name.kind != "name" or name.text.startswith("$"):
                raise FormulaError("syntax", name.pos, f"expected a method or member name after '.', found {describe(name)}")
            self.take()
            if self.at("("):
                node = Method(name.pos, node, name.text, self.arguments())
            else:
                node = Member(name.pos, node, name.text)
        return node

    def primary(self):
        token = self.token
        if token.kind == "number":
            self.take()
            return Num(token.pos, float(token.text))
        if token.kind == "string":
            self.take()
            return Str(token.pos, token.text[1:-1])
        if token.kind == "name":
            self.take()
            if self.at("("):
                return Call(token.pos, token.text, self.arguments())
            return Name(token.pos, token.text)
        if self.at("("):
            self.take()
            node = self.expression()
            self.expect(")", "to close '('")
            return node
        raise FormulaError("syntax", token.pos, f"expected a value, found {describe(token)}")

    def arguments(self):
        self.expect("(", "")
        args = []
        if not self.at(")"):
            args.append(self.expression())
            while self.at(","):
                self.take()
                args.append(self.expression())
        self.expect(")", "to close the argument list")
        return args


def describe(token):
    return "the end of the formula" if token.kind == "end" else repr(token.text)


def parse(formula):
    """The statements of ``formula``; raises FormulaError (syntax) if it cannot be read."""
    return _Parser(tokenize(formula)).program()


# ---------------------------------------------------------------- static checks

def service_name(name):
    """Canonical spelling of a service-defined variable, or None for a user variable."""
    return SERVICE_VARIABLES.get(name.lower()) if name.startswith("$") else None


def check(formula):
    """Parse and check ``formula`` as pool create / enable autoscale do; returns the statements.

    Raises FormulaError: syntax (AutoScalingFormulaSyntaxError) for text that cannot be read;
    invalid / unsupported (InvalidAutoScalingSettings) for unknown names, wrong argument counts,
    variables read before they are assigned, writes to read-only variables, too many statements,
    and what the emulator cannot evaluate (resource metrics such as $CPUPercent).
    """
    statements = parse(formula)
    if len(statements) > MAX_STATEMENTS:
        raise FormulaError("invalid", statements[MAX_STATEMENTS].pos,
                           f"the formula has {len(statements)} statements; at most {MAX_STATEMENTS} are allowed")
    assigned = set()
    for statement in statements:
        _check_expression(statement.value, assigned)
        if statement.target is not None:
            _check_target(statement)
            if service_name(statement.target) is None:
                assigned.add(statement.target)
    return statements


def _check_target(statement):
    name, pos = statement.target, statement.pos
    canonical = service_name(name)
    if canonical is not None and canonical not in WRITABLE:
        raise FormulaError("invalid", pos, f"{canonical} is read-only; the formula can set only "
                                           "$TargetDedicatedNodes, $TargetLowPriorityNodes and $NodeDeallocationOption")
    if canonical is None and (name in FUNCTIONS or name in TIME_INTERVALS or name in DEALLOCATION_OPTIONS):
        raise FormulaError("invalid", pos, f"{name!r} is a reserved name and cannot be assigned")


def _check_expression(node, assigned):
    if isinstance(node, Name):
        _check_name(node, assigned)
    elif isinstance(node, Call):
        if node.name not in FUNCTIONS:
            raise FormulaError("invalid", node.pos, f"unknown function {node.name!r} (the functions are "
                                                    f"{', '.join(sorted(FUNCTIONS))})")
        _check_count(node, FUNCTIONS[node.name], f"{node.name}()")
        for arg in node.args:
            _check_expression(arg, assigned)
    elif isinstance(node, Method):
        target = node.target
        canonical = service_name(target.name) if isinstance(target, Name) else None
        if canonical is None or canonical not in TASK_METRICS + NODE_METRICS + RESOURCE_METRICS:
            shown = target.name if isinstance(target, Name) else "this value"
            raise FormulaError("invalid", node.pos, f"{node.name}() is a method of the sampled service variables "
                                                    f"($PendingTasks, $CurrentDedicatedNodes, ...), not of {shown}")
        _check_name(target, assigned, method=True)
        if node.name not in METHODS:
            raise FormulaError("invalid", node.pos, f"unknown method {node.name!r} (the methods are "
                                                    f"{', '.join(METHODS)})")
        _check_count(node, METHODS[node.name], f"{canonical}.{node.name}()")
        for arg in node.args:
            _check_expression(arg, assigned)
    elif isinstance(node, Member):
        if node.name not in TIMESTAMP_MEMBERS:
            raise FormulaError("invalid", node.pos, f"unknown member {node.name!r}; timestamps have "
                                                    f"{', '.join(TIMESTAMP_MEMBERS)}")
        _check_expression(node.target, assigned)
    elif isinstance(node, Unary):
        _check_expression(node.operand, assigned)
    elif isinstance(node, Binary):
        _check_expression(node.left, assigned)
        _check_expression(node.right, assigned)
    elif isinstance(node, Cond):
        for part in (node.test, node.then, node.other):
            _check_expression(part, assigned)


def _check_count(node, bounds, shown):
    if bounds is None:
        return
    least, most = bounds
    count = len(node.args)
    if count < least or (most is not None and count > most):
        wanted = str(least) if least == most else f"{least} to {most}" if most is not None else f"at least {least}"
        plural = "" if wanted in ("1", "at least 1") else "s"
        raise FormulaError("invalid", node.pos, f"{shown} takes {wanted} argument{plural}, not {count}")


def _check_name(node, assigned, method=False):
    name = node.name
    canonical = service_name(name)
    if canonical in RESOURCE_METRICS:
        raise FormulaError("unsupported", node.pos, f"{canonical} is a resource metric, which the Batch emulator does "
                                                    "not measure; use the task and node variables "
                                                    "($PendingTasks, $CurrentDedicatedNodes, ...)")
    if canonical in TASK_METRICS and not method:
        raise FormulaError("invalid", node.pos, f"{canonical} is a sampled metric: read it with "
                                                f"{canonical}.GetSample(...)")
    if canonical is not None or name in TIME_INTERVALS or name in DEALLOCATION_OPTIONS:
        return
    if name.startswith("TimeInterval_"):
        raise FormulaError("invalid", node.pos, f"unknown constant {name!r} (the constants are "
                                                f"{', '.join(TIME_INTERVALS)})")
    if name not in assigned:
        raise FormulaError("invalid", node.pos, f"variable {name!r} is used before it is assigned")


# ---------------------------------------------------------------- evaluation

@dataclass
class Environment:
    """What an evaluation sees. ``samples`` answers last/window/count/begin (autoscale_samples.SampleView)."""
    now: datetime                       # aware UTC: time() and look-back windows end here
    target_dedicated: int = 0           # the pool's current targets: $TargetDedicatedNodes starts there
    target_low_priority: int = 0
    current: dict = field(default_factory=dict)   # "$CurrentDedicatedNodes" -> value, for direct reads
    samples: object = None
    time_scale: float = 1.0             # formula seconds per wall second for sample look-backs
    rand: object = random.random


@dataclass
class Outcome:
    results: str
    target_dedicated: int = None        # None when the evaluation failed
    target_low_priority: int = None
    deallocation: str = DEFAULT_DEALLOCATION
    error: FormulaError = None

    def run(self, timestamp):
        """The AutoScaleRun wire object; on failure the service still shows results (the starting values)."""
        run = {"timestamp": timestamp, "results": self.results}
        if self.error is not None:
            run["error"] = self.error.run_error()
        return run


class _Stop(Exception):
    pass


def evaluate(formula, env):
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
        self.service = {"$TargetDedicatedNodes": float(env.target_dedicated),
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
        except _Stop:
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
                a, b = _comparable(left), _comparable(right)
                return 1.0 if {"<": a < b, "<=": a <= b, "==": a == b, ">=": a >= b, ">": a > b,
                               "!=": a != b}[op] else 0.0
        elif kinds == ("double", "double"):
            return _arith(op, left, right)
        elif kinds == ("doubleVec", "double"):
            return Vec(_arith(op, x, right) for x in left)
        elif kinds == ("doubleVec", "doubleVec"):
            if len(left) != len(right):
                raise FormulaError("runtime", node.pos, f"{op!r} on doubleVecs of different lengths "
                                                        f"({len(left)} and {len(right)})")
            return Vec(_arith(op, x, y) for x, y in zip(left, right))
        elif kinds == ("double", "timeinterval") and op == "*":
            return Interval(left * right.seconds)
        elif kinds == ("timeinterval", "double") and op in ("*", "/"):
            return Interval(_arith(op, left.seconds, right))
        elif kinds == ("timeinterval", "timeinterval") and op in ("+", "-"):
            return Interval(_arith(op, left.seconds, right.seconds))
        elif op == "+" and kinds == ("timestamp", "timeinterval"):
            return Timestamp(left.dt + timedelta(seconds=right.seconds))
        elif op == "+" and kinds == ("timeinterval", "timestamp"):
            return Timestamp(right.dt + timedelta(seconds=left.seconds))
        elif op == "-" and kinds == ("timestamp", "timestamp"):
            return Interval((left.dt - right.dt).total_seconds())
        raise FormulaError("runtime", node.pos, f"operator {op!r} is not defined for {kinds[0]} and {kinds[1]}")

    # -- functions

    def call(self, node):
        name, pos = node.name, node.pos
        if name == "stop":
            raise _Stop()
        if name == "rand":
            return float(self.env.rand())
        args = [self.value(arg) for arg in node.args]
        if name == "time":
            if not args:
                return Timestamp(self.env.now)
            if not isinstance(args[0], str):
                raise FormulaError("runtime", pos, f"time() takes a date string, not a {type_name(args[0])}")
            return Timestamp(_parse_time(args[0], pos))
        if name == "val":
            vector, index = args
            if not isinstance(vector, Vec) or not isinstance(index, float):
                raise FormulaError("runtime", pos, f"val() takes (doubleVec, double), not ({type_name(vector)}, "
                                                   f"{type_name(index)})")
            if not 0 <= index < len(vector):
                raise FormulaError("runtime", pos, f"val(): index {render(index)} is outside the vector "
                                                   f"(length {len(vector)})")
            return vector[int(index)]
        if name == "percentile":
            vector, percent = args
            if not isinstance(vector, (Vec, float)) or not isinstance(percent, float):
                raise FormulaError("runtime", pos, f"percentile() takes (doubleVec, double), not "
                                                   f"({type_name(vector)}, {type_name(percent)})")
            values = sorted(_flatten([vector], pos, name))
            if not values:
                raise FormulaError("runtime", pos, "percentile() of an empty vector")
            if not 0 <= percent <= 100:
                raise FormulaError("runtime", pos, f"percentile(): {render(percent)} is not between 0 and 100")
            # [inferred] nearest-rank percentile
            return values[min(len(values) - 1, max(0, math.ceil(percent / 100 * len(values)) - 1))]
        if name in ("lg", "ln", "log"):
            function = {"lg": math.log2, "ln": math.log, "log": math.log10}[name]
            if len(args) == 1 and isinstance(args[0], float):
                return _log(function, args[0])
            return Vec(_log(function, v) for v in _flatten(args, pos, name))
        values = _flatten(args, pos, name)
        if name == "len":
            return float(len(values))
        if name == "sum":
            return float(math.fsum(values))
        if name == "norm":
            return math.sqrt(math.fsum(v * v for v in values))
        if not values:
            raise FormulaError("runtime", pos, f"{name}() of an empty list (a GetSample on a new pool can be "
                                               f"empty: write {name}(0, ...) or check GetSamplePercent first)")
        if name == "avg":
            return math.fsum(values) / len(values)
        if name == "max":
            return max(values)
        if name == "min":
            return min(values)
        if name == "range":
            return max(values) - min(values)
        if name == "std":
            if len(values) < 2:
                raise FormulaError("runtime", pos, "std() needs at least 2 values (it is the sample standard "
                                                   "deviation)")
            mean = math.fsum(values) / len(values)
            return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
        raise AssertionError(name)

    # -- sampled variables

    def method(self, node):
        metric = METRIC_ALIASES.get(service_name(node.target.name), service_name(node.target.name))
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


def _comparable(value):
    if isinstance(value, Timestamp):
        return value.dt
    if isinstance(value, Interval):
        return value.seconds
    return value


def _arith(op, a, b):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:      # IEEE division, as the service's doubles: 1/0 = inf, 0/0 = nan
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _log(function, value):
    if value < 0 or math.isnan(value):
        return math.nan
    return -math.inf if value == 0 else function(value)


def _flatten(args, pos, name):
    values = []
    for arg in args:
        if isinstance(arg, float):
            values.append(arg)
        elif isinstance(arg, Vec):
            values.extend(arg)
        else:
            raise FormulaError("runtime", pos, f"{name}() takes doubles and doubleVecs, not a {type_name(arg)}")
    return values


def _parse_time(text, pos):
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
