"""delete_pool_job.py against the emulator: deletes what exists, waits for it, is safe to re-run, refuses
what would surprise (a pool other jobs use, no terminal without --yes), and changes nothing in a dry run."""

import pytest
from azure.core.exceptions import ResourceNotFoundError

from tests.conftest import wait_for

FAST = ("--poll_seconds", "0.2")


def create(run_script, pool_id, job_id):
    result = run_script("create_pool_job.py", "--pool_id", pool_id, "--job_id", job_id)
    assert result.returncode == 0, result.stderr


def exists(getter, resource_id):
    try:
        getter(resource_id)
        return True
    except ResourceNotFoundError:
        return False


def test_deletes_job_then_pool_and_a_rerun_is_success(run_script, ids, batch):
    create(run_script, ids.pool_id, ids.job_id)
    sleeper = {"START_COMMAND": "/bin/bash -c 'sleep 60'"}
    assert run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, env=sleeper).returncode == 0
    wait_for(lambda: batch.get_task(ids.job_id, ids.task_id).state == "running", timeout=60, what="the task to run")

    result = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--yes", *FAST)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1 running" in out
    assert out.index(f"Deleting job [{ids.job_id}]...") < out.index(f"Deleting pool [{ids.pool_id}]...")
    assert f"Pool [{ids.pool_id}] deleted." in out
    assert not exists(batch.get_job, ids.job_id) and not exists(batch.get_pool, ids.pool_id)

    again = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--yes", *FAST)
    assert again.returncode == 0, again.stderr
    assert "does not exist (already deleted)" in again.stdout and "Nothing to do." in again.stdout


def test_waits_for_a_job_already_being_deleted(run_script, ids, batch):
    create(run_script, ids.pool_id, ids.job_id)
    batch.begin_delete_job(ids.job_id, polling_interval=60)  # sent, not waited for (as after a Ctrl-C)
    result = run_script("delete_pool_job.py", "--job_id", ids.job_id, "--yes", *FAST)
    assert result.returncode == 0, result.stderr
    assert ("already being deleted" in result.stdout or "does not exist" in result.stdout)
    assert not exists(batch.get_job, ids.job_id)


def test_terminates_one_task_and_keeps_the_job(run_script, ids, batch):
    create(run_script, ids.pool_id, ids.job_id)
    sleeper = {"START_COMMAND": "/bin/bash -c 'sleep 60'"}
    assert run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, env=sleeper).returncode == 0
    result = run_script("delete_pool_job.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--yes", *FAST)
    assert result.returncode == 0, result.stderr
    assert batch.get_task(ids.job_id, ids.task_id).state == "completed"
    assert batch.get_job(ids.job_id).state == "active"
    again = run_script("delete_pool_job.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--yes", *FAST)
    assert again.returncode == 0 and "already completed" in again.stdout


def test_refuses_a_pool_another_active_job_uses_unless_forced(run_script, ids, batch):
    create(run_script, ids.pool_id, ids.job_id)
    result = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--yes", *FAST)
    assert result.returncode == 2
    assert f"used by other active job(s): {ids.job_id}" in result.stderr
    assert f"python3 delete_pool_job.py --job_id {ids.job_id} --yes" in result.stderr
    assert exists(batch.get_pool, ids.pool_id)
    forced = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--yes", "--force", *FAST)
    assert forced.returncode == 0, forced.stderr
    assert not exists(batch.get_pool, ids.pool_id)


def test_dry_run_changes_nothing(run_script, ids, batch):
    create(run_script, ids.pool_id, ids.job_id)
    result = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--dry_run")
    assert result.returncode == 0, result.stderr
    assert f"DELETE {batch._config.endpoint}/jobs/{ids.job_id}" in result.stdout
    assert f"DELETE {batch._config.endpoint}/pools/{ids.pool_id}" in result.stdout
    assert batch.get_job(ids.job_id).state == "active" and batch.get_pool(ids.pool_id).state == "active"


@pytest.mark.parametrize("args, message", [
    ((), "Give --job_id, --pool_id or both"),
    (("--task_id", "t"), "--task_id needs the --job_id of its job"),
    (("--job_id", "j", "--pool_id", "p", "--task_id", "t"), "give it without --pool_id"),
    (("--job_id", "j.1"), "--job_id 'j.1' contains '.'"),
    (("--job_id", "j"), "Refusing to delete without confirmation: there is no terminal to ask in. Add --yes"),
    (("--job_id", "j", "--yes", "--poll_seconds", "0"), "--poll_seconds is 0"),
])
def test_bad_usage_is_one_line_and_exit_2_before_any_request(run_script, args, message):
    # An endpoint where nothing listens: any request would give exit 1, not 2.
    result = run_script("delete_pool_job.py", *args, env={"AZURE_BATCH_ENDPOINT": "http://127.0.0.1:9"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1
