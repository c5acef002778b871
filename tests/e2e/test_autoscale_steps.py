"""create_pool_job.py's autoscale steps against the emulator: held pools, enable limits, refusals, --check_formula.

Service answers that are rare locally (TooManyEnableAutoScaleRequests, a 400 from evaluate) come
from the emulator's fault injection, through the same HTTP path as every other answer.
"""

from azure.batch import models

import create_pool_job


def mpi_pool(batch, pool_id, **sizing):
    batch.create_pool(models.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v5", enable_inter_node_communication=True, task_slots_per_node=1,
        virtual_machine_configuration=models.VirtualMachineConfiguration(
            image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
            node_agent_sku_id="batch.node.ubuntu 24.04"), **sizing))


def create(run_script, ids, *extra):
    return run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, *extra)


def test_existing_pool_is_reused_without_a_check_unless_asked(run_script, ids):
    assert create(run_script, ids).returncode == 0
    again = create(run_script, ids)
    assert again.returncode == 0 and "Checking autoscale formula" not in again.stdout
    assert "Enabling the autoscale formula" not in again.stdout


def test_pool_left_held_by_an_interrupted_run_gets_its_formula(run_script, ids, batch):
    mpi_pool(batch, ids.pool_id, enable_auto_scale=True, auto_scale_formula=create_pool_job.HOLD_FORMULA)
    result = create(run_script, ids)
    assert result.returncode == 0, result.stderr
    assert "a run was interrupted before it enabled the autoscale formula" in result.stdout
    assert f"Enabling the autoscale formula on pool [{ids.pool_id}]..." in result.stdout
    assert batch.get_pool(ids.pool_id).auto_scale_formula == create_pool_job.autoscale_formula(5)


def test_check_on_a_fixed_size_pool_says_there_is_no_formula(run_script, ids, batch):
    mpi_pool(batch, ids.pool_id, target_dedicated_nodes=0)
    result = create(run_script, ids, "--check_formula")
    assert result.returncode == 1
    assert "has a fixed size (autoscale is off): it has no formula to check" in result.stderr


def test_enable_limit_is_waited_out(run_script, ids, batch, fault):
    # More refusals than azure-core's own retries of a 503 POST: the script's wait takes over.
    fault("503", "POST", f"/pools/{ids.pool_id}/enableautoscale", code="TooManyEnableAutoScaleRequests",
          retry_after="none", count=4)
    result = create(run_script, ids)
    assert result.returncode == 0, result.stderr
    assert "Batch allows one autoscale change per pool every 30 seconds; retrying in" in result.stdout
    assert batch.get_pool(ids.pool_id).auto_scale_formula == create_pool_job.autoscale_formula(5)


def test_other_enable_refusals_are_not_retried(run_script, ids, fault):
    fault("409", "POST", f"/pools/{ids.pool_id}/enableautoscale", code="PoolBeingResized", count=1)
    result = create(run_script, ids)
    assert result.returncode == 1
    assert "PoolBeingResized" in result.stderr and "retrying" not in result.stdout


def test_formula_refused_by_evaluate_shows_the_services_details(run_script, ids, batch, fault):
    fault("400", "POST", f"/pools/{ids.pool_id}/evaluateautoscale", code="AutoScalingFormulaSyntaxError", count=1)
    result = create(run_script, ids)
    assert result.returncode == 1
    assert f"The service refused the autoscale formula of pool [{ids.pool_id}]: AutoScalingFormulaSyntaxError" \
        in result.stderr
    assert "stays at 0 nodes" in result.stderr
    assert batch.get_pool(ids.pool_id).auto_scale_formula == create_pool_job.HOLD_FORMULA


def test_other_evaluate_refusals_go_to_the_common_handler(run_script, ids, fault):
    fault("409", "POST", f"/pools/{ids.pool_id}/evaluateautoscale", count=1)
    result = create(run_script, ids)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: The service refused the request: OperationInvalidForCurrentState")
