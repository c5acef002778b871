"""create_pool_job.py and send_task.py over a job's life: the job checked before the pool is created,
settings that differ refused, --processes, a missing blob container caught, and --dry_run bodies that the
service accepts unchanged."""

import dataclasses
import json
import os
import subprocess

import pytest
from azure.batch import models

from tests.git_repos import make_repository
from tools import local_stack as stack_module


def create(run_script, ids, env=None, *extra):
    return run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, *extra, env=env)


def clean_up(run_script, ids):
    result = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--yes",
                        "--poll_seconds", "0.2")
    assert result.returncode == 0, result.stderr


def requests_in(output: str) -> list:
    """(method, url, body or None) of each request a dry run printed."""
    found = []
    decoder = json.JSONDecoder()
    marker = "Dry run: would send "
    position = output.find(marker)
    while position != -1:
        line_end = output.index("\n", position)
        method, url = output[position + len(marker):line_end].split(" ")[:2]
        body = None
        if output[position:line_end].endswith("with this body:"):
            body, _ = decoder.raw_decode(output[line_end + 1:])
        found.append((method, url, body))
        position = output.find(marker, line_end)
    return found


def test_a_job_on_another_pool_is_refused_before_any_pool_is_created(run_script, ids, batch):
    assert create(run_script, ids).returncode == 0
    other = run_script("create_pool_job.py", "--pool_id", ids.pool_id + "-b", "--job_id", ids.job_id)
    assert other.returncode == 1
    assert f"already exists on pool [{ids.pool_id}], not [{ids.pool_id}-b]; nothing was created" in other.stderr
    assert ids.pool_id + "-b" not in {pool.id for pool in batch.list_pools(select=["id"])}


def test_a_rerun_with_another_repository_is_refused_with_what_to_do(run_script, ids, tmp_path):
    assert create(run_script, ids).returncode == 0
    other_repo = str(make_repository(tmp_path / "other-repo"))  # one the nodes could use: only the job differs
    rerun = create(run_script, ids, {"REPOSITORY_URL": other_repo})
    assert rerun.returncode == 1
    assert f"its preparation task clones {stack_module.REPO_ROOT}, not {other_repo} (REPOSITORY_URL)" in rerun.stderr
    assert f"Delete it (python3 delete_pool_job.py --job_id {ids.job_id} --yes) and run this again" in rerun.stderr
    fixed = create(run_script, ids, {"CMD_PREP_TASK": "/bin/bash -c 'echo fixed'"})
    assert fixed.returncode == 1 and "its preparation command is not this run's (CMD_PREP_TASK" in fixed.stderr
    # The command it gives works, and then the re-run goes through.
    deleted = run_script("delete_pool_job.py", "--job_id", ids.job_id, "--yes", "--poll_seconds", "0.2")
    assert deleted.returncode == 0, deleted.stderr
    assert create(run_script, ids, {"CMD_PREP_TASK": "/bin/bash -c 'echo fixed'"}).returncode == 0


def test_processes_option_sets_mpirun_np(run_script, ids, tmp_path):
    assert create(run_script, ids).returncode == 0
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--processes", "3")
    assert sent.returncode == 0, sent.stderr
    checked = run_script("check_task.py", "--job_id", ids.job_id, "--wait", "--poll_seconds", "0.3", timeout=300)
    assert checked.returncode == 0, checked.stderr
    output = (tmp_path / "outputs" / ids.job_id / ids.task_id / "stdout.txt").read_text()
    assert "MPI pi demo: 3 processes" in output and "pi ~=" in output


@pytest.mark.parametrize("args, env, message", [
    (("--processes", "0"), {}, "--processes is 0; an MPI program needs 1 process or more."),
    (("--processes", "2"), {"START_COMMAND": "/bin/bash -c 'mpirun -np 2 x'"},
     "--processes sets mpirun -np of the default START_COMMAND, but START_COMMAND is set"),
    ((), {"PROGRAM": "/etc/passwd"}, "PROGRAM is '/etc/passwd', not a relative path inside the repository"),
])
def test_bad_processes_or_program_is_exit_2_before_any_request(run_script, args, env, message):
    result = run_script("send_task.py", "--job_id", "j", "--task_id", "t", *args,
                        env={"AZURE_BATCH_ENDPOINT": "http://127.0.0.1:9", **env})
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_a_missing_blob_container_is_caught_before_the_task_is_added(run_script, ids, local_stack, batch):
    assert create(run_script, ids).returncode == 0
    missing = dataclasses.replace(local_stack, container="no-such-container")
    result = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id,
                        env={"BLOB_CONTAINER_URL": stack_module.container_sas_url(missing)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "/no-such-container does not exist" in result.stderr
    assert "az storage container create --name no-such-container --account-name devstoreaccount1" in result.stderr
    assert list(batch.list_tasks(ids.job_id)) == []
    # With the storage key instead of a SAS, the per-use SAS finds it missing just the same.
    keyed = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id,
                       env={"BLOB_CONTAINER_URL": missing.container_url, "AZURE_STORAGE_KEY": local_stack.storage_key})
    assert keyed.returncode == 2 and "does not exist" in keyed.stderr
    # A SAS that may not list cannot tell: the script says so and goes on.
    write_only = stack_module.container_sas_url(missing, permission="cw")
    blind = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--dry_run",
                       env={"BLOB_CONTAINER_URL": write_only})
    assert blind.returncode == 0 and "cannot check that the container exists" in blind.stdout


