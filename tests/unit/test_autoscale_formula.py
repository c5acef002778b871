"""The autoscale formula evaluator (batch_emulator/formula/) against worked examples and every error.

The documented formulas are from "Create a formula to automatically scale compute nodes in a
Batch pool"; the expected results strings follow what the service shows (a real pool's
autoScaleRun: "$TargetDedicatedNodes=1;...;$samples=96.6667;$targetVMs=0.5;$tasks=0;cappedPoolSize=3").
"""

import math
from datetime import datetime, timedelta, timezone

import pytest

from batch_emulator import formula as autoscale
from batch_emulator.formula import Environment, FormulaError, check, evaluate
from batch_emulator.service.autoscale import METRICS, SampleHistory

SCALE = 60.0
NOW = datetime(2026, 11, 23, 10, 30, 0, tzinfo=timezone.utc)     # a Monday, 10:30 UTC


def history(minutes, **values):
    """A pool whose samples, every 30 s for the last `minutes` (formula time), all hold `values`."""
    now = NOW.timestamp()
    samples = SampleHistory(SCALE, now)
    row = tuple(values.get(name, 0) for name in METRICS)
    for index in range(int(minutes * 2), -1, -1):
        samples.samples.append((now - index * 30 / SCALE, row))
    return samples


def env(samples=None, **fields):
    samples = samples or SampleHistory(SCALE, NOW.timestamp())
    return Environment(now=NOW, samples=samples.view(NOW.timestamp()), time_scale=SCALE, **fields)


def run(formula, samples=None, **fields):
    outcome = evaluate(formula, env(samples, **fields))
    assert outcome.error is None, outcome.error
    return outcome


def failure(formula, samples=None, **fields):
    outcome = evaluate(formula, env(samples, **fields))
    assert outcome.error is not None, outcome.results
    return outcome.error


def refused(formula):
    with pytest.raises(FormulaError) as caught:
        check(formula)
    return caught.value


# ---------------------------------------------------------------- documented formulas

PENDING_TASKS_PATTERN = """startingNumberOfVMs = 1;
maxNumberofVMs = 25;
pendingTaskSamplePercent = $PendingTasks.GetSamplePercent(180 * TimeInterval_Second);
pendingTaskSamples = pendingTaskSamplePercent < 70 ? startingNumberOfVMs : \
avg($PendingTasks.GetSample(180 * TimeInterval_Second));
$TargetDedicatedNodes=min(maxNumberofVMs, pendingTaskSamples);
$NodeDeallocationOption = taskcompletion;"""


def test_pending_tasks_pattern_starts_a_new_pool_at_the_starting_count():
    outcome = run(PENDING_TASKS_PATTERN)
    assert outcome.target_dedicated == 1 and outcome.deallocation == "taskcompletion"
    assert outcome.results == ("$TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;"
                               "$NodeDeallocationOption=taskcompletion;"
                               "maxNumberofVMs=25;pendingTaskSamplePercent=0;pendingTaskSamples=1;startingNumberOfVMs=1")


@pytest.mark.parametrize("pending, nodes", [(0, 0), (7, 7), (40, 25)])
def test_pending_tasks_pattern_follows_the_average_capped_at_the_maximum(pending, nodes):
    outcome = run(PENDING_TASKS_PATTERN, history(10, **{"$PendingTasks": pending}))
    assert outcome.target_dedicated == nodes
    # 3 minutes of samples every 30 s, the newest 30 s not readable yet: 5 of 6.
    assert "pendingTaskSamplePercent=83.3333;" in outcome.results


TASK_BASED_EXAMPLE = """// Get pending tasks for the past 15 minutes.
$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);
// If we have fewer than 70 percent data points, we use the last sample point, otherwise we use the maximum of \
last sample point and the history average.
$tasks = $samples < 70 ? max(0, $ActiveTasks.GetSample(1)) :\x20
max( $ActiveTasks.GetSample(1), avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));
// If number of pending tasks is not 0, set targetVM to pending tasks, otherwise half of current dedicated.
$targetVMs = $tasks > 0 ? $tasks : max(0, $TargetDedicatedNodes / 2);
// The pool size is capped at 20, if target VM value is more than that, set it to 20.
cappedPoolSize = 3;
$TargetDedicatedNodes = max(1, min($targetVMs, cappedPoolSize));
// Set node deallocation mode - keep nodes active only until tasks finish
$NodeDeallocationOption = taskcompletion;"""


