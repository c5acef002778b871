"""The scripts against a misbehaving service: the emulator's fault injection, on the shared local stack."""

import time

from batch_emulator.faults import clear_faults
from tests.e2e.conftest import keep_nodes


def create_pool_and_job(run_script, ids):
    result = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    assert result.returncode == 0, result.stderr


def test_busy_service_with_retry_after_is_waited_out(run_script, ids, local_stack, fault):
    create_pool_and_job(run_script, ids)
    fault("503", "GET", f"/jobs/{ids.job_id}/taskcounts", count=2, retry_after=1)
    result = run_script("check_task.py", "--job_id", ids.job_id)
    assert result.returncode == 0, result.stderr
    assert f"Job [{ids.job_id}]: active 0" in result.stdout
    assert fault.fired() == 2


def test_throttled_task_creation_is_retried(run_script, ids, local_stack, fault):
    create_pool_and_job(run_script, ids)
    fault("429", "POST", f"/jobs/{ids.job_id}/tasks", count=1, retry_after=1)
    result = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id)
    assert result.returncode == 0, result.stderr
    assert fault.fired() == 1


def test_task_created_before_the_connection_broke_is_recognised_as_ours(run_script, ids, local_stack, fault):
    create_pool_and_job(run_script, ids)
    # The service creates the task, then the answer is cut: the retried POST meets TaskExists.
    fault("close", "POST", f"/jobs/{ids.job_id}/tasks", when="after", count=1)
    result = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id)
    assert result.returncode == 0, result.stderr
    assert f"Task [{ids.task_id}] added." in result.stdout
    assert fault.fired() == 1
    # A second, separate run with the same id is still a conflict.
    again = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_service_answering_503_to_everything_gives_up_in_bounded_time(run_script, ids, local_stack, fault):
    fault("503", "*", "/**", retry_after=1)
    started = time.monotonic()
    result = run_script("check_task.py", timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "ServerBusy" in result.stderr and result.stderr.count("\n") == 1
    assert elapsed < 90  # the client's overall limit; a bound against hangs, not a timing assertion


def test_download_cut_mid_file_leaves_nothing_partial_and_the_next_run_completes(run_script, ids, local_stack,
                                                                                    fault, tmp_path, batch):
    create_pool_and_job(run_script, ids)
    # Two nodes that stay after the task: a node that leaves the pool takes the task's files with it.
    keep_nodes(batch, ids.pool_id)
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id)
    assert sent.returncode == 0, sent.stderr
    from_nodes = {"BLOB_CONTAINER_URL": None, "BATCH_TOOLKIT_ENV_FILE": ""}  # task file API only
    waited = run_script("check_task.py", "--job_id", ids.job_id, "--wait", "--poll_seconds", "0.3",
                        "--output_dir", tmp_path / "warmup", env=from_nodes)
    assert waited.returncode == 0, waited.stderr

    stdout_path = f"/jobs/{ids.job_id}/tasks/{ids.task_id}/files/stdout.txt"
    # One cut half-way through the file: check_task downloads it again.
    fault("close", "GET", stdout_path, when="after", count=1)
    once = run_script("check_task.py", "--job_id", ids.job_id, "--output_dir", tmp_path / "once", env=from_nodes)
    assert once.returncode == 0, once.stdout + once.stderr
    assert fault.fired() == 1
    assert "MPI pi demo" in (tmp_path / "once" / ids.job_id / ids.task_id / "stdout.txt").read_text()

    # Every attempt is cut half-way: it gives up with one line, leaving no partial or corrupt file.
    fault("close", "GET", stdout_path, when="after", count=10)
    cut = run_script("check_task.py", "--job_id", ids.job_id, env=from_nodes)
    assert cut.returncode == 1, cut.stdout + cut.stderr
    assert "The connection to the service broke while reading its answer" in cut.stderr
    assert cut.stderr.count("\n") == 1
    task_dir = tmp_path / "outputs" / ids.job_id / ids.task_id
    assert not (task_dir / "stdout.txt").exists()
    assert not list(tmp_path.rglob("*.partial"))

    clear_faults(local_stack.batch_endpoint, local_stack.batch_account, local_stack.batch_key)
    done = run_script("check_task.py", "--job_id", ids.job_id, env=from_nodes)
    assert done.returncode == 0, done.stderr
    assert (task_dir / "stdout.txt").read_bytes() == (tmp_path / "warmup" / ids.job_id / ids.task_id /
                                                       "stdout.txt").read_bytes()
    assert "MPI pi demo" in (task_dir / "stdout.txt").read_text()


def test_pool_and_job_created_before_the_connection_broke_are_recognised_as_ours(run_script, ids, local_stack,
                                                                                   fault):
    fault("close", "POST", "/pools", when="after", count=1)
    fault("close", "POST", "/jobs", when="after", count=1)
    result = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Pool [{ids.pool_id}] created" in result.stdout and "already exists" not in result.stdout
    assert f"Job [{ids.job_id}] created" in result.stdout
    assert fault.fired() == 2
