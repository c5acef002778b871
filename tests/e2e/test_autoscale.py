"""Autoscale end to end: create_pool_job.py's formula, evaluated and applied by the Batch emulator.

The emulator runs the autoscale clock --time-scale times faster (default 300: a 5-minute evaluation
interval is 1 s, a 3-minute look-back 0.6 s), so a pool grows and shrinks within seconds. The pool
and its nodes are watched through the SDK while the scripts run as subprocesses.
"""

import concurrent.futures
import subprocess
import sys
from pathlib import Path

import pytest
from azure.batch import models
from azure.core.exceptions import HttpResponseError

import create_pool_job
from tests.conftest import wait_for
from tools import local_stack as stack_module

REPO_ROOT = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.1


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def watch(batch, pool_id, job_id, until, timeout=30.0):
    """Poll the pool, its nodes and the job's tasks until `until(view)`; returns every view seen."""
    views = []

    def look():
        pool = batch.get_pool(pool_id)
        nodes = list(batch.list_nodes(pool_id))
        tasks = {t.id: t.state for t in batch.list_tasks(job_id)}
        views.append({"target": pool.target_dedicated_nodes, "current": pool.current_dedicated_nodes,
                      "nodes": len(nodes), "results": pool.auto_scale_run.results if pool.auto_scale_run else "",
                      "tasks": tasks})
        return until(views[-1])

    wait_for(look, timeout, f"pool {pool_id} and job {job_id} to reach the expected state", interval=POLL_SECONDS)
    return views


def variable(results, name):
    return float(dict(item.split("=", 1) for item in results.split(";"))[name])


