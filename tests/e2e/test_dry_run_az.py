"""The files of `--dry_run DIR`, taken as they are by the pinned azure-cli: create_pool_job.py and send_task.py
write the pool, job and task bodies, `az batch pool/job/task create --json-file` sends them to the emulator, and
the task runs on the autoscaled pool and uploads its stdout and stderr to the blob container (Azurite).

`az` runs as in tests/e2e/test_emulator_azure_cli.py: its own HOME and AZURE_CONFIG_DIR, no telemetry, proxies
pointed at a dead loopback port (nothing leaves the machine), the account key on its command line.
"""

import datetime
import json
import os
import stat
import subprocess

import pytest
from azure.storage.blob import ContainerClient

from tools import local_stack as stack_module

pytestmark = pytest.mark.e2e

DEAD_PROXY = "http://127.0.0.1:9"   # discard port: a connection anywhere but loopback is refused at once
POLL = ("--poll_seconds", "0.3")


class Az:
    """az ARGS... against the stack's emulator with its account key; fails the test on a non-zero exit."""

    def __init__(self, executable, stack, home):
        self.executable, self.stack = str(executable), stack
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith(("AZURE_", "AZ_")) and name.upper() not in ("HTTP_PROXY", "HTTPS_PROXY",
                                                                                       "NO_PROXY")}
        self.env.update({"HOME": str(home), "AZURE_CONFIG_DIR": str(home / "azure-config"),
                         "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
                         "HTTP_PROXY": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY, "NO_PROXY": "127.0.0.1,localhost"})

    def __call__(self, *args):
        done = subprocess.run([self.executable, *args, "--account-name", self.stack.batch_account, "--account-key",
                               self.stack.batch_key, "--account-endpoint", self.stack.batch_endpoint, "--output",
                               "json"], env=self.env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL, check=False)
        assert done.returncode == 0, f"az {' '.join(args[:3])} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return json.loads(done.stdout) if done.stdout.strip() else None


def task_blobs(stack, job_id, task_id) -> list:
    container = ContainerClient.from_container_url(stack_module.container_sas_url(stack))
    return sorted(blob.name for blob in container.list_blobs(name_starts_with=f"{job_id}/{task_id}/"))


def test_az_creates_pool_job_and_task_from_the_dry_run_files_and_the_task_runs(run_script, ids, local_stack, batch,
                                                                               az_executable, tmp_path):
    folder = tmp_path / "bodies"
    dry = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--dry_run", str(folder))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    pool_file, job_file = folder / f"pool-{ids.pool_id}.json", folder / f"job-{ids.job_id}.json"
    assert f"Wrote {pool_file}\n" in dry.stdout
    # The stack's REPOSITORY_URL is this checkout: packed, and shared with the nodes through a SAS.
    assert (f"Wrote {job_file} (it holds a secret, the SAS of the program's download: readable by you only; delete "
            "it when done)") in dry.stdout
    assert '"vmSize"' not in dry.stdout and '"jobPreparationTask"' not in dry.stdout  # bodies in files, not stdout
    assert ids.pool_id not in {pool.id for pool in batch.list_pools(select=["id"])}
    assert ids.job_id not in {job.id for job in batch.list_jobs(select=["id"])}

    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--dry_run", str(folder))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert f"Job [{ids.job_id}] does not exist yet" in sent.stdout
    task_file = folder / f"task-{ids.task_id}.json"
    for written in (pool_file, job_file, task_file):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600, written
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in (pool_file, job_file, task_file))

    az = Az(az_executable, local_stack, tmp_path)
    try:
        az("batch", "pool", "create", "--json-file", str(pool_file))
        az("batch", "job", "create", "--json-file", str(job_file))
        az("batch", "task", "create", "--job-id", ids.job_id, "--json-file", str(task_file))

        pool = batch.get_pool(ids.pool_id)
        formula = json.loads(pool_file.read_text())["autoScaleFormula"]
        assert pool.enable_auto_scale is True and pool.auto_scale_formula == formula
        assert "$TargetDedicatedNodes = min(5, max(pendingNow, pendingRecent));" in formula
        assert pool.auto_scale_evaluation_interval == datetime.timedelta(minutes=5)
        assert pool.enable_inter_node_communication is True and pool.task_slots_per_node == 1

        checked = run_script("check_task.py", "--job_id", ids.job_id, "--wait", *POLL, timeout=300)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "completed 1 (succeeded 1, failed 0)" in checked.stdout
        task = batch.get_task(ids.job_id, ids.task_id)
        assert task.execution_info.exit_code == 0
        assert {f"{ids.job_id}/{ids.task_id}/{name}" for name in ("stdout.txt", "stderr.txt")} <= \
            set(task_blobs(local_stack, ids.job_id, ids.task_id))
        downloaded = tmp_path / "outputs" / ids.job_id / ids.task_id
        printed = (downloaded / "stdout.txt").read_text()
        assert "MPI pi demo: 4 processes on " in printed and "pi ~= 3.14159" in printed
        assert (downloaded / "stderr.txt").exists()
    finally:
        run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--yes", *POLL)
