"""The three scripts end to end, as subprocesses, against the Batch emulator and Azurite."""

import re

import pytest
from azure.batch import models
from azure.storage.blob import ContainerClient

from tests.e2e.conftest import ScriptRunner
from tests.git_repos import git_http_server, served_repository
from tools import local_stack as stack_module

POLL = ("--poll_seconds", "0.3")


def assert_ok(result):
    """Exit code 0; run_script has already checked for tracebacks and printed secrets."""
    assert result.returncode == 0, result.stdout + result.stderr


def run_flow(run_script, ids, **env):
    """create_pool_job.py, send_task.py, then check_task.py --wait; returns check_task's result."""
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, env=env)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    return run_script("check_task.py", "--job_id", ids.job_id, "--wait", *POLL, "--verbose", env=env)


def test_mpi_task_runs_on_two_nodes_and_its_output_comes_back(run_script, ids, local_stack, batch, tmp_path):
    checked = run_flow(run_script, ids)
    assert_ok(checked)
    assert f"Job [{ids.job_id}]: active 0, running 0, completed 1 (succeeded 1, failed 0)" in checked.stdout
    assert f"task [{ids.task_id}]: succeeded (exit code 0)" in checked.stdout
    assert "stdout.txt: from the blob container" in checked.stdout

    stdout = (tmp_path / "outputs" / ids.job_id / ids.task_id / "stdout.txt").read_text()
    assert "MPI pi demo: 4 processes" in stdout
    error = float(re.search(r"pi ~= 3\.14159\d+ error=(\S+)", stdout).group(1))
    assert error < 1e-9
    assert (tmp_path / "outputs" / ids.job_id / ids.task_id / "stderr.txt").exists()

    # Two instances on two distinct nodes: the primary and one subtask.
    task = batch.get_task(ids.job_id, ids.task_id)
    [subtask] = list(batch.list_subtasks(ids.job_id, ids.task_id))
    assert subtask.node_info.node_id != task.node_info.node_id
    # The outputs went through Azurite, under JOB_ID/TASK_ID/.
    container = ContainerClient.from_container_url(stack_module.container_sas_url(local_stack))
    names = {blob.name for blob in container.list_blobs(name_starts_with=f"{ids.job_id}/")}
    assert names == {f"{ids.job_id}/{ids.task_id}/stdout.txt", f"{ids.job_id}/{ids.task_id}/stderr.txt"}

    again = run_script("check_task.py", "--job_id", ids.job_id, "--verbose")
    assert_ok(again)
    assert again.stdout.count("already downloaded") == 2
    assert not list((tmp_path / "outputs").rglob("*.partial"))


def test_failed_program_is_reported_and_its_stderr_downloaded(run_script, ids, local_stack, tmp_path):
    checked = run_flow(run_script, ids, START_COMMAND="/bin/bash -c 'echo the program broke >&2; exit 3'")
    assert checked.returncode == 3, checked.stdout + checked.stderr  # --wait: a task failed
    assert "completed 1 (succeeded 0, failed 1)" in checked.stdout
    assert "FAILED (exit code 3)" in checked.stdout
    assert "    | the program broke" in checked.stdout  # its stderr's last lines, under its FAILED line
    stderr = (tmp_path / "outputs" / ids.job_id / ids.task_id / "stderr.txt").read_text()
    assert "the program broke" in stderr


def test_failed_job_preparation_stops_the_wait_with_the_reason(run_script, ids, local_stack):
    checked = run_flow(run_script, ids, CMD_PREP_TASK="/bin/bash -c 'echo no installer >&2; exit 7'")
    assert checked.returncode == 3
    assert "the job preparation task failed" in checked.stderr and "exit code 7" in checked.stderr
    assert "    | no installer" in checked.stdout
    assert checked.stderr.count("\n") == 1


def test_upload_refused_by_storage_is_reported_and_stdout_read_from_the_node(run_script, ids, local_stack, tmp_path):
    # The SAS looks right (write, not expired) but its signature is wrong: only Azurite can tell. Without
    # list permission send_task.py cannot ask (a SAS that lists is checked: test_storage_credentials.py).
    good = stack_module.container_sas_url(local_stack, permission="rcw")
    forged = re.sub(r"sig=[^&]+", "sig=Zm9yZ2VkIHNpZ25hdHVyZQ%3D%3D", good)
    # The program from a git URL: a local folder would be uploaded by create_pool_job.py, with this SAS too.
    checked = run_flow(run_script, ids, BLOB_CONTAINER_URL=forged, REPOSITORY_URL=f"file://{stack_module.REPO_ROOT}")
    assert checked.returncode == 3, checked.stdout + checked.stderr  # --wait: the task failed (its upload)
    assert "failed 1" in checked.stdout and "FileUpload" in checked.stdout
    assert "stdout.txt: from the node (the blob container refused the SAS" in checked.stdout
    assert "MPI pi demo" in (tmp_path / "outputs" / ids.job_id / ids.task_id / "stdout.txt").read_text()
    assert "Zm9yZ2VkIHNpZ25hdHVyZQ" not in checked.stdout + checked.stderr


def test_create_pool_job_twice_reuses_both(run_script, ids, local_stack):
    first = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    assert_ok(first)
    assert f"Creating pool [{ids.pool_id}]..." in first.stdout
    second = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    assert_ok(second)
    assert f"Pool [{ids.pool_id}] already exists and can run MPI tasks; reusing it." in second.stdout
    assert f"Job [{ids.job_id}] already exists on pool [{ids.pool_id}]; reusing it." in second.stdout


