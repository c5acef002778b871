"""The emulator's tables that several modules read: the formula functions' registry and a fault rule's fields.

The formula's functions are one registry (batch_emulator/formula/functions.py) that the static
checks and the evaluator both read; a fault rule's fields are checked in one documented order,
so a rule with several wrong fields names the same one every time.
"""

from datetime import datetime, timezone

import pytest

from batch_emulator.faults import FaultError, make_rule
from batch_emulator.formula import Environment, FormulaError, check, evaluate
from batch_emulator.formula.functions import FUNCTIONS

NOW = datetime(2026, 11, 23, 10, 30, 0, tzinfo=timezone.utc)


def test_the_checks_list_exactly_the_registrys_functions():
    with pytest.raises(FormulaError) as caught:
        check("x = nosuch(1);")
    assert f"the functions are {', '.join(sorted(FUNCTIONS))})" in caught.value.text


@pytest.mark.parametrize("name", sorted(name for name, f in FUNCTIONS.items() if f.arity is not None))
def test_the_checks_take_each_functions_argument_count_from_the_registry(name):
    least, most = FUNCTIONS[name].arity
    with pytest.raises(FormulaError) as caught:
        check(f"x = {name}({', '.join(['1'] * (most + 1 if most is not None else least - 1))});")
    assert caught.value.kind == "invalid" and f"{name}() takes" in caught.value.text


@pytest.mark.parametrize("formula, shown", [
    ("x = avg(1, 2, 6);", "x=3"),
    ("x = len(lg(1, 2), 5);", "x=3"),
    ("x = norm(3, 4);", "x=5"),
    ("x = range(4, 1, 9);", "x=8"),
    ("x = std(2, 4);", "x=1.41421"),
    ("x = sum(len());", "x=0"),
    ("x = rand();", "x=0.5"),
    ("x = time().hour;", "x=10"),
])
def test_every_function_is_evaluated_by_its_registered_implementation(formula, shown):
    outcome = evaluate(formula, Environment(now=NOW, rand=lambda: 0.5))
    assert outcome.error is None and outcome.results.endswith(f";{shown}")


def test_stop_keeps_what_was_assigned_before_it():
    outcome = evaluate("$TargetDedicatedNodes = 2; stop(); $TargetDedicatedNodes = 5;", Environment(now=NOW))
    assert outcome.error is None and outcome.target_dedicated == 2


@pytest.mark.parametrize("fields, message", [
    ({"kind": "nosuch", "method": "FETCH"}, "kind must be one of"),
    ({"kind": "503", "method": "FETCH", "path": "jobs"}, "method must be one of"),
    ({"kind": "503", "path": "jobs", "when": "during"}, "path must start with"),
    ({"kind": "503", "when": "during", "count": 0}, "when must be before or after"),
    ({"kind": "503", "count": 0, "skip": -1}, "count must be >= 1"),
    ({"kind": "503", "skip": -1, "rate": 2}, "skip must be >= 0"),
    ({"kind": "503", "rate": 2, "seed": "x"}, "rate must be > 0"),
    ({"kind": "503", "seed": "x", "retry_after": -1}, "seed must be an integer"),
    ({"kind": "503", "retry_after": -1, "delay": "long"}, "retry_after must be between"),
    ({"kind": "503", "delay": "long", "code": "Not-Letters"}, "delay must be a number"),
    ({"kind": "503", "code": "Not-Letters"}, "code must be letters only"),
])
def test_a_rule_with_several_wrong_fields_names_the_first_in_field_order(fields, message):
    with pytest.raises(FaultError, match=message):
        make_rule(**fields)


def test_a_rule_holds_its_fields_as_typed_values():
    rule = make_rule("503", method="get", path="/jobs/*", count="3", skip="1", rate="0.5", seed="7", code="Busy")
    assert (rule.method, rule.count, rule.skip, rule.rate, rule.seed, rule.code) == ("GET", 3, 1, 0.5, 7, "Busy")
    assert rule.retry_after == 1 and rule.matches("GET", "/jobs/j1") and not rule.matches("GET", "/pools")