def test_task_based_example_gives_what_a_real_pool_showed():
    outcome = run(TASK_BASED_EXAMPLE, history(30), target_dedicated=1)
    assert outcome.results == ("$TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;"
                               "$NodeDeallocationOption=taskcompletion;"
                               "$samples=96.6667;$targetVMs=0.5;$tasks=0;cappedPoolSize=3")


def test_parallel_tasks_example_rounds_the_target_down():
    formula = """$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);
$tasks = $samples < 70 ? max(0,$ActiveTasks.GetSample(1)) : \
max( $ActiveTasks.GetSample(1),avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));
$cores = $TargetDedicatedNodes * 4;
$extraVMs = (($tasks - $cores) + 3) / 4;
$targetVMs = ($TargetDedicatedNodes + $extraVMs);
$TargetDedicatedNodes = max(0,min($targetVMs,3));
$NodeDeallocationOption = taskcompletion;"""
    outcome = run(formula, history(20, **{"$ActiveTasks": 6}), target_dedicated=1)
    assert "$extraVMs=1.25;" in outcome.results and "$targetVMs=2.25;" in outcome.results
    assert outcome.target_dedicated == 2 and outcome.results.startswith("$TargetDedicatedNodes=2;")


def test_time_based_example_on_a_monday_morning():
    formula = """$curTime = time();
$workHours = $curTime.hour >= 8 && $curTime.hour < 18;
$isWeekday = $curTime.weekday >= 1 && $curTime.weekday <= 5;
$isWorkingWeekdayHour = $workHours && $isWeekday;
$TargetDedicatedNodes = $isWorkingWeekdayHour ? 20:10;
$NodeDeallocationOption = taskcompletion;"""
    outcome = run(formula)
    assert outcome.results == ("$TargetDedicatedNodes=20;$TargetLowPriorityNodes=0;"
                               "$NodeDeallocationOption=taskcompletion;"
                               "$curTime=2026-11-23T10:30:00.000Z;$isWeekday=1;$isWorkingWeekdayHour=1;$workHours=1")


def test_time_zone_offset_uses_the_real_clock():
    outcome = run("$curTime = time() + (-6 * TimeInterval_Hour); h = $curTime.hour; d = $curTime.day;")
    assert outcome.results.endswith(";d=23;h=4")


