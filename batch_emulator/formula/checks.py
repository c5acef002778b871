"""Autoscale formula static checks: what pool create and enable autoscale refuse before any run.

check(formula) parses the formula and walks its syntax tree for unknown names, wrong argument
counts, variables read before they are assigned, writes to read-only variables, too many
statements and what the emulator cannot evaluate (resource metrics).
"""

from __future__ import annotations

from .functions import FUNCTIONS
from .language import (
    DEALLOCATION_OPTIONS,
    MAX_STATEMENTS,
    METHODS,
    NODE_METRICS,
    RESOURCE_METRICS,
    TASK_METRICS,
    TIME_INTERVALS,
    TIMESTAMP_MEMBERS,
    WRITABLE,
    Arity,
    FormulaError,
    Pos,
    service_name,
)
from .syntax import Binary, Call, Cond, Member, Method, Name, Node, Statement, Unary, parse


def check(formula: str) -> list[Statement]:
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
    assigned: set[str] = set()
    for statement in statements:
        _check_expression(statement.value, assigned)
        if statement.target is not None:
            _check_target(statement.target, statement.pos)
            if service_name(statement.target) is None:
                assigned.add(statement.target)
    return statements


def _check_target(name: str, pos: Pos) -> None:
    canonical = service_name(name)
    if canonical is not None and canonical not in WRITABLE:
        raise FormulaError("invalid", pos, f"{canonical} is read-only; the formula can set only "
                                           "$TargetDedicatedNodes, $TargetLowPriorityNodes and $NodeDeallocationOption")
    if canonical is None and (name in FUNCTIONS or name in TIME_INTERVALS or name in DEALLOCATION_OPTIONS):
        raise FormulaError("invalid", pos, f"{name!r} is a reserved name and cannot be assigned")


def _check_expression(node: Node, assigned: set[str]) -> None:
    """Check ``node`` itself, then its operands left to right: the first problem met is the one reported."""
    if isinstance(node, Name):
        _check_name(node, assigned)
    elif isinstance(node, Call):
        _check_call(node)
    elif isinstance(node, Method):
        _check_method(node, assigned)
    elif isinstance(node, Member):
        _check_member(node)
    for operand in _operands(node):
        _check_expression(operand, assigned)


def _operands(node: Node) -> list[Node]:
    """The sub-expressions to check after ``node``; a method's target is checked with the method itself."""
    if isinstance(node, (Call, Method)):
        return node.args
    if isinstance(node, Member):
        return [node.target]
    if isinstance(node, Unary):
        return [node.operand]
    if isinstance(node, Binary):
        return [node.left, node.right]
    if isinstance(node, Cond):
        return [node.test, node.then, node.other]
    return []


def _check_call(node: Call) -> None:
    if node.name not in FUNCTIONS:
        raise FormulaError("invalid", node.pos, f"unknown function {node.name!r} (the functions are "
                                                f"{', '.join(sorted(FUNCTIONS))})")
    _check_count(node, FUNCTIONS[node.name].arity, f"{node.name}()")


def _check_method(node: Method, assigned: set[str]) -> None:
    target = node.target
    canonical = service_name(target.name) if isinstance(target, Name) else None
    if not isinstance(target, Name) or canonical not in TASK_METRICS + NODE_METRICS + RESOURCE_METRICS:
        shown = target.name if isinstance(target, Name) else "this value"
        raise FormulaError("invalid", node.pos, f"{node.name}() is a method of the sampled service variables "
                                                f"($PendingTasks, $CurrentDedicatedNodes, ...), not of {shown}")
    _check_name(target, assigned, method=True)
    if node.name not in METHODS:
        raise FormulaError("invalid", node.pos, f"unknown method {node.name!r} (the methods are "
                                                f"{', '.join(METHODS)})")
    _check_count(node, METHODS[node.name], f"{canonical}.{node.name}()")


def _check_member(node: Member) -> None:
    if node.name not in TIMESTAMP_MEMBERS:
        raise FormulaError("invalid", node.pos, f"unknown member {node.name!r}; timestamps have "
                                                f"{', '.join(TIMESTAMP_MEMBERS)}")


def _check_count(node: Call | Method, bounds: Arity | None, shown: str) -> None:
    if bounds is None:
        return
    least, most = bounds
    count = len(node.args)
    if count < least or (most is not None and count > most):
        wanted = str(least) if least == most else f"{least} to {most}" if most is not None else f"at least {least}"
        plural = "" if wanted in ("1", "at least 1") else "s"
        raise FormulaError("invalid", node.pos, f"{shown} takes {wanted} argument{plural}, not {count}")


def _check_name(node: Name, assigned: set[str], method: bool = False) -> None:
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
