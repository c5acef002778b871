"""--dry_run DIR writes each request body to its own file, whole (a task body with its real upload SAS, 0600),
while stdout keeps the human summary with the SAS redacted; a job that does not exist yet is said, and the task
body is written all the same. create_pool_job.py writes the pool (its formula enabled from the start) and the
job, and no body for what it would reuse. tests/e2e/test_dry_run_az.py sends the files with az."""

import json
import stat

import pytest

pytestmark = pytest.mark.e2e


def test_the_task_body_is_written_whole_and_private(run_script, ids, tmp_path):
    assert run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id).returncode == 0
    folder = tmp_path / "bodies"
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--dry_run", str(folder))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    body_file = folder / f"task-{ids.task_id}.json"
    assert (f"Wrote {body_file} (it holds a secret, the SAS of the uploads: readable by you only; delete it when "
            "done)") in sent.stdout
    assert stat.S_IMODE(body_file.stat().st_mode) == 0o600
    body = json.loads(body_file.read_text())
    assert body["id"] == ids.task_id and body["multiInstanceSettings"]["numberOfInstances"] == 2
    container_url = body["outputFiles"][0]["destination"]["container"]["containerUrl"]
    signature = next(part for part in container_url.split("?", 1)[1].split("&") if part.startswith("sig="))
    assert signature != "sig=REDACTED" and signature not in sent.stdout + sent.stderr
    assert '"commandLine"' not in sent.stdout   # with DIR the body is in its file, not mixed into stdout
    assert f"Dry run: MPI task [{ids.task_id}] would be added to job [{ids.job_id}] on 2 node(s)." in sent.stdout
    plain = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--dry_run")
    assert '"commandLine"' in plain.stdout and "sig=REDACTED" in plain.stdout   # alone: the body, redacted
    assert not list(folder.glob("*.partial")) and sorted(p.name for p in folder.iterdir()) == [body_file.name]


def test_a_job_that_does_not_exist_yet_is_said_and_the_body_written(run_script, ids, tmp_path):
    folder = tmp_path / "bodies"
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--dry_run", str(folder))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert (f"Job [{ids.job_id}] does not exist yet: checked are the settings, the command line and the container's "
            "SAS (and, next, that the container exists); not checked are the job's state, its pool and the pool's "
            "nodes; the command line is the one for VM_SIZE standard_d2s_v5.") in sent.stdout
    body_file = folder / f"task-{ids.task_id}.json"
    assert f"Wrote {body_file} (it holds a secret, the SAS of the uploads" in sent.stdout
    assert json.loads(body_file.read_text())["id"] == ids.task_id and stat.S_IMODE(body_file.stat().st_mode) == 0o600
    plain = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--dry_run")
    assert plain.returncode == 0 and "Dry run: nothing was added." in plain.stdout


def test_create_pool_job_writes_the_pool_and_job_bodies_az_takes(run_script, ids, tmp_path):
    folder = tmp_path / "bodies"
    dry = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--spot",
                     "--max_nodes", "3", "--dry_run", str(folder),
                     env={"AUTOSCALE_EVALUATION_MINUTES": "7", "CMD_PREP_TASK": "/bin/true"})
    assert dry.returncode == 0, dry.stdout + dry.stderr
    pool_file, job_file = folder / f"pool-{ids.pool_id}.json", folder / f"job-{ids.job_id}.json"
    # A custom CMD_PREP_TASK: nothing packed, no link to the program, so no secret in the job file.
    assert f"Wrote {pool_file}\nDry run: would send POST " in dry.stdout and f"Wrote {job_file}\n" in dry.stdout
    assert dry.stdout.count("Dry run: would send POST ") == 4 and "with this body" not in dry.stdout
    assert dry.stdout.rstrip().endswith("Dry run: nothing was created or changed.")
    pool = json.loads(pool_file.read_text())
    assert pool["enableAutoScale"] is True and pool["autoScaleEvaluationInterval"] == "PT07M00S"
    assert ("$TargetDedicatedNodes = 0;\n$TargetLowPriorityNodes = min(3, max(pendingNow, pendingRecent));"
            in pool["autoScaleFormula"])
    assert "targetDedicatedNodes" not in pool and "targetLowPriorityNodes" not in pool
    job = json.loads(job_file.read_text())
    assert (job["poolInfo"]["poolId"], job["jobPreparationTask"]["commandLine"]) == (ids.pool_id, "/bin/true")
    assert not list(folder.glob("*.partial")) and sorted(p.name for p in folder.iterdir()) == sorted(
        [pool_file.name, job_file.name])


def test_create_pool_job_writes_no_body_for_a_pool_and_a_job_it_would_reuse(run_script, ids, tmp_path):
    fixed = {"CMD_PREP_TASK": "/bin/true"}  # not this checkout packed twice: it may change between the runs
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, env=fixed)
    assert created.returncode == 0, created.stdout + created.stderr
    folder = tmp_path / "bodies"
    dry = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--dry_run", str(folder),
                     env=fixed)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert (f"Dry run: pool [{ids.pool_id}] already exists and can run MPI tasks; it would be reused (no pool "
            "body).") in dry.stdout
    assert f"Job [{ids.job_id}] already exists on pool [{ids.pool_id}]; reusing it." in dry.stdout
    assert "Wrote " not in dry.stdout and not (folder.exists() and any(folder.iterdir()))
