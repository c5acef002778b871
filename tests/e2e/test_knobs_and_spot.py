"""The default START_COMMAND's knobs and Spot pools, end to end against the local stack: MPIRUN_ARGS reaches
mpirun with --processes, --program/--args run another program, a --spot pool gets low-priority nodes that run
the task, and every refusal is one line, exit 2, with nothing created."""

import pytest

from tests.e2e.conftest import batch_client

pytestmark = pytest.mark.e2e

WAIT = ("--wait", "--poll_seconds", "0.5")


def create(run_script, ids, *options, env=None):
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, *options, env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    return created


def stdout_of(tmp_path, ids) -> str:
    return (tmp_path / "outputs" / ids.job_id / ids.task_id / "stdout.txt").read_text()


def test_mpirun_args_reach_mpirun_with_processes(run_script, ids, local_stack, tmp_path):
    # -l is MPICH hydra's (the emulator's mpirun): each line gets its rank, which shows the options arrived.
    env = {"MPIRUN_ARGS": "--bind-to core -l"}
    create(run_script, ids, env=env)
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--processes", "3", env=env)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    task = batch_client(local_stack).get_task(ids.job_id, ids.task_id)
    assert 'mpirun -np 3 --host "$hosts" --bind-to core -l python3 -m mpi4py' in task.command_line
    waited = run_script("check_task.py", "--job_id", ids.job_id, *WAIT, env=env)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "[0] MPI pi demo: 3 processes" in stdout_of(tmp_path, ids)


def test_program_and_args_run_another_program(run_script, ids, local_stack, tmp_path):
    create(run_script, ids)
    # crash.py's argument is the rank that raises: 99 is none of them, so every rank passes the barrier.
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--processes", "2",
                      "--program", "tests/programs/crash.py", "--args", "99")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    waited = run_script("check_task.py", "--job_id", ids.job_id, *WAIT)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    stdout = stdout_of(tmp_path, ids)
    assert "rank 0 passed the barrier" in stdout and "rank 1 passed the barrier" in stdout


def test_a_spot_pool_gets_low_priority_nodes_that_run_the_task(run_script, ids, local_stack, tmp_path):
    created = create(run_script, ids, "--spot", "--max_nodes", "2")
    assert "$TargetLowPriorityNodes=0" in created.stdout
    assert f"Pool [{ids.pool_id}] created: standard_d2s_v5 Spot (low-priority) nodes" in created.stdout
    client = batch_client(local_stack)
    assert "$TargetLowPriorityNodes = min(2, " in client.get_pool(ids.pool_id).auto_scale_formula
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    waited = run_script("check_task.py", "--job_id", ids.job_id, *WAIT)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "pi ~= 3.14" in stdout_of(tmp_path, ids)
    pool = client.get_pool(ids.pool_id)
    nodes = list(client.list_nodes(ids.pool_id))
    if nodes:   # still there (autoscale removes them minutes after the task): all of them low-priority
        assert not any(node.is_dedicated for node in nodes)
    assert pool.target_dedicated_nodes == 0
    # SPOT=false now: the existing Spot pool is not reused as a dedicated one, nor changed.
    again = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--max_nodes", "2")
    assert again.returncode == 1
    assert "has Spot nodes, not the dedicated nodes asked for (--spot or SPOT)" in again.stderr


def test_spot_true_makes_a_pool_whose_task_runs_on_spot_nodes(run_script, ids, local_stack):
    create(run_script, ids, env={"SPOT": "true"})
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--nodes", "2")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    waited = run_script("check_task.py", "--job_id", ids.job_id, *WAIT)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    client = batch_client(local_stack)
    subtasks = list(client.list_subtasks(ids.job_id, ids.task_id))
    task = client.get_task(ids.job_id, ids.task_id)
    node_ids = {task.node_info.node_id, *(sub.node_info.node_id for sub in subtasks if sub.node_info)}
    assert all(node_id.endswith("_p") for node_id in node_ids), node_ids   # tvmps_..._p: a Spot node's id


def one_line_refusal(result, expected: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr


def test_each_refusal_is_one_line_and_creates_nothing(run_script, ids, local_stack):
    client = batch_client(local_stack)
    refused_spot = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id,
                              env={"SPOT": "maybe"})
    one_line_refusal(refused_spot, "SPOT is 'maybe', not true or false. Set it to true or false in ")
    assert ids.pool_id not in {pool.id for pool in client.list_pools()}

    create(run_script, ids)
    send = ("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id)
    one_line_refusal(run_script(*send, "--program", ""),
                     "--program is empty: give the program's path inside the repository, e.g. src/app.py. "
                     "Nothing was added.")
    one_line_refusal(run_script(*send, "--args", "--name 'x'"),
                     "--args contains a single quote or a newline. Nothing was added.")
    one_line_refusal(run_script(*send, env={"MPIRUN_ARGS": "--map-by 'node'"}),
                     "MPIRUN_ARGS contains a single quote or a newline. Set it to extra mpirun options, without "
                     "single quotes or newlines, e.g. --bind-to core in ")
    one_line_refusal(run_script(*send, env={"MPIRUN_ARGS": "--bind-to core", "START_COMMAND": "/bin/true"}),
                     "MPIRUN_ARGS go into the default START_COMMAND, but START_COMMAND is set: put them in "
                     "START_COMMAND, or unset it and use PROGRAM. Nothing was added.")
    one_line_refusal(run_script(*send, "--program", "src/x.py", env={"START_COMMAND": "/bin/true"}),
                     "--program go into the default START_COMMAND, but START_COMMAND is set: put them in "
                     "START_COMMAND, or unset it and use PROGRAM. Nothing was added.")
    assert list(client.list_tasks(ids.job_id)) == []


def test_more_nodes_than_the_ranks_reach_is_warned_about(run_script, ids):
    create(run_script, ids)
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--nodes", "3", "--dry_run")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert ("Warning: 4 MPI process(es) fill 2 of the task's 3 nodes (2 cores each): the other 1 would idle, "
            "billed, while it runs. Use --nodes 2, or more processes (--processes).") in sent.stderr