def test_pool_grows_to_an_mpi_tasks_instances_and_shrinks_back_to_zero(run_script, ids, batch):
    created = ok(run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id))
    assert f"Checking autoscale formula on pool [{ids.pool_id}]...\n" in created.stdout
    assert "    $TargetDedicatedNodes=0\n" in created.stdout and "    pendingNow=0\n" in created.stdout
    assert f"Enabling the autoscale formula on pool [{ids.pool_id}]..." in created.stdout
    pool = batch.get_pool(ids.pool_id)
    assert pool.auto_scale_formula == create_pool_job.autoscale_formula(5)
    # The first run comes an evaluation interval after enabling, as on the service (no autoScaleRun at once).
    pool = wait_for(lambda: (p := batch.get_pool(ids.pool_id)).auto_scale_run and p, what="the first autoscale run")
    assert pool.auto_scale_run.error is None and pool.current_dedicated_nodes == 0

    ok(run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--nodes", "2"))
    views = watch(batch, ids.pool_id, ids.job_id, lambda v: v["tasks"].get(ids.task_id) == "completed")
    assert max(v["nodes"] for v in views) == 2 and max(v["target"] for v in views) == 2   # the 2 instances
    views = watch(batch, ids.pool_id, ids.job_id, lambda v: v["nodes"] == 0 and v["target"] == 0)
    assert "$NodeDeallocationOption=taskcompletion" in views[-1]["results"]
    task = batch.get_task(ids.job_id, ids.task_id)
    assert task.execution_info.result == "success", task.execution_info


def test_pool_stays_at_its_maximum_with_more_instances_queued_than_nodes(run_script, ids, batch):
    ok(run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--max_nodes", "2"))
    task_ids = [f"{ids.task_id}-{n}" for n in range(3)]
    # Sent together: one after the other, on a machine busy with another test worker, the first task could
    # end before the third is queued, and the formula would never see more instances than nodes.
    with concurrent.futures.ThreadPoolExecutor(len(task_ids)) as senders:
        sent = [senders.submit(run_script, "send_task.py", "--job_id", ids.job_id, "--task_id", task_id, "--nodes", "2")
                for task_id in task_ids]
    for result in sent:
        ok(result.result())
    views = watch(batch, ids.pool_id, ids.job_id,
                  lambda v: len(v["tasks"]) == 3 and set(v["tasks"].values()) == {"completed"}, timeout=40)
    assert all(v["nodes"] <= 2 and v["target"] <= 2 for v in views), [v for v in views if v["nodes"] > 2]
    assert max(v["nodes"] for v in views) == 2
    # The formula saw more pending instances than the maximum and still asked for 2.
    busy = [v["results"] for v in views if v["results"] and variable(v["results"], "pendingNow") > 2]
    assert busy and all(variable(r, "$TargetDedicatedNodes") == 2 for r in busy)
    watch(batch, ids.pool_id, ids.job_id, lambda v: v["nodes"] == 0 and v["target"] == 0)
    assert {batch.get_task(ids.job_id, t).execution_info.result for t in task_ids} == {"success"}


def test_check_formula_shows_what_an_existing_pools_formula_evaluates_to(run_script, ids, batch):
    ok(run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--max_nodes", "3"))
    checked = ok(run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id,
                            "--max_nodes", "3", "--check_formula"))
    lines = checked.stdout.splitlines()
    start = lines.index(f"Checking autoscale formula on pool [{ids.pool_id}]...")
    assert lines[start + 1:start + 5] == ["The formula evaluates to (nothing applied by this check):",
                                          "    $TargetDedicatedNodes=0", "    $TargetLowPriorityNodes=0",
                                          "    $NodeDeallocationOption=taskcompletion"]
    assert "    recentPercent=" in checked.stdout
    assert f"Pool [{ids.pool_id}] already exists and can run MPI tasks; reusing it." in checked.stdout
    assert batch.get_pool(ids.pool_id).auto_scale_formula == create_pool_job.autoscale_formula(3)   # unchanged


# create_pool_job.py with another formula: the project's own is fixed, so the test swaps it in.
WITH_FORMULA = ("import sys, create_pool_job, toolkit.autoscale; formula = sys.argv.pop(1); "
                "toolkit.autoscale.autoscale_formula = create_pool_job.autoscale_formula = "
                "lambda max_nodes, spot=False: formula; "
                "sys.exit(create_pool_job.main(sys.argv[1:]))")


@pytest.mark.parametrize("formula, code, detail", [
    ("$TargetDedicatedNodes = min(5, $PendingTasks.GetSample(1);", "AutoScalingFormulaSyntaxError",
     "Line 1, Col 58: expected ')' to close the argument list, found ';'"),
    ("$TargetDedicatedNodes = avg($PendingTasks.GetSample(TimeInterval_Minute * 10, 70));", "InsufficientSampleData",
     "Insufficient data from data set: $PendingTasks wanted 70%, received 0%"),
])
def test_a_formula_that_fails_to_evaluate_is_refused_with_the_services_message(local_stack, ids, batch, tmp_path,
                                                                               formula, code, detail):
    result = subprocess.run([sys.executable, "-c", WITH_FORMULA, formula, "--pool_id", ids.pool_id,
                             "--job_id", ids.job_id], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=stack_module.script_environment(local_stack, PYTHONPATH=str(REPO_ROOT)))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: The autoscale formula of pool [{ids.pool_id}] fails to evaluate: {code}: ")
    assert detail in result.stderr and "stays at 0 nodes" in result.stderr
    pool = batch.get_pool(ids.pool_id)          # held at 0 nodes, never given the failing formula
    assert pool.auto_scale_formula == create_pool_job.HOLD_FORMULA and pool.target_dedicated_nodes == 0
    assert f"Creating job [{ids.job_id}]" not in result.stdout


def test_the_service_refuses_a_malformed_formula_at_create_and_enable(batch, ids):
    vm = models.VirtualMachineConfiguration(
        image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
        node_agent_sku_id="batch.node.ubuntu 24.04")
    with pytest.raises(HttpResponseError) as caught:
        batch.create_pool(models.BatchPoolCreateOptions(
            id=ids.pool_id, vm_size="standard_d2s_v5", virtual_machine_configuration=vm, enable_auto_scale=True,
            auto_scale_formula="$TargetDedicatedNodes = max(0, $PendingTasks);"))
    err = caught.value
    assert (err.status_code, err.error.code) == (400, "InvalidAutoScalingSettings")
    assert [(d.code, d.message) for d in err.error.details] == [
        ("Message", "Line 1, Col 32: $PendingTasks is a sampled metric: read it with $PendingTasks.GetSample(...)")]
    batch.create_pool(models.BatchPoolCreateOptions(id=ids.pool_id, vm_size="standard_d2s_v5",
                                                    virtual_machine_configuration=vm, enable_auto_scale=True,
                                                    auto_scale_formula=create_pool_job.HOLD_FORMULA))
    with pytest.raises(HttpResponseError) as caught:
        batch.enable_pool_auto_scale(ids.pool_id, models.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula="$TargetDedicatedNodes = 2 +;"))
    assert (caught.value.status_code, caught.value.error.code) == (400, "AutoScalingFormulaSyntaxError")
    assert caught.value.error.message.startswith("The specified auto-scaling formula has a syntax error.")
    run = batch.evaluate_pool_auto_scale(ids.pool_id, models.BatchPoolEvaluateAutoScaleOptions(
        auto_scale_formula="$TargetDedicatedNodes = 2 +;"))
    assert run.error.code == "AutoScalingFormulaSyntaxError"
    assert run.error.error_values[0].value == "Line 1, Col 28: expected a value, found ';'"
    assert run.results == "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
