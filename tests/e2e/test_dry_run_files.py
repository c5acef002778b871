"""--dry_run DIR writes each request body to its own file, whole (a task body with its real upload SAS, 0600),
while stdout keeps the human summary with the SAS redacted; a job that does not exist yet is said, and the task
body is written all the same."""

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
    assert "sig=REDACTED" in sent.stdout
    assert not list(folder.glob("*.partial")) and sorted(p.name for p in folder.iterdir()) == [body_file.name]


def test_a_job_that_does_not_exist_yet_is_said_and_the_body_written(run_script, ids, tmp_path):
    folder = tmp_path / "bodies"
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--dry_run", str(folder))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert (f"Job [{ids.job_id}] does not exist yet: its state, its pool and the pool's nodes are not checked; the "
            "command line is the one for VM_SIZE standard_d2s_v5.") in sent.stdout
    assert json.loads((folder / f"task-{ids.task_id}.json").read_text())["id"] == ids.task_id
    plain = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--dry_run")
    assert plain.returncode == 0 and "Dry run: nothing was added." in plain.stdout
