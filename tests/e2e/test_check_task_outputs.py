"""check_task.py's downloads end to end: each task's outputs as it finishes, the record that makes a
re-run cost one request per job (and never skips a missing or truncated file), file modes, the blob
container unreachable, failure reasons in plain words, and the pools view."""

import os
import re
import socket
import time

import pytest
from azure.batch import models

from bench.bench_check_task import CountingProxy
from tests.conftest import wait_for
from toolkit.outputs import RECORD_NAME
from tools import local_stack as stack_module

VM = models.VirtualMachineConfiguration(
    image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
    node_agent_sku_id="batch.node.ubuntu 24.04")


@pytest.fixture(scope="module")
def plain_pool(local_stack):
    """A fixed pool of 2 nodes x 4 slots for plain (not MPI) tasks, shared by this module's tests."""
    from tests.e2e.conftest import batch_client

    client = batch_client(local_stack)
    pool_id = f"pool-check-task-{os.getpid()}"
    client.create_pool(models.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v5", target_dedicated_nodes=2,
                                                     task_slots_per_node=4, virtual_machine_configuration=VM))
    yield pool_id
    client.begin_delete_pool(pool_id, polling_interval=0).result()


def add_job(batch, local_stack, job_id, pool_id, **commands):
    """A job on the pool with one task per keyword (task id = command line); outputs uploaded as send_task.py does."""
    batch.create_job(models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id)))
    for task_id, command in commands.items():
        add_task(batch, local_stack, job_id, task_id.replace("_", "-"), command)


def add_task(batch, local_stack, job_id, task_id, command, **options):
    upload = models.OutputFile(
        file_pattern="../std*.txt",
        destination=models.OutputFileDestination(container=models.OutputFileBlobContainerDestination(
            container_url=stack_module.container_sas_url(local_stack, "cw"), path=f"{job_id}/{task_id}")),
        upload_options=models.OutputFileUploadConfiguration(
            upload_condition=models.OutputFileUploadCondition.TASK_COMPLETION))
    batch.create_task(job_id, models.BatchTaskCreateOptions(id=task_id, command_line=command, output_files=[upload],
                                                            **options))


def gated(flag, before="started", after="finished"):
    """A command that prints `before`, waits until the file `flag` exists, then prints `after`."""
    return f"/bin/bash -c 'echo {before}; while [ ! -e {flag} ]; do sleep 0.05; done; echo {after}'"


def task_state(batch, job_id, task_id):
    return batch.get_task(job_id, task_id, select=["state"]).state


def wait_completed(batch, job_id, *task_ids):
    wait_for(lambda: all(task_state(batch, job_id, t) == "completed" for t in task_ids), timeout=60,
             what=f"tasks {task_ids} to complete")


def test_finished_task_outputs_come_while_another_task_runs(run_script, ids, local_stack, batch, plain_pool, tmp_path):
    flag = tmp_path / "go"
    add_job(batch, local_stack, ids.job_id, plain_pool, fast="/bin/bash -c 'echo fast done'", slow=gated(flag))
    wait_completed(batch, ids.job_id, "fast")
    wait_for(lambda: task_state(batch, ids.job_id, "slow") == "running", what="the slow task to run")

    first = run_script("check_task.py", "--job_id", ids.job_id)
    assert first.returncode == 0, first.stdout + first.stderr
    job_dir = tmp_path / "outputs" / ids.job_id
    assert (job_dir / "fast" / "stdout.txt").read_text() == "fast done\n"
    assert not (job_dir / "slow").exists()
    assert re.search(r"  task \[slow\]: running on node tvmps_\w+ since \d\d:\d\d:\d\d for \d+s", first.stdout)
    assert "outputs of 1 completed task(s)" in first.stdout and "1 from the blob container" not in first.stdout
    assert "2 from the blob container" in first.stdout  # stdout.txt and stderr.txt of the fast task

    flag.touch()
    waited = run_script("check_task.py", "--job_id", ids.job_id, "--wait", "--poll_seconds", "0.2")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert (job_dir / "slow" / "stdout.txt").read_text() == "started\nfinished\n"
    assert re.search(r"^\d\d:\d\d:\d\d   outputs of 2 completed task\(s\)", waited.stdout, re.MULTILINE)
    assert "already downloaded" not in waited.stdout


