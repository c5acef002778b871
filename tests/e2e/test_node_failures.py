"""What check_task.py and send_task.py say when work fails on the nodes, end to end against the local stack:
a job preparation task that cannot clone the repository (its node's stderr, the cost, the commands that make
the job again, each run as printed), a failed MPI task (its stderr and its other node's), --json and the exit
codes of --wait, an upload refused because its SAS had expired, and a pool held back by its core quota."""

import datetime
import json
import os
import re
import shlex
import shutil
import subprocess

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import ScriptRunner, batch_client, keep_nodes
from tests.git_repos import make_repository
from tools import local_stack as stack_module

POLL = ("--poll_seconds", "0.3")
TIMESTAMP = re.compile(r"^\d\d:\d\d:\d\d ")
EXIT_TASKS_FAILED = 3


def printed_lines(output: str) -> list[str]:
    """check_task's lines without the time --wait puts before each when piped."""
    return [TIMESTAMP.sub("", line) for line in output.splitlines()]


def hint_commands(output: str) -> list[str]:
    """The commands a check_task output tells the user to run, in order, as printed."""
    commands = []
    for line in printed_lines(output):
        found = re.search(r"(?:^\s+|: )((?:python3 \S+\.py|az batch) .*)$", line)
        if found:
            commands.append(found.group(1))
    return commands


def create_and_send(run_script, ids, env=None, task_id=None):
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", task_id or ids.task_id, env=env)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    return sent


