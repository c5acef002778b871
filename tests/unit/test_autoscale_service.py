"""The emulator's autoscale service: samples, runs on the (scaled) interval, resizing with the
deallocation option, and the checks at create / enable (autoscale.py, scheduler.py)."""

import pytest

import create_pool_job
from batch_emulator.service import autoscale, scheduler
from batch_emulator.service.errors import BatchServiceError
from batch_emulator.service.state import Account, Job, Pool, Task
from batch_emulator.service.states import ExecutionResult, JobState, NodeState, TaskState
from batch_emulator.service.validation import check_autoscale, validate_pool

T0 = 1_800_000_000.0
SCALE = 60.0            # 5-minute interval: 5 s; samples every 0.5 s, readable 0.5 s later


class Clock:
    """Stands in for the time module in scheduler.py."""

    def __init__(self, now=T0):
        self.now = now

    def time(self):
        return self.now

    def monotonic(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(scheduler, "time", fake)
    return fake


def autoscale_pool(formula, max_nodes=8, interval="PT5M", **spec):
    account = Account(name="a", root="/nonexistent", max_nodes=max_nodes, time_scale=SCALE)
    pool = Pool(id="p1", spec={"enableInterNodeCommunication": True, **spec}, enable_auto_scale=True,
                auto_scale_formula=formula, auto_scale_interval=interval)
    account.pools["p1"] = pool
    return account, pool


def add_job(account, *tasks, **spec):
    job = Job(id="j1", spec={"id": "j1", "poolInfo": {"poolId": "p1"}, **spec})
    for task in tasks:
        job.tasks[task.id.lower()] = task
    account.jobs["j1"] = job
    return job


def mpi_task(task_id, instances=2, **spec):
    return Task(id=task_id, job_key="j1",
                spec={"id": task_id, "multiInstanceSettings": {"numberOfInstances": instances}, **spec})


def advance(account, clock, seconds, step=0.1):
    """Tick the scheduler for `seconds`; nodes finish starting at once."""
    end = clock.now + seconds
    actions = []
    while clock.now < end:
        clock.now = round(clock.now + step, 6)
        actions += scheduler.tick(account)
        for pool in account.pools.values():
            for node in pool.nodes.values():
                if node.state == "creating":
                    node.set_state(NodeState.IDLE)
    return actions


def finish(account, job, task, result="success"):
    task.transition(TaskState.COMPLETED)
    task.execution["result"] = result
    scheduler.release_nodes(account, job.id.lower(), task)


def live_nodes(pool):
    return [n for n in pool.nodes.values() if n.state != "leavingpool"]


# ---------------------------------------------------------------- samples

def test_samples_are_taken_every_slot_and_readable_after_the_delay():
    history = autoscale.SampleHistory(SCALE, T0)
    values = {name: 0 for name in autoscale.METRICS}
    history.record(T0 + 2.2, values)                   # the scheduler ran late: every 0.5 s slot is filled
    assert [round(t - T0, 3) for t, _ in history.samples] == [0, 0.5, 1.0, 1.5, 2.0]
    assert history.next_due == pytest.approx(T0 + 2.5)
    view = history.view(T0 + 2.2)
    assert view.count("$PendingTasks") == 4           # the one taken at 2.0 is readable from 2.5 on
    assert view.begin("$PendingTasks") == autoscale.as_datetime(T0)


def test_history_is_bounded_and_restarts_after_a_long_stall():
    history = autoscale.SampleHistory(SCALE, T0)
    values = {name: 1 for name in autoscale.METRICS}
    history.record(T0 + 10_000, values)
    assert len(history.samples) == history.samples.maxlen == 360     # 3 hours of 30-s samples
    assert history.next_due > T0 + 10_000


def test_task_metrics_count_instances_dependencies_and_results():
    account, pool = autoscale_pool("x = 1;")
    waiting = Task(id="w", job_key="j1", spec={"id": "w", "dependsOn": {"taskIds": ["a"]}})
    running = mpi_task("r", 3)
    running.state = TaskState.RUNNING
    preparing = Task(id="p", job_key="j1", spec={"id": "p"})
    preparing.state = TaskState.PREPARING
    done = Task(id="a", job_key="j1", spec={"id": "a"})
    done.state, done.execution["result"] = TaskState.COMPLETED, ExecutionResult.FAILURE
    add_job(account, mpi_task("m", 4), Task(id="s", job_key="j1", spec={"id": "s"}), waiting, running, preparing,
            done, usesTaskDependencies=True)
    values = autoscale.current_values(account, pool)
    assert (values["$ActiveTasks"], values["$RunningTasks"], values["$PendingTasks"]) == (5, 4, 9)
    assert (values["$SucceededTasks"], values["$FailedTasks"]) == (0, 1)
    assert values["$TaskSlotsPerNode"] == 1 and values["$CurrentDedicatedNodes"] == 0


def test_a_terminating_job_still_counts_its_running_tasks_only():
    account, pool = autoscale_pool("x = 1;")
    running = Task(id="r", job_key="j1", spec={"id": "r"})
    running.state = TaskState.RUNNING
    job = add_job(account, running, Task(id="a", job_key="j1", spec={"id": "a"}))
    job.state = JobState.TERMINATING
    values = autoscale.current_values(account, pool)
    assert (values["$ActiveTasks"], values["$RunningTasks"]) == (0, 1)


# ---------------------------------------------------------------- runs

def start_now(account, pool):
    """Enable autoscale and run the formula at once (as the first scheduled run would, an interval later)."""
    autoscale.start(account, pool, T0)
    autoscale.run(account, pool, T0)


def test_first_run_one_scaled_interval_after_enabling_then_every_interval(clock):
    # Not at once: a pool read right after enableautoscale has no autoScaleRun (Azure/azure-sdk-assets,
    # python/sdk/batch/azure-batch/tests/recordings/test_batch.pyTestBatchtest_batch_scale_pools[sync].json).
    account, pool = autoscale_pool("$TargetDedicatedNodes = $PendingTasks.Count();")
    autoscale.start(account, pool, T0)
    assert pool.auto_scale_run is None and pool.target_dedicated == 0
    assert pool.next_evaluation == T0 + 5
    advance(account, clock, 4.9)
    assert pool.auto_scale_run is None
    advance(account, clock, 0.2)
    assert pool.auto_scale_run["results"].startswith("$TargetDedicatedNodes=9;")   # samples from the first tick on
    assert pool.next_evaluation == T0 + 10


def test_a_failed_run_keeps_the_pool_as_it_is(clock):
    account, pool = autoscale_pool("$TargetDedicatedNodes = 2;")
    start_now(account, pool)
    pool.auto_scale_formula = "$TargetDedicatedNodes = avg($PendingTasks.GetSample(TimeInterval_Hour, 90));"
    advance(account, clock, 5.1)
    assert pool.target_dedicated == 2 and len(live_nodes(pool)) == 2
    error = pool.auto_scale_run["error"]
    assert error["code"] == "InsufficientSampleData"
    assert pool.auto_scale_run["results"] == "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;" \
                                             "$NodeDeallocationOption=requeue"


def test_max_nodes_caps_the_targets_but_not_the_results(clock):
    account, pool = autoscale_pool("$TargetDedicatedNodes = 12; $TargetLowPriorityNodes = 3;", max_nodes=4)
    start_now(account, pool)
    assert (pool.target_dedicated, pool.target_low_priority) == (4, 0)
    assert pool.auto_scale_run["results"].startswith("$TargetDedicatedNodes=12;$TargetLowPriorityNodes=3;")
    advance(account, clock, 0.3)
    assert len(live_nodes(pool)) == 4


def test_low_priority_targets_get_low_priority_nodes(clock):
    account, pool = autoscale_pool("$TargetDedicatedNodes = 1; $TargetLowPriorityNodes = 2;")
    start_now(account, pool)
    advance(account, clock, 0.3)
    assert sorted(n.id[-1] for n in live_nodes(pool)) == ["d", "p", "p"] and pool.allocation_state == "steady"


def test_enable_is_limited_to_once_per_scaled_30_seconds():
    account, pool = autoscale_pool("x = 1;")
    assert not autoscale.enable_too_soon(account, pool, T0)
    pool.last_enable = T0
    assert autoscale.enable_too_soon(account, pool, T0 + 0.49)
    assert not autoscale.enable_too_soon(account, pool, T0 + 0.5)


def test_interval_follows_the_pool_and_the_scale():
    account, pool = autoscale_pool("x = 1;", interval="PT1H")
    assert autoscale.interval_seconds(account, pool) == 60
    pool.auto_scale_interval = None                                  # the default, 15 minutes
    assert autoscale.interval_seconds(account, pool) == 15


# ---------------------------------------------------------------- resizing

def test_the_projects_formula_follows_an_mpi_task_and_shrinks_to_zero(clock):
    account, pool = autoscale_pool(create_pool_job.autoscale_formula(5))
    start_now(account, pool)
    assert pool.target_dedicated == 0
    job = add_job(account, mpi_task("mpi", 2))
    advance(account, clock, 5.1)                      # the next run sees the 2 instances pending
    assert pool.target_dedicated == 2
    advance(account, clock, 0.3)
    task = job.tasks["mpi"]
    assert task.state == "running" and len(task.node_ids) == 2
    finish(account, job, task)
    advance(account, clock, 4.5)                      # no run until the interval is up: the nodes stay
    assert pool.target_dedicated == 2 and len(pool.nodes) == 2
    advance(account, clock, 0.2)                      # nothing pending in the last 3 (scaled) minutes
    assert pool.target_dedicated == 0 and "$NodeDeallocationOption=taskcompletion" in pool.auto_scale_run["results"]
    advance(account, clock, 0.5)
    assert not pool.nodes


def test_never_above_the_maximum_however_many_tasks_wait(clock):
    account, pool = autoscale_pool(create_pool_job.autoscale_formula(2))
    start_now(account, pool)
    job = add_job(account, *[mpi_task(f"t{i}", 2) for i in range(4)])
    advance(account, clock, 5.2)
    assert pool.target_dedicated == 2 and "pendingNow=8" in pool.auto_scale_run["results"]
    assert len(live_nodes(pool)) == 2
    assert sum(t.state == "running" for t in job.tasks.values()) == 1


def test_taskcompletion_lets_the_task_finish_and_gives_the_node_no_new_task(clock):
    account, pool = autoscale_pool("$TargetDedicatedNodes = 2; $NodeDeallocationOption = taskcompletion;")
    start_now(account, pool)
    job = add_job(account, Task(id="a", job_key="j1", spec={"id": "a"}), Task(id="b", job_key="j1", spec={"id": "b"}))
    advance(account, clock, 0.3)
    assert {t.state for t in job.tasks.values()} == {"running"}
    pool.auto_scale_formula = "$TargetDedicatedNodes = 1; $NodeDeallocationOption = taskcompletion;"
    job.tasks["c"] = Task(id="c", job_key="j1", spec={"id": "c"})
    advance(account, clock, 5.0)
    assert pool.target_dedicated == 1
    retiring = [n for n in pool.nodes.values() if n.retiring]
    assert len(retiring) == 1 and retiring[0].state == "running"
    task_on_it = next(t for t in job.tasks.values() if retiring[0].id in t.node_ids)
    assert task_on_it.stop_reason is None
    finish(account, job, task_on_it)
    advance(account, clock, 0.1)                      # the next tick: its task done, the node leaves...
    assert pool.nodes[retiring[0].id].state == "leavingpool"
    advance(account, clock, scheduler.LEAVING_SECONDS + 0.1)  # ...and is gone once it showed leavingpool long enough
    assert retiring[0].id not in pool.nodes
    assert job.tasks["c"].state == "active"           # the other node is still busy; c waits for it


def test_a_retiring_node_stays_when_the_target_rises_again(clock):
    account, pool = autoscale_pool("$TargetDedicatedNodes = 1; $NodeDeallocationOption = taskcompletion;")
    start_now(account, pool)
    job = add_job(account, Task(id="a", job_key="j1", spec={"id": "a"}))
    advance(account, clock, 0.3)
    pool.auto_scale_formula = "$TargetDedicatedNodes = 0; $NodeDeallocationOption = taskcompletion;"
    advance(account, clock, 5.0)
    [node] = pool.nodes.values()
    assert node.retiring
    pool.auto_scale_formula = "$TargetDedicatedNodes = 1;"
    advance(account, clock, 5.0)
    assert list(pool.nodes.values()) == [node] and not node.retiring and job.tasks["a"].state == "running"


@pytest.mark.parametrize("option, reason", [("requeue", "requeue"), ("terminate", "nodedeallocation")])
def test_requeue_and_terminate_stop_running_tasks_on_removed_nodes(clock, option, reason):
    account, pool = autoscale_pool("$TargetDedicatedNodes = 1;")
    start_now(account, pool)
    job = add_job(account, Task(id="a", job_key="j1", spec={"id": "a"}))
    advance(account, clock, 0.3)
    pool.auto_scale_formula = f"$TargetDedicatedNodes = 0; $NodeDeallocationOption = {option};"
    advance(account, clock, 5.0)
    [node] = pool.nodes.values()
    assert node.state == "leavingpool" and job.tasks["a"].stop_reason == reason


def test_idle_and_broken_nodes_leave_before_busy_ones(clock):
    account, pool = autoscale_pool("$TargetDedicatedNodes = 3;")
    start_now(account, pool)
    job = add_job(account, Task(id="a", job_key="j1", spec={"id": "a"}))
    advance(account, clock, 0.3)
    busy = next(n for n in pool.nodes.values() if n.running)
    broken = next(n for n in pool.nodes.values() if not n.running)
    broken.set_state(NodeState.START_TASK_FAILED)
    pool.auto_scale_formula = "$TargetDedicatedNodes = 1;"       # requeue, but nothing busy needs to go
    advance(account, clock, 5.0)
    assert [n.id for n in live_nodes(pool)] == [busy.id] and job.tasks["a"].stop_reason is None


# ---------------------------------------------------------------- create / enable checks

VM = {"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
      "nodeAgentSKUId": "batch.node.ubuntu 24.04"}


def refusal(func, *args, **kwargs):
    with pytest.raises(BatchServiceError) as caught:
        func(*args, **kwargs)
    return caught.value


# The service's message for each code.
FORMULA_MESSAGES = {"AutoScalingFormulaSyntaxError": "The specified auto-scaling formula has a syntax error.",
                    "InvalidAutoScalingSettings": "The specified auto-scaling settings are not valid."}


@pytest.mark.parametrize("formula, code, detail", [
    ("$TargetDedicatedNodes = min(2, ;", "AutoScalingFormulaSyntaxError", "Line 1, Col 32: expected a value"),
    ("$TargetDedicatedNodes = $CPUPercent.GetSample(1);", "InvalidAutoScalingSettings",
     "$CPUPercent is a resource metric"),
    ("$TargetDedicatedNodes = nodes;", "InvalidAutoScalingSettings", "variable 'nodes' is used before it is assigned"),
])
def test_create_and_enable_refuse_a_bad_formula_with_400(formula, code, detail):
    body = {"id": "p1", "vmSize": "standard_d2s_v3", "virtualMachineConfiguration": VM, "enableAutoScale": True,
            "autoScaleFormula": formula}
    for err in (refusal(validate_pool, body), refusal(check_autoscale, {"autoScaleFormula": formula})):
        assert err.status == 400 and err.code == code
        assert err.message == FORMULA_MESSAGES[code]
        [(key, value)] = err.values
        assert key == "Message" and detail in value
    check_autoscale({"autoScaleFormula": formula}, check_formula=False)     # evaluate reports it in its run


def test_formula_checks_come_after_length_and_interval():
    assert refusal(check_autoscale, {"autoScaleFormula": "x" * 8193}).code == "AutoScaleFormulaTooLong"
    err = refusal(check_autoscale, {"autoScaleFormula": "bad(", "autoScaleEvaluationInterval": "PT1M"})
    assert err.code == "InvalidPropertyValue"
    assert refusal(check_autoscale, {"autoScaleFormula": 5}).code == "InvalidPropertyValue"