def test_rerun_of_a_complete_job_sends_no_per_task_request(run_script, ids, local_stack, batch, plain_pool, tmp_path):
    add_job(batch, local_stack, ids.job_id, plain_pool, a="/bin/echo a", b="/bin/echo b", c="/bin/echo c")
    wait_completed(batch, ids.job_id, "a", "b", "c")
    assert run_script("check_task.py", "--job_id", ids.job_id).returncode == 0
    assert (tmp_path / "outputs" / RECORD_NAME).exists()

    batch_proxy = CountingProxy(local_stack.batch_endpoint, blob=False)
    blob_proxy = CountingProxy(local_stack.blob_endpoint, blob=True)
    with batch_proxy.running(), blob_proxy.running():
        origin = re.match(r"http://[^/]+", local_stack.blob_endpoint).group(0)
        env = {"AZURE_BATCH_ENDPOINT": batch_proxy.url,
               "BLOB_CONTAINER_URL": local_stack.env["BLOB_CONTAINER_URL"].replace(origin, blob_proxy.url, 1)}
        again = run_script("check_task.py", "--job_id", ids.job_id, env=env)
        requests = batch_proxy.take()
        blobs = blob_proxy.take()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "outputs of 3 completed task(s)" in again.stdout and "already downloaded" not in again.stdout
    assert not any("/tasks" in kind for kind in requests), requests
    assert sum(requests.values()) <= 1 + 5, requests  # one job: its task counts, plus the job and the pools
    assert not blobs, blobs


def test_deleted_or_truncated_file_is_downloaded_again_despite_the_record(run_script, ids, local_stack, batch,
                                                                          plain_pool, tmp_path):
    add_job(batch, local_stack, ids.job_id, plain_pool, a="/bin/bash -c 'echo out a; echo err a >&2'")
    wait_completed(batch, ids.job_id, "a")
    assert run_script("check_task.py", "--job_id", ids.job_id).returncode == 0
    task_dir = tmp_path / "outputs" / ids.job_id / "a"
    (task_dir / "stdout.txt").unlink()
    (task_dir / "stderr.txt").write_text("err")  # truncated
    again = run_script("check_task.py", "--job_id", ids.job_id)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (task_dir / "stdout.txt").read_text() == "out a\n"
    assert (task_dir / "stderr.txt").read_text() == "err a\n"
    assert "downloaded now: 2 from the blob container" in again.stdout


def test_deleted_or_broken_record_means_a_full_check(run_script, ids, local_stack, batch, plain_pool, tmp_path):
    add_job(batch, local_stack, ids.job_id, plain_pool, a="/bin/echo a")
    wait_completed(batch, ids.job_id, "a")
    assert run_script("check_task.py", "--job_id", ids.job_id).returncode == 0
    record = tmp_path / "outputs" / RECORD_NAME
    for damage in (record.unlink, lambda: record.write_text("{not json")):
        damage()
        again = run_script("check_task.py", "--job_id", ids.job_id, "--verbose")
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.count("already downloaded") == 2  # checked against the blobs, not downloaded again
        assert f'"{ids.job_id}"' in record.read_text()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_downloaded_files_get_the_mode_of_the_users_umask(run_script, ids, local_stack, batch, plain_pool, tmp_path,
                                                          umask, mode):
    add_job(batch, local_stack, ids.job_id, plain_pool, a="/bin/echo a")
    wait_completed(batch, ids.job_id, "a")
    old = os.umask(umask)  # the script inherits it
    try:
        assert run_script("check_task.py", "--job_id", ids.job_id).returncode == 0
    finally:
        os.umask(old)
    for name in ("stdout.txt", "stderr.txt"):
        assert (tmp_path / "outputs" / ids.job_id / "a" / name).stat().st_mode & 0o777 == mode
    assert (tmp_path / "outputs" / RECORD_NAME).stat().st_mode & 0o777 == mode


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_blob_container_falls_back_to_the_nodes_in_bounded_time(run_script, ids, local_stack, batch,
                                                                            plain_pool, tmp_path):
    add_job(batch, local_stack, ids.job_id, plain_pool, a="/bin/echo a", b="/bin/echo b")
    wait_completed(batch, ids.job_id, "a", "b")
    origin = re.match(r"http://[^/]+", local_stack.blob_endpoint).group(0)
    dead = local_stack.env["BLOB_CONTAINER_URL"].replace(origin, f"http://127.0.0.1:{closed_port()}", 1)
    started = time.monotonic()
    result = run_script("check_task.py", "--job_id", ids.job_id, "--verbose", env={"BLOB_CONTAINER_URL": dead})
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 30  # a bound against hangs, not a timing assertion
    assert result.stdout.count("The blob container cannot be reached") == 1
    assert (tmp_path / "outputs" / ids.job_id / "b" / "stdout.txt").read_text() == "b\n"
    assert "stdout.txt: from the node" in result.stdout