def test_dry_runs_send_nothing_and_print_bodies_the_service_accepts(run_script, ids, batch):
    dry = create(run_script, ids, None, "--dry_run")
    assert dry.returncode == 0, dry.stderr
    printed = requests_in(dry.stdout)
    assert [(method, url.rsplit("/", 1)[-1]) for method, url, _ in printed] == [
        ("POST", "pools"), ("POST", "evaluateautoscale"), ("POST", "enableautoscale"), ("POST", "jobs")]
    assert ids.pool_id not in {pool.id for pool in batch.list_pools(select=["id"])}
    assert ids.job_id not in {job.id for job in batch.list_jobs(select=["id"])}

    # The printed bodies, sent unchanged (through the SDK's own deserialisation), are accepted.
    pool_body, job_body = printed[0][2], printed[3][2]
    assert pool_body["id"] == ids.pool_id and pool_body["enableInterNodeCommunication"] is True
    batch.create_pool(models.BatchPoolCreateOptions(pool_body))
    batch.create_job(models.BatchJobCreateOptions(job_body))
    assert batch.get_job(ids.job_id).job_preparation_task.command_line == job_body["jobPreparationTask"]["commandLine"]

    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--dry_run")
    assert sent.returncode == 0, sent.stderr
    (method, url, task_body), = requests_in(sent.stdout)
    assert (method, url.endswith(f"/jobs/{ids.job_id}/tasks")) == ("POST", True)
    container_url = task_body["outputFiles"][0]["destination"]["container"]["containerUrl"]
    assert "sig=REDACTED" in container_url
    assert list(batch.list_tasks(ids.job_id)) == []
    batch.create_task(ids.job_id, models.BatchTaskCreateOptions(task_body))  # 201, or it raises
    assert batch.get_task(ids.job_id, ids.task_id).multi_instance_settings.number_of_instances == 2
    clean_up(run_script, ids)  # the pool holds at 0 nodes: its task would wait forever on the shared stack


def test_az_accepts_the_printed_pool_and_task_json(run_script, ids, local_stack, batch, tmp_path, az_executable):
    dry = create(run_script, ids, None, "--dry_run")
    printed = requests_in(dry.stdout)
    pool_file, task_file = tmp_path / "pool.json", tmp_path / "task.json"
    pool_file.write_text(json.dumps(printed[0][2]))
    batch.create_job(models.BatchJobCreateOptions(printed[3][2]))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "AZURE_CONFIG_DIR": str(tmp_path / "az"),
           "AZURE_CORE_COLLECT_TELEMETRY": "false", "NO_PROXY": "*"}
    account = ["--account-name", local_stack.batch_account, "--account-key", local_stack.batch_key,
               "--account-endpoint", local_stack.batch_endpoint]
    az = str(az_executable)
    pool = subprocess.run([az, "batch", "pool", "create", "--json-file", str(pool_file), *account], env=env,
                          capture_output=True, text=True, timeout=120)
    assert pool.returncode == 0, pool.stderr[-2000:]
    assert batch.get_pool(ids.pool_id).enable_inter_node_communication is True
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--dry_run")
    task_file.write_text(json.dumps(requests_in(sent.stdout)[0][2]))
    task = subprocess.run([az, "batch", "task", "create", "--job-id", ids.job_id, "--json-file", str(task_file),
                           *account], env=env, capture_output=True, text=True, timeout=120)
    assert task.returncode == 0, task.stderr[-2000:]
    assert batch.get_task(ids.job_id, ids.task_id).multi_instance_settings.number_of_instances == 2
    clean_up(run_script, ids)
