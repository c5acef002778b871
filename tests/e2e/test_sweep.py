"""send_task.py --sweep FILE end to end: one task per line, each with its own PROGRAM_ARGS, added in task
collections; a re-run adds nothing; a clashing id stops it before anything is added."""

import re

import pytest

from tests.e2e.conftest import batch_client

pytestmark = pytest.mark.e2e

SWEEP = "# pi with more and more intervals\n--intervals 1000\n\n--intervals 20000\n--intervals 300000\n"


def _sweep_file(tmp_path, text=SWEEP):
    path = tmp_path / "sweep.txt"
    path.write_text(text)
    return str(path)


def test_a_sweep_runs_one_task_per_line_and_a_rerun_adds_nothing(run_script, ids, local_stack, tmp_path):
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    assert created.returncode == 0, created.stdout + created.stderr
    sweep = _sweep_file(tmp_path)
    dry = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", "pi", "--sweep", sweep, "--dry_run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "/addtaskcollection" in dry.stdout
    assert "Dry run: 3 task(s) of the sweep would be added in 1 request(s) (0 already in the job)" in dry.stdout
    assert list(batch_client(local_stack).list_tasks(ids.job_id)) == []

    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", "pi", "--sweep", sweep)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "Adding 3 MPI task(s) of sweep" in sent.stdout and "(0 already there)" in sent.stdout
    tasks = {task.id: task for task in batch_client(local_stack).list_tasks(ids.job_id)}
    assert sorted(tasks) == ["pi-1", "pi-2", "pi-3"]
    assert "--intervals 20000'" in tasks["pi-2"].command_line

    again = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", "pi", "--sweep", sweep)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Adding 0 MPI task(s)" in again.stdout and "(3 already there)" in again.stdout
    assert len(list(batch_client(local_stack).list_tasks(ids.job_id))) == 3

    checked = run_script("check_task.py", "--job_id", ids.job_id, "--wait", "--poll_seconds", "1", timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "completed 3 (succeeded 3, failed 0)" in checked.stdout
    for task_id, intervals in (("pi-1", 1000), ("pi-2", 20000), ("pi-3", 300000)):
        stdout = (tmp_path / "outputs" / ids.job_id / task_id / "stdout.txt").read_text()
        assert re.search(rf"intervals={intervals}\b", stdout), stdout


def test_a_sweep_whose_ids_clash_adds_nothing(run_script, ids, local_stack, tmp_path):
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    assert created.returncode == 0, created.stdout + created.stderr
    first = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", "run", "--sweep",
                       _sweep_file(tmp_path, "--intervals 10\n--intervals 20\n"))
    assert first.returncode == 0, first.stdout + first.stderr
    other = tmp_path / "other"
    other.mkdir()
    clash = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", "run", "--sweep",
                       _sweep_file(other, "--intervals 10\n--intervals 30\n--intervals 40\n"))
    assert clash.returncode == 2
    assert clash.stderr.strip().endswith(f"Task [run-1] already exists in job [{ids.job_id}] and is not part of "
                                         "this sweep (2 such id(s)): choose another --task_id. Nothing was added.")
    assert len(list(batch_client(local_stack).list_tasks(ids.job_id))) == 2


def test_a_sweep_file_without_task_lines_is_refused_before_any_request(run_script, ids, tmp_path):
    empty = _sweep_file(tmp_path, "# nothing yet\n")
    done = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", "t", "--sweep", empty)
    assert done.returncode == 2
    assert done.stderr.strip().endswith(f"--sweep {empty} has no task line: write one line of program arguments "
                                        "per task (# starts a comment).")
