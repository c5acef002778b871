"""Which operations the formula evaluator defines, and in which order the static checks report problems.

The operators are one table (batch_emulator/formula/operators.py); these tests write out the
documented operations table on their own and try every operator on every pair of types, so a
pair the table gains or loses fails here. The checks walk each expression before its operands,
left to right: of two problems, the first one met is the one reported.
"""

from datetime import datetime, timezone

import pytest

from batch_emulator.formula import Environment, FormulaError, check, evaluate
from batch_emulator.service.autoscale import SampleHistory

NOW = datetime(2026, 11, 23, 10, 30, 0, tzinfo=timezone.utc)

# One value of each type, as a formula writes it ($PendingTasks.GetSample(2) is a doubleVec of length 2).
VALUES = {
    "double": "2",
    "doubleVec": "$PendingTasks.GetSample(2)",
    "string": '"a"',
    "timestamp": 'time("2026-01-01T00:00:00Z")',
    "timeinterval": "TimeInterval_Minute",
}
ARITHMETIC = ("+", "-", "*", "/")
COMPARISONS = ("<", "<=", "==", ">=", ">", "!=")
DEFINED = (
    {(op, kind, kind) for op in COMPARISONS for kind in ("double", "string", "timestamp", "timeinterval")}
    | {(op, left, right) for op in ARITHMETIC
       for left, right in (("double", "double"), ("doubleVec", "double"), ("doubleVec", "doubleVec"))}
    | {("*", "double", "timeinterval"), ("*", "timeinterval", "double"), ("/", "timeinterval", "double"),
       ("+", "timeinterval", "timeinterval"), ("-", "timeinterval", "timeinterval"),
       ("+", "timestamp", "timeinterval"), ("+", "timeinterval", "timestamp"), ("-", "timestamp", "timestamp")}
)


def environment():
    samples = SampleHistory(60.0, NOW.timestamp())
    for index in range(4, -1, -1):       # five samples, 30 s (formula time) apart; the newest is not readable yet
        samples.samples.append((NOW.timestamp() - index * 0.5, (2.0,) * 10))
    return Environment(now=NOW, samples=samples.view(NOW.timestamp()), time_scale=60.0)


def outcome_of(expression):
    return evaluate(f"x = {expression};", environment())


@pytest.mark.parametrize("op", ARITHMETIC + COMPARISONS)
@pytest.mark.parametrize("left", VALUES)
@pytest.mark.parametrize("right", VALUES)
def test_an_operator_is_defined_for_exactly_the_documented_type_pairs(op, left, right):
    outcome = outcome_of(f"{VALUES[left]} {op} {VALUES[right]}")
    if (op, left, right) in DEFINED:
        assert outcome.error is None, outcome.error
        assert outcome.results.startswith("$TargetDedicatedNodes=0;") and ";x=" in outcome.results
    else:
        assert outcome.error is not None and outcome.error.run_code == "AutoScalingFormulaEvaluationError"
        assert outcome.error.text == f"operator {op!r} is not defined for {left} and {right}"
        assert outcome.results == "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"


@pytest.mark.parametrize("op", ["-", "!"])
@pytest.mark.parametrize("kind", VALUES)
def test_a_unary_operator_is_defined_for_doubles_and_minus_for_timeintervals(op, kind):
    outcome = outcome_of(f"{op}{VALUES[kind]}")
    if kind == "double" or (op, kind) == ("-", "timeinterval"):
        assert outcome.error is None, outcome.error
    else:
        assert outcome.error is not None and outcome.error.text == f"unary {op!r} is not defined for a {kind}"


@pytest.mark.parametrize("expression, shown", [
    ("2 - 3 * 2", "-4"),
    ("$PendingTasks.GetSample(2) - 3", "[-1,-1]"),
    ("$PendingTasks.GetSample(2) * $PendingTasks.GetSample(2)", "[4,4]"),
    ("TimeInterval_Hour / 8", "00:07:30"),
    ('time("2026-01-01T00:00:00Z") - time("2026-01-01T00:01:30Z")', "-00:01:30"),
    ('"b" > "a"', "1"), ("TimeInterval_Second != TimeInterval_Minute", "1"),
    ('time("2026-01-01") == time("2026-01-01T00:00:00Z")', "1"),
])
def test_operations_give_the_values_the_table_says(expression, shown):
    outcome = outcome_of(expression)
    assert outcome.error is None, outcome.error
    assert outcome.results.endswith(f";x={shown}")


def test_sampled_variables_without_a_sample_history_are_insufficient_data():
    outcome = evaluate("p = $PendingTasks.GetSamplePeriod(); x = $PendingTasks.Count();", Environment(now=NOW))
    assert outcome.error is not None and outcome.error.run_code == "InsufficientSampleData"
    assert outcome.error.detail == "Line 1, Col 56: $PendingTasks has no samples: the evaluation has no sample history"


@pytest.mark.parametrize("formula, detail", [
    ("x = maximum(y);", "Line 1, Col 5: unknown function 'maximum'"),
    ("x = max(y, nosuch());", "Line 1, Col 9: variable 'y' is used before it is assigned"),
    ("x = max(1, nosuch(y));", "Line 1, Col 12: unknown function 'nosuch'"),
    ("x = $PendingTasks.Average(nosuch());", "Line 1, Col 19: unknown method 'Average'"),
    ("x = $PendingTasks.GetSample(y, 1, 2, 3);", "Line 1, Col 19: $PendingTasks.GetSample() takes 1 to 3 arguments"),
    ("x = time(y).hours;", "Line 1, Col 13: unknown member 'hours'"),
    ("x = -y + (z ? 1 : 2);", "Line 1, Col 6: variable 'y' is used before it is assigned"),
    ("x = 1 ? y : z;", "Line 1, Col 9: variable 'y' is used before it is assigned"),
    ("$CurrentDedicatedNodes = y;", "Line 1, Col 26: variable 'y' is used before it is assigned"),
    ("y = 1; $CurrentDedicatedNodes = y;", "Line 1, Col 8: $CurrentDedicatedNodes is read-only"),
])
def test_checks_report_an_expression_before_its_operands_left_to_right(formula, detail):
    with pytest.raises(FormulaError) as caught:
        check(formula)
    assert caught.value.detail.startswith(detail)
