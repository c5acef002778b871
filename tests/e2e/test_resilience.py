"""Failures the scripts must survive or report clearly: dead endpoints, Ctrl-C, per-use SAS from a storage key."""

import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

from tests.conftest import wait_for
from tests.e2e.conftest import REPO_ROOT, batch_client
from tools import local_stack as stack_module


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_endpoint_fails_fast_with_one_line(run_script, ids):
    started = time.monotonic()
    result = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id,
                        env={"AZURE_BATCH_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Cannot reach the service") and result.stderr.count("\n") == 1
    assert time.monotonic() - started < 30  # a bound against hangs, not a timing assertion


def test_ctrl_c_while_waiting_exits_130_without_traceback(local_stack, ids, run_script, tmp_path):
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    assert created.returncode == 0, created.stderr
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id,
                      env={"START_COMMAND": "/bin/bash -c 'sleep 20'"})
    assert sent.returncode == 0, sent.stderr
    waiting = subprocess.Popen([sys.executable, str(REPO_ROOT / "check_task.py"), "--job_id", ids.job_id, "--wait",
                                "--poll_seconds", "0.2"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=stack_module.script_environment(local_stack))
    try:
        wait_for(lambda: "running 1" in (waiting.stdout.readline() or ""), timeout=30,
                 what="check_task.py --wait to show the task running")
        waiting.send_signal(signal.SIGINT)
        _, stderr = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
        batch_client(local_stack).terminate_task(ids.job_id, ids.task_id)  # free its nodes for other tests
    assert waiting.returncode == 130
    # Not an error: only the waiting stopped. The command it gives goes on waiting, run exactly as printed.
    hint = f"python3 check_task.py --job_id {ids.job_id} --wait"
    assert stderr == f"Stopped waiting. The tasks keep running on Batch; pick up again with: {hint}\n"
    assert not list(tmp_path.rglob("*.partial"))
    again = run_script(*shlex.split(hint)[1:])
    assert f"Job [{ids.job_id}]: active 0, running 0, completed 1" in again.stdout, again.stdout + again.stderr


def test_storage_key_makes_a_create_write_sas_for_the_task(run_script, ids, local_stack, tmp_path):
    env = {"BLOB_CONTAINER_URL": local_stack.container_url, "AZURE_STORAGE_KEY": local_stack.storage_key}
    for script, args in (("create_pool_job.py", ["--pool_id", ids.pool_id, "--job_id", ids.job_id]),
                         ("send_task.py", ["--job_id", ids.job_id, "--task_id", ids.task_id]),
                         ("check_task.py", ["--job_id", ids.job_id, "--wait", "--poll_seconds", "0.3", "--verbose"])):
        result = run_script(script, *args, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert local_stack.storage_key not in result.stdout + result.stderr
    assert "stdout.txt: from the blob container" in result.stdout
    assert "MPI pi demo" in (tmp_path / "outputs" / ids.job_id / ids.task_id / "stdout.txt").read_text()

    [output] = batch_client(local_stack).get_task(ids.job_id, ids.task_id).output_files
    sas = parse_qs(urlsplit(output.destination.container.container_url).query)
    assert sas["sp"] == ["cw"]  # only what the upload needs
    assert re.match(r"\d{4}-\d\d-\d\dT", sas["se"][0])


def test_the_secret_scanner_knows_every_secret(local_stack):
    from tests.e2e.conftest import secrets_in
    secrets = secrets_in(stack_module.script_environment(local_stack, AZURE_STORAGE_KEY=local_stack.storage_key))
    assert local_stack.batch_key in secrets and local_stack.storage_key in secrets
    signature = parse_qs(urlsplit(local_stack.env["BLOB_CONTAINER_URL"]).query)["sig"][0]
    assert signature in secrets


def test_a_script_after_the_local_stack_was_killed_says_it_is_not_running(tmp_path):
    """make local's env file left behind (the stack was killed, not stopped): nothing listens at its endpoint."""
    env_file = tmp_path / "local.env"
    env_file.write_text(f"AZURE_BATCH_ACCOUNT=devbatchaccount1\nAZURE_BATCH_ENDPOINT=http://127.0.0.1:{closed_port()}\n"
                        "AZURE_BATCH_ACCESS_KEY=c2VjcmV0LWtleS1mb3ItdGhlLXRlc3Qtb25seS0xMjM0NTY3ODkwYWJjZGVm\n")
    env_file.chmod(0o600)
    (tmp_path / "local.env.local-stack").write_text("# make local\n")
    result = subprocess.run([sys.executable, str(REPO_ROOT / "check_task.py")], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                         "BATCH_TOOLKIT_ENV_FILE": str(env_file)})
    assert result.returncode == 1
    assert result.stderr == ("Error: The local stack is not running (its env file is left from an earlier run): "
                             f"start it with make local in another shell, in {REPO_ROOT}\n")
