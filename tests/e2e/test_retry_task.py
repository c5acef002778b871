"""send_task.py --retry TASK_ID: a failed task runs again once its cause is fixed, and check_task.py brings its
new outputs; what the service would refuse (a task that succeeded, one still waiting, an unknown one) is one
line, before any change."""

import shlex

import pytest

from tests.e2e.conftest import batch_client

pytestmark = pytest.mark.e2e
WAIT = ("--wait", "--poll_seconds", "0.5")


def test_a_failed_task_runs_again_after_the_fix_and_its_new_outputs_come(run_script, ids, local_stack, tmp_path):
    flag = tmp_path / "fixed"
    # Fails until the flag exists: what a user's fix (a file, a setting, a repository) looks like from the task.
    env = {"START_COMMAND": f"/bin/bash -c 'test -f {flag} && echo fixed || {{ echo not yet >&2; exit 5; }}'"}
    assert run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, env=env).returncode == 0
    assert run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, env=env).returncode == 0
    failed = run_script("check_task.py", "--job_id", ids.job_id, *WAIT, env=env)
    assert failed.returncode == 3, failed.stdout + failed.stderr
    outputs = tmp_path / "outputs" / ids.job_id / ids.task_id
    assert (outputs / "stderr.txt").read_text() == "not yet\n"

    flag.touch()
    retried = run_script("send_task.py", "--job_id", ids.job_id, "--retry", ids.task_id, env=env)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert f"Reactivating task [{ids.task_id}] of job [{ids.job_id}]..." in retried.stdout
    hint = retried.stdout.strip().splitlines()[-1].removeprefix("Follow it with: ")
    assert hint == f"python3 check_task.py --job_id {ids.job_id} --wait"
    again = run_script(*shlex.split(hint)[1:], env=env)   # exactly as printed
    assert again.returncode == 0, again.stdout + again.stderr
    # The new run's outputs (after the coordination command's line), not the first run's.
    assert (outputs / "stdout.txt").read_text().endswith(" ready for MPI\nfixed\n")
    assert (outputs / "stderr.txt").read_text() == ""
    assert batch_client(local_stack).get_task(ids.job_id, ids.task_id).execution_info.result == "success"

    succeeded = run_script("send_task.py", "--job_id", ids.job_id, "--retry", ids.task_id, env=env)
    assert succeeded.returncode == 2
    assert succeeded.stderr == (f"Error: Task [{ids.task_id}] succeeded: there is nothing to retry. To run it again, "
                                "send a new task with another --task_id.\n")


def test_retry_refuses_what_the_service_would_refuse(run_script, ids, local_stack):
    env = {"START_COMMAND": "/bin/bash -c 'sleep 30'"}
    assert run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, env=env).returncode == 0
    assert run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, env=env).returncode == 0
    try:
        waiting = run_script("send_task.py", "--job_id", ids.job_id, "--retry", ids.task_id)
        assert waiting.returncode == 2
        assert waiting.stderr.startswith(f"Error: Task [{ids.task_id}] is ")
        assert waiting.stderr.endswith(", not failed: nothing to retry (python3 check_task.py shows how it goes).\n")
    finally:
        batch_client(local_stack).terminate_task(ids.job_id, ids.task_id)
    unknown = run_script("send_task.py", "--job_id", ids.job_id, "--retry", "no-such-task")
    assert unknown.returncode == 1
    assert unknown.stderr == (f"Error: Task [no-such-task] of job [{ids.job_id}] does not exist: nothing to retry "
                              "(python3 check_task.py lists the jobs and their tasks).\n")
    both = run_script("send_task.py", "--job_id", ids.job_id, "--retry", ids.task_id, "--task_id", "x")
    assert both.returncode == 2
    assert both.stderr == "Error: --retry runs the task again as it was sent: drop --task_id.\n"
    neither = run_script("send_task.py", "--job_id", ids.job_id)
    assert neither.returncode == 2
    assert neither.stderr == "Error: --task_id is required (the id of the new task), unless --retry TASK_ID.\n"
