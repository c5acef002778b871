"""send_task.py --sweep FILE end to end: one task per line, each with its own PROGRAM_ARGS, added in task
collections; a re-run adds nothing; a clashing id stops it before anything is added. check_task.py summarises
the sweep under its job, its --json lists the sweep and each task's result files, and more than ten failed tasks
give way to the command that lists them all."""

import json
import re
import shlex

import pytest

from tests.e2e.conftest import batch_client
from tests.e2e.test_node_failures import EXIT_TASKS_FAILED, printed_lines
from tests.e2e.test_result_files import RESULTS, create_results_job, expected
from toolkit.outputs import STD_FILES
from toolkit.sweep import read_sweep

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


def test_check_task_summarises_a_sweep_and_its_json_lists_sweeps_and_result_files(run_script, ids, local_stack,
                                                                                   tmp_path):
    env = create_results_job(run_script, ids, local_stack, processes=2)
    sweep = _sweep_file(tmp_path, "--case 1\n--case 2 --fail\n--case 3\n")  # write_results.py fails on --fail
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", "case", "--sweep", sweep, env=env)
    assert sent.returncode == 0, sent.stdout + sent.stderr

    waited = run_script("check_task.py", "--job_id", ids.job_id, "--wait", "--poll_seconds", "0.3", env=env,
                        timeout=300)
    assert waited.returncode == EXIT_TASKS_FAILED, waited.stdout + waited.stderr
    lines = printed_lines(waited.stdout)
    done = lines.index(f"Job [{ids.job_id}]: active 0, running 0, completed 3 (succeeded 2, failed 1)")
    assert lines[done + 1] == "  Sweep [case-1] .. [case-3]: 3 tasks: 3 completed (2 succeeded, 1 failed)", lines
    assert "  task [case-2]: FAILED (exit code 3)" in lines

    found = run_script("check_task.py", "--job_id", ids.job_id, "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert "  Sweep [case-1] .. [case-3]: 3 tasks: 3 completed (2 succeeded, 1 failed)" in found.stderr.splitlines()
    [job] = json.loads(found.stdout)["jobs"]
    assert job["sweeps"] == [{"mark": read_sweep(sweep, "case").mark, "first_id": "case-1", "last_id": "case-3",
                              "tasks": 3, "completed": 3, "succeeded": 2, "failed": 1, "running": 0, "waiting": 0}]
    tasks = {task["id"]: task for task in job["tasks"]}
    assert sorted(tasks) == ["case-1", "case-2", "case-3"]
    for task_id, task in tasks.items():
        assert task["result_files"] == list(RESULTS), task_id   # paths below outputs/JOB/TASK/, std files apart
        assert sorted(task["outputs"]) == sorted(f"outputs/{ids.job_id}/{task_id}/{name}" for name in STD_FILES)
        task_dir = tmp_path / "outputs" / ids.job_id / task_id
        assert {name: (task_dir / name).read_bytes() for name in task["result_files"]} == expected(2)
    assert tasks["case-2"]["result"] == "failed" and tasks["case-1"]["result"] == "succeeded"


def test_more_than_ten_failed_sweep_tasks_are_capped_with_a_command_that_lists_them_all(run_script, ids, tmp_path):
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    assert created.returncode == 0, created.stdout + created.stderr
    # 11 lines the demo's argparse refuses (exit code 2), one it runs.
    sweep = _sweep_file(tmp_path, "--intervals 1000\n" + "".join(f"--intervals x{n}\n" for n in range(11)))
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", "bad", "--sweep", sweep)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    waited = run_script("check_task.py", "--job_id", ids.job_id, "--wait", "--poll_seconds", "0.3", timeout=300)
    assert waited.returncode == EXIT_TASKS_FAILED, waited.stdout + waited.stderr
    assert "  Sweep [bad-01] .. [bad-12]: 12 tasks: 12 completed (1 succeeded, 11 failed)" in \
        printed_lines(waited.stdout), waited.stdout

    checked = run_script("check_task.py", "--job_id", ids.job_id)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert len([line for line in lines if re.match(r"  task \[bad-\d\d\]: FAILED \(exit code 2\)$", line)]) == 10
    hint = f"  ... and 1 more failed: python3 check_task.py --job_id {ids.job_id} --verbose"
    assert hint in lines, checked.stdout
    python, script, *args = shlex.split(hint.split(": ", 1)[1])   # run as printed
    assert python == "python3"
    every = run_script(script, *args)
    assert every.returncode == 0, every.stdout + every.stderr
    failed = [line for line in every.stdout.splitlines() if re.match(r"  task \[bad-\d\d\]: FAILED", line)]
    assert sorted(failed) == [f"  task [bad-{n:02d}]: FAILED (exit code 2)" for n in range(2, 13)]
    assert "  task [bad-01]: succeeded (exit code 0)" in every.stdout and "more failed" not in every.stdout
