"""check_task.py --job_id J --node_logs TASK end to end against the emulator and Azurite (issue 21): the nodes upload
their service logs to the blob container, check_task.py waits for them (they come after the service's answer) and
downloads them into outputs/J/TASK/node-logs/NODE/, for a task that ran and for one whose job preparation failed
on its node (so it never ran). run_script fails a test whose script printed a key or a SAS signature."""

import uuid
from pathlib import Path

import pytest
from azure.batch import models

from tests.conftest import wait_for

VM = models.VirtualMachineConfiguration(
    image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
    node_agent_sku_id="batch.node.ubuntu 24.04")


@pytest.fixture(scope="module")
def pool(local_stack):
    """A fixed pool of one node (its files stay with it after the tasks), shared by this module's tests."""
    from tests.e2e.conftest import batch_client

    client = batch_client(local_stack)
    pool_id = f"pool-check-node-logs-{uuid.uuid4().hex[:8]}"
    client.create_pool(models.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v5", target_dedicated_nodes=1,
                                                     virtual_machine_configuration=VM))
    node_id = wait_for(lambda: next((n.id for n in client.list_nodes(pool_id) if n.state == "idle"), None),
                       what="an idle node")
    yield pool_id, node_id
    client.begin_delete_pool(pool_id, polling_interval=0).result()


def node_logs(run_script, job_id, task_id):
    result = run_script("check_task.py", "--job_id", job_id, "--node_logs", task_id)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_logs_of_the_node_a_task_ran_on_land_under_its_outputs(run_script, batch, ids, pool, tmp_path):
    pool_id, node_id = pool
    batch.create_job(models.BatchJobCreateOptions(id=ids.job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task(ids.job_id, models.BatchTaskCreateOptions(
        id=ids.task_id, command_line="/bin/bash -c 'echo the task said this; echo and this >&2'"))
    wait_for(lambda: batch.get_task(ids.job_id, ids.task_id).state == "completed", what="the task to complete")

    printed = node_logs(run_script, ids.job_id, ids.task_id)
    node_dir = tmp_path / "outputs" / ids.job_id / ids.task_id / "node-logs" / node_id
    task_dir = node_dir / "workitems" / ids.job_id / "job-1" / ids.task_id
    assert (task_dir / "stdout.txt").read_text() == "the task said this\n"
    assert (task_dir / "stderr.txt").read_text() == "and this\n"
    agent = (node_dir / "agent-logs" / "agent.log").read_text()
    assert f"Task {ids.task_id} of job {ids.job_id} ended: completed, exit code 0" in agent
    assert "sig=" not in agent
    files = sorted(p for p in node_dir.rglob("*") if p.is_file())
    assert f"node [{node_id}]: {len(files)} file(s)" in printed, printed
    assert f"Downloaded {len(files)} log file(s)" in printed


def test_a_task_whose_preparation_failed_gets_the_logs_of_that_node(run_script, batch, ids, pool, tmp_path):
    pool_id, node_id = pool
    batch.create_job(models.BatchJobCreateOptions(
        id=ids.job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id),
        job_preparation_task=models.BatchJobPreparationTask(
            command_line="/bin/bash -c 'echo preparing; echo the preparation broke >&2; exit 3'")))
    batch.create_task(ids.job_id, models.BatchTaskCreateOptions(id=ids.task_id, command_line="/bin/true"))

    def preparation_failed():
        return any(status.job_preparation_task_execution_info is not None
                   and status.job_preparation_task_execution_info.result == "failure"
                   for status in batch.list_job_preparation_and_release_task_status(ids.job_id))
    wait_for(preparation_failed, what="the job preparation task to fail")
    assert batch.get_task(ids.job_id, ids.task_id).state == "active"   # it never ran

    node_logs(run_script, ids.job_id, ids.task_id)
    node_dir = tmp_path / "outputs" / ids.job_id / ids.task_id / "node-logs" / node_id
    prep_dir = node_dir / "workitems" / ids.job_id / "job-1" / "jobpreparation"
    assert (prep_dir / "stdout.txt").read_text() == "preparing\n"
    assert (prep_dir / "stderr.txt").read_text() == "the preparation broke\n"
    agent = (node_dir / "agent-logs" / "agent.log").read_text()
    assert (f"WARN Job preparation task jobpreparation of job {ids.job_id} ended: exit code 3, "
            "failure FailureExitCode") in agent
    assert not (node_dir / "workitems" / ids.job_id / "job-1" / ids.task_id).exists()


def test_an_mpi_task_gets_the_logs_of_each_of_its_nodes(run_script, batch, ids, tmp_path):
    """A multi-instance task over two nodes: the primary's logs and the other node's, whose subtask 1 wrote the
    coordination command's output in its own directory (workitems/JOB/job-1/TASK/1/)."""
    batch.create_pool(models.BatchPoolCreateOptions(
        id=ids.pool_id, vm_size="standard_d2s_v5", target_dedicated_nodes=2, virtual_machine_configuration=VM,
        enable_inter_node_communication=True, task_slots_per_node=1))
    try:
        wait_for(lambda: sum(n.state == "idle" for n in batch.list_nodes(ids.pool_id)) == 2, what="two idle nodes")
        batch.create_job(models.BatchJobCreateOptions(id=ids.job_id,
                                                      pool_info=models.BatchPoolInfo(pool_id=ids.pool_id)))
        coordination = "/bin/bash -c 'echo coordinated on $AZ_BATCH_NODE_ID'"
        batch.create_task(ids.job_id, models.BatchTaskCreateOptions(
            id=ids.task_id, command_line="/bin/bash -c 'echo primary ran'",
            multi_instance_settings=models.MultiInstanceSettings(number_of_instances=2,
                                                                 coordination_command_line=coordination)))
        wait_for(lambda: batch.get_task(ids.job_id, ids.task_id).state == "completed", what="the MPI task to complete")
        primary = batch.get_task(ids.job_id, ids.task_id).node_info.node_id
        other = next(iter(batch.list_subtasks(ids.job_id, ids.task_id))).node_info.node_id

        printed = node_logs(run_script, ids.job_id, ids.task_id)
        assert "Uploading the service logs of 2 node(s)" in printed, printed
        logs = tmp_path / "outputs" / ids.job_id / ids.task_id / "node-logs"
        work = Path("workitems") / ids.job_id / "job-1" / ids.task_id
        assert (logs / primary / work / "stdout.txt").read_text() == f"coordinated on {primary}\nprimary ran\n"
        assert (logs / other / work / "1" / "stdout.txt").read_text() == f"coordinated on {other}\n"
        for node in (primary, other):
            agent = (logs / node / "agent-logs" / "agent.log").read_text()
            assert f"Task {ids.task_id} of job {ids.job_id} ended: completed, exit code 0" in agent, agent
    finally:
        batch.begin_delete_pool(ids.pool_id, polling_interval=0).result()