def test_initial_pool_size_example_holds_then_lets_go():
    formula = """$TargetDedicatedNodes = 4;
lifespan         = time() - time("{created}");
span             = TimeInterval_Minute * 60;
startup          = TimeInterval_Minute * 10;
ratio            = 50;
$TargetDedicatedNodes = (lifespan > startup ? (max($RunningTasks.GetSample(span, ratio), \
$ActiveTasks.GetSample(span, ratio)) == 0 ? 0 : $TargetDedicatedNodes) : 4);"""
    young = formula.format(created=(NOW - timedelta(minutes=2)).strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert run(young).target_dedicated == 4
    old = formula.format(created=(NOW - timedelta(hours=2)).isoformat())
    assert run(old, history(120)).target_dedicated == 0
    assert run(old, history(120, **{"$RunningTasks": 1})).target_dedicated == 4
    err = failure(old, history(20))     # 20 of 60 minutes of samples: below the 50 % asked for
    assert err.run_code == "InsufficientSampleData"


def test_preempted_nodes_example_with_history():
    formula = """maxNumberofVMs = 25;
$TargetDedicatedNodes = min(maxNumberofVMs, $PreemptedNodeCount.GetSample(180 * TimeInterval_Second));
$TargetLowPriorityNodes = min(maxNumberofVMs , maxNumberofVMs - $TargetDedicatedNodes);
$NodeDeallocationOption = taskcompletion;"""
    outcome = run(formula, history(10))
    assert (outcome.target_dedicated, outcome.target_low_priority) == (0, 25)


def test_the_projects_formula_on_a_new_pool_and_with_pending_instances():
    import create_pool_job

    formula = create_pool_job.autoscale_formula(5)
    assert run(formula).target_dedicated == 0                      # no sample yet: 0, not an error
    assert run(formula, history(10, **{"$PendingTasks": 2})).target_dedicated == 2
    assert run(formula, history(10, **{"$PendingTasks": 12})).target_dedicated == 5
    assert run(formula, history(10)).target_dedicated == 0


def test_the_projects_old_formula_failed_on_a_new_pool():
    err = failure("pendingNow = max($PendingTasks.GetSample(1));")
    assert err.run_code == "AutoScalingFormulaEvaluationError"
    assert err.detail.startswith("Line 1, Col 14: max() of an empty list")


# ---------------------------------------------------------------- statements, names, results

def test_comments_line_breaks_and_an_optional_last_semicolon():
    outcome = run("// size\n$TargetDedicatedNodes = 3 // three\n;;\n$TargetLowPriorityNodes=1")
    assert outcome.results == "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=1;$NodeDeallocationOption=requeue"


def test_targets_start_at_the_pools_current_values_and_stay_if_not_set():
    outcome = run("half = $TargetDedicatedNodes / 2; low = $TargetLowPriorityNodes;", target_dedicated=3,
                  target_low_priority=2)
    assert (outcome.target_dedicated, outcome.target_low_priority) == (3, 2)
    assert outcome.results.endswith("half=1.5;low=2")


def test_aliases_and_the_full_name_wins():
    assert run("$TargetDedicated = 4; $TargetLowPriority = 2;").results.startswith(
        "$TargetDedicatedNodes=4;$TargetLowPriorityNodes=2;")
    assert run("$TargetDedicatedNodes = 1; $TargetDedicated = 4;").target_dedicated == 1
    assert run("$TargetDedicated = 4; $TargetDedicatedNodes = 1;").target_dedicated == 1


def test_service_variables_are_matched_case_insensitively():
    outcome = run("$targetDedicatedNodes = min(100, 5); x = $currentdedicatednodes;",
                  current={"$CurrentDedicatedNodes": 2})
    assert outcome.target_dedicated == 5 and outcome.results.endswith("x=2")


def test_user_variables_keep_their_dollar_and_sort_ordinally():
    outcome = run("zeta = 1; $b = 2; Alpha = 3; $a = 4;")
    assert outcome.results.endswith("$a=4;$b=2;Alpha=3;zeta=1")


def test_values_render_as_the_service_shows_them():
    outcome = run('d = 2/3; big = 1234567; v = $PendingTasks.GetSample(3); s = "hi"; i = TimeInterval_Minute * 3; '
                  'j = TimeInterval_Day + TimeInterval_Second / 2; t = time("2026-01-02T03:04:05.678Z"); neg = -0;',
                  history(5, **{"$PendingTasks": 2}))
    shown = dict(item.split("=", 1) for item in outcome.results.split(";")[3:])
    assert shown == {"big": "1.23457e+06", "d": "0.666667", "i": "00:03:00", "j": "1.00:00:00.5000000",
                     "neg": "0", "s": "hi", "t": "2026-01-02T03:04:05.678Z", "v": "[2,2,2]"}


def test_node_metrics_read_directly_give_their_current_value():
    current = {"$CurrentDedicatedNodes": 3, "$CurrentLowPriorityNodes": 1, "$TaskSlotsPerNode": 1,
               "$UsableNodeCount": 2, "$PreemptedNodeCount": 0, "$SampleNodeCount": 4}
    outcome = run("$TargetDedicatedNodes = $CurrentDedicated * 1.1 + $CurrentLowPriorityNodes + $UsableNodeCount "
                  "+ $TaskSlotsPerNode + $PreemptedNodeCount + $SampleNodeCount;", current=current)
    assert outcome.target_dedicated == 11


def test_deallocation_options_bare_or_quoted():
    for option in ("requeue", "terminate", "taskcompletion", "retaineddata"):
        assert run(f"$NodeDeallocationOption = {option};").deallocation == option
    assert run('$NodeDeallocationOption = "TaskCompletion";').deallocation == "taskcompletion"
    assert run("").deallocation == "requeue"


def test_stop_ends_the_evaluation_with_what_was_set():
    outcome = run("$TargetDedicatedNodes = 2; x = 1; stop(); $TargetDedicatedNodes = 9; y = 2;")
    assert outcome.target_dedicated == 2 and outcome.results.endswith("x=1")


def test_conditional_evaluates_only_the_chosen_branch():
    outcome = run("$TargetDedicatedNodes = 1 ? 2 : avg($PendingTasks.GetSample(TimeInterval_Hour, 100));")
    assert outcome.target_dedicated == 2


def test_and_or_short_circuit_and_give_zero_or_one():
    outcome = run("a = 0 && max($PendingTasks.GetSample(1)); b = 2 || max($PendingTasks.GetSample(1)); "
                  "c = 3 && -1; d = 0 || 0; e = !0; f = !5;")
    assert outcome.results.endswith("a=0;b=1;c=1;d=0;e=1;f=0")


def test_target_is_truncated():
    assert run("$TargetDedicatedNodes = 2.9;").target_dedicated == 2


# ---------------------------------------------------------------- operators and types

@pytest.mark.parametrize("expression, shown", [
    ("1 + 2 * 3 - 4 / 2", "5"),
    ("(1 + 2) * 3", "9"),
    ("-2 * -3", "6"),
    ("1 / 0", "inf"),
    ("-1 / 0", "-inf"),
    ("0 / 0", "nan"),
    ("2 < 3", "1"), ("2 <= 2", "1"), ("2 == 3", "0"), ("3 >= 4", "0"), ("3 > 2", "1"), ("3 != 3", "0"),
    ('"abc" < "abd"', "1"), ('"a" == "a"', "1"),
    ("TimeInterval_Minute > TimeInterval_Second * 59", "1"),
    ('time("2026-01-01") < time("2026-01-02")', "1"),
    ("1 < 2 == 1", "1"),
    ("1 ? 2 : 3 ? 4 : 5", "2"),
    ("0 ? 2 : 0 ? 4 : 5", "5"),
    ("$PendingTasks.GetSample(2) * 2 + 1", "[5,5]"),
    ("$PendingTasks.GetSample(2) - $PendingTasks.GetSample(2)", "[0,0]"),
    ("$PendingTasks.GetSample(2) / 4", "[0.5,0.5]"),
    ("2 * TimeInterval_Minute", "00:02:00"),
    ("TimeInterval_Minute * 1.5", "00:01:30"),
    ("TimeInterval_Hour / 4", "00:15:00"),
    ("TimeInterval_Hour - TimeInterval_Minute", "00:59:00"),
    ("-TimeInterval_Second", "-00:00:01"),
    ('time("2026-01-01T00:00:00Z") + TimeInterval_Day', "2026-01-02T00:00:00.000Z"),
    ('TimeInterval_Hour + time("2026-01-01T00:00:00Z")', "2026-01-01T01:00:00.000Z"),
    ('time("2026-01-02") - time("2026-01-01")', "1.00:00:00"),
    ("TimeInterval_Zero + TimeInterval_100ns * 10", "00:00:00.0000010"),
])
def test_operations_of_the_documented_table(expression, shown):
    outcome = run(f"x = {expression};", history(5, **{"$PendingTasks": 2}))
    assert outcome.results.endswith(f";x={shown}")


@pytest.mark.parametrize("expression, words", [
    ("1 + $PendingTasks.GetSample(2)", "operator '+' is not defined for double and doubleVec"),
    ('"a" + 1', "operator '+' is not defined for string and double"),
    ("TimeInterval_Minute + 1", "operator '+' is not defined for timeinterval and double"),
    ("time() - TimeInterval_Minute", "operator '-' is not defined for timestamp and timeinterval"),
    ("time() + time()", "operator '+' is not defined for timestamp and timestamp"),
    ("1 < TimeInterval_Second", "operator '<' is not defined for double and timeinterval"),
    ("$PendingTasks.GetSample(2) < 1", "operator '<' is not defined for doubleVec and double"),
    ('-"a"', "unary '-' is not defined for a string"),
    ("!TimeInterval_Second", "unary '!' is not defined for a timeinterval"),
    ("$PendingTasks.GetSample(2) + $PendingTasks.GetSample(3)", "'+' on doubleVecs of different lengths (2 and 3)"),
    ('"a" ? 1 : 2', "a condition must be a double"),
    ("TimeInterval_Second && 1", "a condition must be a double"),
    ("(1).hour", ".hour needs a timestamp, not a double"),
])
def test_operations_outside_the_table_are_evaluation_errors(expression, words):
    err = failure(f"x = {expression};", history(5))
    assert err.run_code == "AutoScalingFormulaEvaluationError" and words in err.text


# ---------------------------------------------------------------- functions

@pytest.mark.parametrize("expression, shown", [
    ("avg(1, 2, $PendingTasks.GetSample(3))", "2.4"),     # 1, 2, 3, 3, 3
    ("len($PendingTasks.GetSample(3), 7)", "4"),
    ("len()", "0"),
    ("sum($PendingTasks.GetSample(3))", "9"),
    ("sum()", "0"),
    ("max(0, $PendingTasks.GetSample(2))", "3"),
    ("min(5, 2, 9)", "2"),
    ("norm(3, 4)", "5"),
    ("range(1, 7, 4)", "6"),
    ("std(2, 4, 4, 4, 5, 5, 7, 9)", "2.13809"),
    ("lg(8)", "3"), ("ln(1)", "0"), ("log(1000)", "3"), ("log(0)", "-inf"), ("ln(-1)", "nan"),
    ("lg($PendingTasks.GetSample(2))", "[1.58496,1.58496]"),
    ("log(10, 100)", "[1,2]"),
    ("percentile($PendingTasks.GetSample(2) + 0, 50)", "3"),
    ("percentile(lg(1, 2, 4, 8), 75)", "2"),
    ("percentile(lg(1, 2, 4, 8), 0)", "0"),
    ("percentile(lg(1, 2, 4, 8), 100)", "3"),
    ("val(lg(1, 2, 4), 2)", "2"),
    ("val($PendingTasks.GetSample(1), 0)", "3"),
    ('time("Mon, 23 Nov 2026 10:00:00 GMT").weekday', "1"),
    ('time("2026-11-29T23:59:58+01:00").hour', "22"),
    ('time("2026-11-29").weekday', "7"),
    ("time().year + time().month / 100", "2026.11"),
    ("time().minute + time().second", "30"),
])
def test_functions(expression, shown):
    outcome = run(f"x = {expression};", history(5, **{"$PendingTasks": 3}))
    assert outcome.results.endswith(f";x={shown}")


def test_rand_is_between_zero_and_one():
    outcome = run("x = rand(); $TargetDedicatedNodes = x < 1 && x >= 0;")
    assert outcome.target_dedicated == 1
    assert "x=0.25" in evaluate("x = rand();", env(rand=lambda: 0.25)).results


@pytest.mark.parametrize("expression, words", [
    ("avg($PendingTasks.GetSample(1))", "avg() of an empty list"),
    ("min()", "min() of an empty list"),
    ("std(1)", "std() needs at least 2 values"),
    ("val($PendingTasks.GetSample(1), 0)", "val(): index 0 is outside the vector (length 0)"),
    ("val(lg(1, 2), 2)", "val(): index 2 is outside the vector (length 2)"),
    ("val(1, 0)", "val() takes (doubleVec, double), not (double, double)"),
    ("percentile(lg(2, 4), 101)", "percentile(): 101 is not between 0 and 100"),
    ("percentile($PendingTasks.GetSample(1), 50)", "percentile() of an empty vector"),
    ('percentile("a", 5)', "percentile() takes (doubleVec, double)"),
    ('time("yesterday")', "time(): 'yesterday' is not a W3C-DTF or RFC 1123 date"),
    ("time(5)", "time() takes a date string, not a double"),
    ("sum(time())", "sum() takes doubles and doubleVecs, not a timestamp"),
])
def test_function_errors(expression, words):
    err = failure(f"x = {expression};")
    assert err.run_code == "AutoScalingFormulaEvaluationError" and words in err.text


# ---------------------------------------------------------------- samples

def test_get_sample_by_count_returns_the_newest_readable_samples():
    samples = history(1, **{"$PendingTasks": 4})                # 3 samples, the newest not readable yet
    outcome = run("a = $PendingTasks.GetSample(5); b = $PendingTasks.GetSample(1); c = $PendingTasks.GetSample(0); "
                  "n = $PendingTasks.Count();", samples)
    assert outcome.results.endswith("a=[4,4];b=[4];c=[];n=2")


def test_get_sample_by_interval_with_and_without_a_percentage():
    samples = history(4, **{"$RunningTasks": 1})                # 4 minutes of history, 3 minutes asked
    outcome = run("a = len($RunningTasks.GetSample(TimeInterval_Minute * 3)); "
                  "p = $RunningTasks.GetSamplePercent(TimeInterval_Minute * 3); "
                  "b = len($RunningTasks.GetSample(TimeInterval_Minute * 3, 80)); "
                  "q = $RunningTasks.GetSamplePercent(TimeInterval_Minute * 10);", samples)
    assert outcome.results.endswith("a=5;b=5;p=83.3333;q=40")


def test_get_sample_between_two_look_backs_and_timestamps():
    samples = history(10, **{"$ActiveTasks": 2})
    outcome = run("a = $ActiveTasks.GetSample(1 * TimeInterval_Minute, 6 * TimeInterval_Minute); "
                  "p = $ActiveTasks.GetSamplePercent(TimeInterval_Minute, TimeInterval_Minute * 6); "
                  "b = len($ActiveTasks.GetSample($ActiveTasks.HistoryBeginTime(), time(), 50));", samples)
    assert "a=[2,2,2,2,2,2,2,2,2,2]" in outcome.results and "p=100" in outcome.results
    assert "b=19" in outcome.results      # a window (start, end]: the oldest sample is its start


def test_insufficient_samples_fail_as_the_service_words_it():
    err = failure("x = 1;\n  tasks = avg($PendingTasks.GetSample(TimeInterval_Minute * 10, 70));", history(5))
    assert err.run_error() == {
        "code": "InsufficientSampleData", "message": "Autoscale evaluation failed due to insufficient sample data",
        "values": [{"name": "Message", "value": "Line 2, Col 29: Insufficient data from data set: "
                                                "$PendingTasks wanted 70%, received 50%"}]}


def test_a_failed_evaluation_still_shows_the_starting_values():
    outcome = evaluate("$TargetDedicatedNodes = 5; x = avg($PendingTasks.GetSample(1));", env(target_dedicated=2))
    assert outcome.results == "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    assert outcome.target_dedicated is None
    run_object = outcome.run("2026-01-01T00:00:00.000000Z")
    assert run_object["error"]["code"] == "AutoScalingFormulaEvaluationError" and run_object["results"]


def test_sample_methods():
    samples = history(2, **{"$CurrentDedicatedNodes": 1})
    outcome = run("period = $PendingTasks.GetSamplePeriod(); begin = $PendingTasks.HistoryBeginTime(); "
                  "n = $CurrentDedicatedNodes.Count(); nodes = $CurrentDedicatedNodes.GetSample(2);", samples)
    assert "period=00:00:30" in outcome.results and "n=4" in outcome.results and "nodes=[1,1]" in outcome.results
    assert "begin=2026-11-23T10:29:58.000Z" in outcome.results
    err = failure("t = $PendingTasks.HistoryBeginTime();")
    assert "$PendingTasks has no samples yet" in err.text


def test_an_empty_window_wants_nothing():
    assert run("x = len($PendingTasks.GetSample(time(), 100)); p = $PendingTasks.GetSamplePercent(time());").results \
        .endswith("p=100;x=0")


@pytest.mark.parametrize("call, words", [
    ('$PendingTasks.GetSample("a")', "takes (count), (start[, percent]) or (start, end[, percent])"),
    ("$PendingTasks.GetSample(1, TimeInterval_Minute)", "not (double, timeinterval)"),
    ("$PendingTasks.GetSample(TimeInterval_Minute, 70, 1)", "not (timeinterval, double, double)"),
    ("$PendingTasks.GetSamplePercent(TimeInterval_Minute, 70)", "takes (start[, end])"),
])
def test_sample_method_argument_errors(call, words):
    assert words in failure(f"x = {call};").text


# ---------------------------------------------------------------- errors at create / enable

@pytest.mark.parametrize("formula, code, detail", [
    ("$TargetDedicatedNodes = ;", "AutoScalingFormulaSyntaxError", "Line 1, Col 25: expected a value, found ';'"),
    ("$TargetDedicatedNodes = min(1, 2;", "AutoScalingFormulaSyntaxError",
     "Line 1, Col 33: expected ')' to close the argument list, found ';'"),
    ("x = (1 + 2;", "AutoScalingFormulaSyntaxError", "Line 1, Col 11: expected ')' to close '(', found ';'"),
    ("x = 1 2;", "AutoScalingFormulaSyntaxError", "Line 1, Col 7: expected ';' between statements, found '2'"),
    ("x = 1;\ny = 2 +", "AutoScalingFormulaSyntaxError",
     "Line 2, Col 8: expected a value, found the end of the formula"),
    ("x = 1 ? 2;", "AutoScalingFormulaSyntaxError", "expected ':' after the '?' branch of a conditional"),
    ('x = time("2026-01-01);', "AutoScalingFormulaSyntaxError", "Line 1, Col 10: the string is not closed"),
    ("x = {1, 2};", "AutoScalingFormulaSyntaxError", "Line 1, Col 5: '{' is not part of the formula language"),
    ("x = [1];", "AutoScalingFormulaSyntaxError", "'[' is not part of the formula language"),
    ("x = time('2026-01-01');", "AutoScalingFormulaSyntaxError", "strings are written in double quotes"),
    ("/* size */ x = 1;", "AutoScalingFormulaSyntaxError", "Line 1, Col 1: block comments /* */ are not supported"),
    ("x = 1 & 2;", "AutoScalingFormulaSyntaxError", "use && for a logical and"),
    ("x = 1 | 2;", "AutoScalingFormulaSyntaxError", "use || for a logical or"),
    ("x = 5 % 2;", "AutoScalingFormulaSyntaxError", "unexpected character '%'"),
    ("x = $;", "AutoScalingFormulaSyntaxError", "unexpected character '$'"),
    ("x = $PendingTasks.$Count();", "AutoScalingFormulaSyntaxError", "expected a method or member name after '.'"),
    ("x = maximum(1);", "InvalidAutoScalingSettings", "Line 1, Col 5: unknown function 'maximum'"),
    ("x = Max(1);", "InvalidAutoScalingSettings", "unknown function 'Max'"),
    ("x = percentile(1);", "InvalidAutoScalingSettings", "percentile() takes 2 arguments, not 1"),
    ("x = rand(1);", "InvalidAutoScalingSettings", "rand() takes 0 arguments, not 1"),
    ("x = time(1, 2);", "InvalidAutoScalingSettings", "time() takes 0 to 1 arguments, not 2"),
    ("x = lg();", "InvalidAutoScalingSettings", "lg() takes at least 1 argument, not 0"),
    ("x = $PendingTasks.GetSample();", "InvalidAutoScalingSettings",
     "$PendingTasks.GetSample() takes 1 to 3 arguments, not 0"),
    ("x = $PendingTasks.Average();", "InvalidAutoScalingSettings", "unknown method 'Average'"),
    ("x = $PendingTasks.getsample(1);", "InvalidAutoScalingSettings", "unknown method 'getsample'"),
    ("x = 1; y = x.GetSample(1);", "InvalidAutoScalingSettings",
     "GetSample() is a method of the sampled service variables"),
    ("x = $TargetDedicatedNodes.GetSample(1);", "InvalidAutoScalingSettings", "not of $TargetDedicatedNodes"),
    ("x = time().hours;", "InvalidAutoScalingSettings", "unknown member 'hours'"),
    ("x = TimeInterval_Minutes;", "InvalidAutoScalingSettings", "unknown constant 'TimeInterval_Minutes'"),
    ("$PendingTasks = 3;", "InvalidAutoScalingSettings", "$PendingTasks is read-only"),
    ("$CurrentDedicatedNodes = 3;", "InvalidAutoScalingSettings", "$CurrentDedicatedNodes is read-only"),
    ("max = 3;", "InvalidAutoScalingSettings", "'max' is a reserved name"),
    ("TimeInterval_Second = 3;", "InvalidAutoScalingSettings", "'TimeInterval_Second' is a reserved name"),
    ("taskcompletion = 3;", "InvalidAutoScalingSettings", "'taskcompletion' is a reserved name"),
    ("x = y + 1;", "InvalidAutoScalingSettings", "Line 1, Col 5: variable 'y' is used before it is assigned"),
    ("x = x + 1;", "InvalidAutoScalingSettings", "variable 'x' is used before it is assigned"),
    ("$something_useless", "InvalidAutoScalingSettings", "variable '$something_useless' is used before it is assigned"),
    ("$TargetDedicatedNodes = max(0, $PendingTasks);", "InvalidAutoScalingSettings",
     "Line 1, Col 32: $PendingTasks is a sampled metric: read it with $PendingTasks.GetSample(...)"),
    ("x = $CPUPercent.GetSample(1);", "InvalidAutoScalingSettings",
     "Line 1, Col 5: $CPUPercent is a resource metric, which the Batch emulator does not measure"),
    ("x = " + " + ".join(["$WallClockSeconds.Count()"]) + ";", "InvalidAutoScalingSettings", "$WallClockSeconds"),
    ("x = 1;" * 101, "InvalidAutoScalingSettings", "the formula has 101 statements; at most 100 are allowed"),
])
def test_refused_at_create_and_enable(formula, code, detail):
    err = refused(formula)
    assert err.request_code == code and detail in err.detail
    # The evaluate API reports the same problem in the AutoScaleRun instead of refusing the request.
    run_error = evaluate(formula, env()).error.run_error()
    assert run_error["values"] == [{"name": "Message", "value": err.detail}]
    assert run_error["code"] == ("AutoScalingFormulaSyntaxError" if code == "AutoScalingFormulaSyntaxError"
                                 else "AutoScalingFormulaEvaluationError")


def test_a_hundred_statements_are_fine():
    assert len(check("x = 1;" * 100)) == 100


@pytest.mark.parametrize("formula, words", [
    ("$TargetDedicatedNodes = -1;", "Line 1, Col 1: $TargetDedicatedNodes is -1; a node count cannot be negative"),
    ("$TargetLowPriorityNodes = 0/0;", "$TargetLowPriorityNodes is nan; a node count must be a finite number"),
    ("$TargetDedicatedNodes = 1/0;", "$TargetDedicatedNodes is inf"),
    ("$TargetDedicatedNodes = $PendingTasks.GetSample(1);", "$TargetDedicatedNodes must be a double, not a doubleVec"),
    ("$TargetDedicatedNodes = time();", "must be a double, not a timestamp"),
    ("$NodeDeallocationOption = 1;", "$NodeDeallocationOption must be one of requeue, terminate, taskcompletion, "
                                     "retaineddata, not 1"),
    ('$NodeDeallocationOption = "later";', "not later"),
])
def test_results_the_service_cannot_apply(formula, words):
    err = failure(formula)
    assert err.run_code == "AutoScalingFormulaEvaluationError" and words in err.detail


def test_formula_error_codes_and_messages():
    assert autoscale.MESSAGES["AutoScalingFormulaSyntaxError"] == \
        "The specified auto-scaling formula has a syntax error."
    err = FormulaError("samples", (3, 4), "x")
    assert (err.detail, err.run_code, err.request_code) == ("Line 3, Col 4: x", "InsufficientSampleData",
                                                            "InvalidAutoScalingSettings")
    assert math.isclose(autoscale.TIME_INTERVALS["TimeInterval_Week"], 7 * 86400)