def az_environment(stack, home):
    """az, isolated as in test_emulator_azure_cli.py, with the account in the variables az batch reads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AZ_"))}
    env.update({"HOME": str(home), "AZURE_CONFIG_DIR": str(home / "az"), "AZURE_CORE_COLLECT_TELEMETRY": "false",
                "AZURE_CORE_ONLY_SHOW_ERRORS": "true", "HTTP_PROXY": "http://127.0.0.1:9",
                "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost",
                "AZURE_BATCH_ACCOUNT": stack.batch_account, "AZURE_BATCH_ACCESS_KEY": stack.batch_key,
                "AZURE_BATCH_ENDPOINT": stack.batch_endpoint})
    return env


def run_printed(command, run_script, az_executable, stack, cwd, env=None):
    """Run one printed hint exactly as printed: a toolkit script (as the user's python3) or az."""
    words = shlex.split(command)
    if words[0] == "az":
        return subprocess.run([str(az_executable), *words[1:]], cwd=cwd, env=az_environment(stack, cwd),
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert words[0] == "python3"
    return run_script(words[1], *words[2:], env=env)


def test_a_preparation_that_cannot_clone_shows_gits_error_the_cost_and_commands_that_work(
        run_script, ids, local_stack, tmp_path, az_executable):
    repository = make_repository(local_stack.workdir / "repositories" / ids.job_id)
    # A git URL (a local folder would be packed and uploaded, not cloned by the nodes).
    env = {"REPOSITORY_URL": f"file://{repository}", "PROGRAM": "src/x.py"}
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, env=env)
    assert created.returncode == 0, created.stderr
    shutil.rmtree(repository)  # the node's clone now fails, as with a repository that was moved or made private
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, env=env)
    assert sent.returncode == 0, sent.stderr

    waited = run_script("check_task.py", "--job_id", ids.job_id, "--wait", *POLL, env=env)
    assert waited.returncode == EXIT_TASKS_FAILED, waited.stdout + waited.stderr
    assert waited.stderr.startswith(f"Error: Job [{ids.job_id}]: the job preparation task failed on 1 node(s)")
    assert waited.stderr.count("\n") == 1
    lines = printed_lines(waited.stdout)
    assert any(line.startswith("    | fatal:") and str(repository) in line for line in lines), waited.stdout
    assert any("keep running, and costing" in line for line in lines)

    # Without --wait, the same report with the problem itself, and exit code 0 (a status report).
    checked = run_script("check_task.py", "--job_id", ids.job_id, env=env)
    assert checked.returncode == 0
    assert "the job preparation task failed on 1 node(s)" in checked.stdout and "| fatal:" in checked.stdout

    commands = hint_commands(waited.stdout)
    assert [command.split()[1] for command in commands] == [
        "delete_pool_job.py", "create_pool_job.py", "send_task.py", "batch"], commands
    # The node's own file first (deleting the job takes its files from the nodes).
    downloaded = run_printed(commands[-1], run_script, az_executable, local_stack, tmp_path)
    assert downloaded.returncode == 0, downloaded.stderr[-2000:]
    assert "fatal:" in (tmp_path / "prep-stderr.txt").read_text()
    # The fix, then the printed commands, each exactly as printed: the task runs.
    make_repository(repository)
    for command in commands[:-1]:
        done = run_printed(command, run_script, az_executable, local_stack, tmp_path, env=env)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
    again = run_script("check_task.py", "--job_id", ids.job_id, "--wait", *POLL, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"task [{ids.task_id}]: succeeded (exit code 0)" in again.stdout or "succeeded 1, failed 0" in again.stdout


FAILING_MPI = {"NB_NODES": "2",
               "COORDINATION_COMMAND": "/bin/bash -c 'echo coordination on $AZ_BATCH_NODE_ID >&2'",
               "START_COMMAND": "/bin/bash -c 'echo the program broke >&2; exit 4'"}


def test_a_failed_mpi_task_shows_its_stderr_and_its_other_nodes_and_wait_exits_3(run_script, ids, local_stack,
                                                                                  tmp_path):
    create_and_send(run_script, ids, FAILING_MPI)
    waited = run_script("check_task.py", "--job_id", ids.job_id, "--wait", *POLL, env=FAILING_MPI)
    assert waited.returncode == EXIT_TASKS_FAILED, waited.stdout + waited.stderr
    lines = printed_lines(waited.stdout)
    failed = lines.index(f"  task [{ids.task_id}]: FAILED (exit code 4)")
    # The primary's stderr.txt holds its own coordination command's line, then the program's.
    assert lines[failed + 1] == "    stderr.txt (last lines):"
    assert lines[failed + 3] == "    | the program broke"
    subtask = tmp_path / "outputs" / ids.job_id / ids.task_id / "subtasks" / "1" / "stderr.txt"
    assert lines[failed + 4] == f"    stderr.txt of subtask 1 on another node ({subtask.relative_to(tmp_path)}):"
    assert lines[failed + 5].startswith("    | coordination on tvmps_")
    assert subtask.read_text().startswith("coordination on tvmps_")

    # --json: one document on stdout and nothing else; the lines go to stderr.
    document = run_script("check_task.py", "--job_id", ids.job_id, "--json", env=FAILING_MPI)
    assert document.returncode == 0, document.stderr
    found = json.loads(document.stdout)
    [job] = found["jobs"]
    assert job["id"] == ids.job_id and job["pool_id"] == ids.pool_id and job["exists"]
    assert job["task_counts"] == {"active": 0, "running": 0, "completed": 1, "succeeded": 0, "failed": 1}
    [task] = job["tasks"]
    assert (task["id"], task["state"], task["exit_code"], task["result"]) == (ids.task_id, "completed", 4, "failed")
    assert task["failure"]["category"] == "usererror" and task["reason"] == "FAILED (exit code 4)"
    assert sorted(task["outputs"]) == sorted(str(p) for p in (
        subtask.relative_to(tmp_path), f"outputs/{ids.job_id}/{ids.task_id}/stdout.txt",
        f"outputs/{ids.job_id}/{ids.task_id}/stderr.txt"))
    assert [pool["id"] for pool in found["pools"]] == [ids.pool_id]
    assert "FAILED (exit code 4)" in document.stderr


def test_wait_with_json_on_a_succeeded_task_exits_0_with_the_document(run_script, ids, local_stack):
    create_and_send(run_script, ids)
    waited = run_script("check_task.py", "--job_id", ids.job_id, "--wait", "--json", *POLL)
    assert waited.returncode == 0, waited.stderr
    [task] = json.loads(waited.stdout)["jobs"][0]["tasks"]
    assert task["result"] == "succeeded" and task["exit_code"] == 0 and task["failure"] is None


def test_json_with_tail_is_refused(run_script, ids):
    refused = run_script("check_task.py", "--job_id", ids.job_id, "--tail", ids.task_id, "--json")
    assert refused.returncode == 2
    assert refused.stderr == "Error: --tail prints the task's own output, not a JSON document: drop --json.\n"


def test_an_upload_refused_after_the_sas_expired_says_so_with_the_time(run_script, ids, local_stack, batch):
    short = stack_module.container_sas_url(local_stack, permission="racwl", expiry=datetime.timedelta(seconds=12))
    env = {"BLOB_CONTAINER_URL": short, "TASK_MAX_WALL_CLOCK_MINUTES": "2",
           "START_COMMAND": "/bin/bash -c 'sleep 14; echo finished'"}
    sent = create_and_send(run_script, ids, env)
    assert "Warning: the container SAS expires at" in sent.stdout
    # The nodes stay after the task (a node that leaves takes its files): its stdout.txt then comes from there.
    keep_nodes(batch, ids.pool_id)
    wait_for(lambda: batch.get_task(ids.job_id, ids.task_id).state == "completed", timeout=90)
    checked = run_script("check_task.py", "--job_id", ids.job_id, "--verbose")  # with a SAS that is valid now
    assert checked.returncode == 0, checked.stderr
    assert re.search(r"FAILED: its outputs could not be uploaded: the SAS it was given expired at "
                     r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, before the task ended at", checked.stdout), checked.stdout
    assert "stdout.txt: from the node" in checked.stdout, checked.stdout


@pytest.fixture(scope="module")
def quota_stack(tmp_path_factory):
    """A local stack whose Batch account has 2 dedicated cores: one standard_d2s_v5 node."""
    with stack_module.start_stack(tmp_path_factory.mktemp("quota-stack"),
                                  emulator_options=("--dedicated-core-quota", "2")) as stack:
        yield stack


def test_a_pool_held_back_by_its_core_quota_is_shown_and_a_task_it_cannot_run_refused(quota_stack, ids, tmp_path):
    run = ScriptRunner(quota_stack, tmp_path)
    create_and_send(run, ids)  # NB_NODES 2: autoscale asks for 2 nodes, the quota allows 1
    client = batch_client(quota_stack)
    wait_for(lambda: client.get_pool(ids.pool_id).resize_errors, timeout=60)
    checked = run("check_task.py", "--job_id", ids.job_id)
    assert checked.returncode == 0, checked.stderr
    assert "  it cannot get the nodes it asks for (AccountCoreQuotaReached): the account's dedicated core quota " \
           "is used up, so the pool cannot get more nodes of size standard_d2s_v5" in checked.stdout
    assert f"Job [{ids.job_id}]: its tasks need 2 node(s) and pool [{ids.pool_id}] has 1" in checked.stdout

    refused = run("send_task.py", "--job_id", ids.job_id, "--task_id", "second")
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"Error: Pool [{ids.pool_id}] has 1 node(s) and cannot get the 2 this task "
                                     "needs (AccountCoreQuotaReached)")
    assert [task.id for task in client.list_tasks(ids.job_id)] == [ids.task_id]
    one = run("send_task.py", "--job_id", ids.job_id, "--task_id", "one-node", "--nodes", "1")
    assert one.returncode == 0 and "could not get all the nodes it asked for (AccountCoreQuotaReached)" in one.stderr

    waited = run("check_task.py", "--job_id", ids.job_id, "--wait", *POLL)
    assert waited.returncode == 1
    assert "which it cannot grow beyond (AccountCoreQuotaReached)" in waited.stderr
    deleted = run("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--yes")
    assert deleted.returncode == 0, deleted.stderr


CRASHING = {"PROGRAM": "tests/programs/crash.py", "NB_NODES": "3", "NB_PROCESSES": "3",
            "TASK_MAX_WALL_CLOCK_MINUTES": "10"}


def test_a_rank_that_raises_ends_the_task_at_once_with_its_traceback_shown(run_script, ids, tmp_path, batch):
    create_and_send(run_script, ids, CRASHING)
    waited = run_script("check_task.py", "--job_id", ids.job_id, "--wait", *POLL, env=CRASHING, timeout=300)
    assert waited.returncode == EXIT_TASKS_FAILED, waited.stdout + waited.stderr
    task = batch.get_task(ids.job_id, ids.task_id)
    ran = task.execution_info.end_time - task.execution_info.start_time
    assert ran < datetime.timedelta(seconds=60), ran  # not its 10-minute wall clock: MPI_Abort ended every rank
    assert task.execution_info.failure_info is None or task.execution_info.failure_info.code != "TaskEnded"
    stderr = (tmp_path / "outputs" / ids.job_id / ids.task_id / "stderr.txt").read_text()
    assert "RuntimeError: rank 1 of 3 broke on purpose" in stderr
    assert "    | RuntimeError: rank 1 of 3 broke on purpose" in printed_lines(waited.stdout)