def test_job_on_another_pool_is_refused(run_script, ids, local_stack):
    assert_ok(run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id))
    other = run_script("create_pool_job.py", "--pool_id", ids.pool_id + "-b", "--job_id", ids.job_id)
    assert other.returncode == 1 and f"already exists on pool [{ids.pool_id}]" in other.stderr


def test_pool_that_cannot_run_mpi_is_refused(run_script, ids, local_stack, batch):
    batch.create_pool(models.BatchPoolCreateOptions(
        id=ids.pool_id, vm_size="standard_d2s_v5", target_dedicated_nodes=1,
        virtual_machine_configuration=models.VirtualMachineConfiguration(
            image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts",
                                                         sku="server"),
            node_agent_sku_id="batch.node.ubuntu 24.04")))
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    assert created.returncode == 1 and "cannot run MPI tasks: inter-node communication is off" in created.stderr
    batch.create_job(models.BatchJobCreateOptions(id=ids.job_id, pool_info=models.BatchPoolInfo(pool_id=ids.pool_id)))
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id)
    assert sent.returncode == 1 and "cannot run MPI tasks" in sent.stderr


@pytest.mark.parametrize("image", [
    {"IMAGE_OFFER": "UbuntuServer", "IMAGE_SKU": "18.04-LTS", "NODE_AGENT_SKU_ID": "batch.node.ubuntu 18.04"},
    {"NODE_AGENT_SKU_ID": "batch.node.ubuntu 22.04"},
])
def test_unsupported_image_is_refused_before_creating_the_pool(run_script, ids, local_stack, batch, image):
    result = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, env=image)
    assert result.returncode == 2 and "is not supported by this Batch account" in result.stderr
    assert ids.pool_id not in {pool.id for pool in batch.list_pools(select=["id"])}


@pytest.fixture
def own_run_script(tmp_path):
    """run_script on a stack of its own: check_task.py without --job_id reports every active job of the stack,
    and on the shared one that is whichever tests ran before on this worker (a task's stderr tail it shows
    may hold a traceback another test printed on purpose)."""
    try:
        with stack_module.start_stack(tmp_path / "stack") as stack:
            yield ScriptRunner(stack, tmp_path)
    except stack_module.LocalStackError as error:
        pytest.fail(str(error), pytrace=False)


def test_check_task_lists_every_job_with_one_line_each(own_run_script, ids):
    run_script = own_run_script
    jobs = (ids.job_id, f"{ids.job_id}-2")  # more than one, as on the shared stack
    for job_id in jobs:
        assert_ok(run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", job_id))
    result = run_script("check_task.py")
    assert_ok(result)
    for job_id in jobs:
        assert f"Job [{job_id}]: active 0, running 0, completed 0 (succeeded 0, failed 0)" in result.stdout


@pytest.mark.parametrize("option, words", [(("--max_nodes", "10"), "has at most 5 nodes, not the 10 asked for"),
                                           (("--vm_size", "standard_d4s_v5"), "has standard_d2s_v5 nodes")])
def test_rerun_asking_for_another_pool_size_is_refused(run_script, ids, option, words):
    assert_ok(run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id))
    again = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, *option)
    assert again.returncode == 1 and words in again.stderr


def test_job_id_in_another_case_still_brings_the_outputs_back(run_script, ids, tmp_path):
    assert_ok(run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id))
    sent = run_script("send_task.py", "--job_id", ids.job_id.upper(), "--task_id", ids.task_id)
    assert_ok(sent)
    assert f"to job [{ids.job_id}]" in sent.stdout  # the job's own spelling, used for the blob path
    checked = run_script("check_task.py", "--wait", *POLL, "--job_id", ids.job_id, "--verbose")
    assert_ok(checked)
    assert "stdout.txt: from the blob container" in checked.stdout


def test_wait_on_a_job_without_tasks_ends(run_script, ids):
    assert_ok(run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id))
    checked = run_script("check_task.py", "--job_id", ids.job_id, "--wait", *POLL, timeout=30)
    assert_ok(checked)
    assert "no tasks in this job" in checked.stdout


def test_wait_stops_when_the_jobs_pool_is_gone(run_script, ids, batch):
    batch.create_job(models.BatchJobCreateOptions(id=ids.job_id, pool_info=models.BatchPoolInfo(pool_id=ids.pool_id)))
    batch.create_task(ids.job_id, models.BatchTaskCreateOptions(id=ids.task_id, command_line="/bin/true"))
    checked = run_script("check_task.py", "--job_id", ids.job_id, "--wait", *POLL, timeout=30)
    assert checked.returncode == 1
    assert f"its pool [{ids.pool_id}] does not exist, so its tasks cannot start" in checked.stderr


def test_repository_credentials_are_not_printed(run_script, ids, tmp_path):
    served_repository(tmp_path / "served", "me/repo.git")
    with git_http_server(tmp_path / "served") as port:  # a real remote on loopback, probed with git ls-remote
        result = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id,
                            env={"REPOSITORY_URL": f"http://me:ghp_SECRETTOKEN@127.0.0.1:{port}/me/repo.git"})
    assert_ok(result)
    assert f"clones http://127.0.0.1:{port}/me/repo.git" in result.stdout
    assert "SECRETTOKEN" not in result.stdout + result.stderr


def test_custom_preparation_command_is_described_as_such(run_script, ids):
    result = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id,
                        env={"CMD_PREP_TASK": "/bin/true"})
    assert_ok(result)
    assert "its preparation task runs CMD_PREP_TASK on each node." in result.stdout