def test_failures_are_explained_in_plain_words(run_script, ids, local_stack, batch, plain_pool):
    add_job(batch, local_stack, ids.job_id, plain_pool, missing="/no/such/program", exits="/bin/bash -c 'exit 3'")
    add_task(batch, local_stack, ids.job_id, "clock", "/bin/sleep 30",
             constraints=models.BatchTaskConstraints(max_wall_clock_time="PT1S"))
    wait_completed(batch, ids.job_id, "missing", "exits", "clock")
    result = run_script("check_task.py", "--job_id", ids.job_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "task [missing]: FAILED: the command was not found (CommandProgramNotFound" in result.stdout
    assert "task [exits]: FAILED (exit code 3)" in result.stdout
    assert "task [clock]: FAILED: ended by its wall clock" in result.stdout
    assert "exit code None" not in result.stdout and "-1073741510" not in result.stdout


def test_pools_view_flags_a_pool_with_nodes_and_no_active_job(run_script, ids, local_stack, batch, plain_pool):
    batch.create_pool(models.BatchPoolCreateOptions(id=ids.pool_id, vm_size="standard_d2s_v5",
                                                    target_dedicated_nodes=1, virtual_machine_configuration=VM))
    try:
        add_job(batch, local_stack, ids.job_id, plain_pool)
        wait_for(lambda: batch.get_pool(ids.pool_id).current_dedicated_nodes == 1, what="the idle pool's node")
        result = run_script("check_task.py")
        assert result.returncode == 0, result.stdout + result.stderr
        assert re.search(rf"^Pool \[{ids.pool_id}\]: 1 node \(\w+ 1\); no active job, so it costs money for "
                         rf"nothing: delete it with python3 delete_pool_job.py --pool_id {ids.pool_id} --yes$",
                         result.stdout, re.MULTILINE), result.stdout
        assert re.search(rf"^Pool \[{plain_pool}\]: 2 nodes .*; active jobs: .*{ids.job_id}", result.stdout,
                         re.MULTILINE) or f"Pool [{plain_pool}]: 2 nodes" in result.stdout
        one = run_script("check_task.py", "--job_id", ids.job_id)
        assert f"Pool [{plain_pool}]: 2 nodes" in one.stdout and ids.pool_id not in one.stdout
    finally:
        batch.begin_delete_pool(ids.pool_id, polling_interval=0).result()


def test_a_task_ended_before_it_ran_is_reported_not_fatal(run_script, ids, local_stack, batch, tmp_path):
    """A task terminated while it waited has no outputs anywhere: the node file API answers 409
    OperationInvalidForCurrentState, which check_task reports per file instead of failing the run."""
    pool_id = f"{ids.pool_id[:50]}-empty"
    batch.create_pool(models.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v5", target_dedicated_nodes=0,
                                                    virtual_machine_configuration=VM))
    try:
        add_job(batch, local_stack, ids.job_id, pool_id, waiting="/bin/bash -c 'echo never'")
        batch.terminate_task(ids.job_id, "waiting")
        wait_completed(batch, ids.job_id, "waiting")
        checked = run_script("check_task.py", "--job_id", ids.job_id, "--verbose")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "the task never ran on a node" in checked.stdout, checked.stdout
        again = run_script("check_task.py", "--job_id", ids.job_id)
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        batch.begin_delete_job(ids.job_id, polling_interval=0).result()
        batch.begin_delete_pool(pool_id, polling_interval=0).result()
