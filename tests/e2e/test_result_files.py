"""Result files (OUTPUT_FILES) end to end against the local stack: a program writes results/a.txt and
results/sub/b.bin in its working directory; send_task.py has them uploaded under JOB/TASK/ with their paths,
after a success and after a failure; check_task.py brings them into outputs/JOB/TASK/ byte for byte, and a
re-run downloads nothing again; with the blob container out of reach they come from the node. A pattern that leaves
the working directory is refused before anything."""

import re
from pathlib import Path

from tests.e2e.conftest import keep_nodes
from tests.git_repos import NODE_FILES, free_port, make_repository

POLL = ("--poll_seconds", "0.3")
EXIT_TASKS_FAILED = 3
PROGRAM = "tests/programs/write_results.py"
RESULTS = ("results/a.txt", "results/sub/b.bin")


def results_repository(path: Path) -> Path:
    """A repository the nodes can use whose program is tests/programs/write_results.py."""
    program = (Path(__file__).resolve().parents[1] / "programs" / "write_results.py").read_text()
    return make_repository(path, {**NODE_FILES, PROGRAM: program})


def expected(processes: int) -> dict[str, bytes]:
    """What write_results.py writes with that many ranks."""
    lines = "".join(f"rank {rank} of {processes}\n" for rank in range(processes))
    return {"results/a.txt": lines.encode(), "results/sub/b.bin": bytes(range(256)) * 4 + bytes([processes])}


def create_results_job(run_script, ids, local_stack, processes: int) -> dict[str, str]:
    """The pool and job of a program that writes results/ on the primary; returns the scripts' settings."""
    env = {"REPOSITORY_URL": str(results_repository(local_stack.workdir / "repositories" / ids.job_id)),
           "PROGRAM": PROGRAM, "OUTPUT_FILES": "results/**/*", "NB_NODES": "2", "NB_PROCESSES": str(processes)}
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    return env


def test_result_files_come_back_after_success_and_failure_and_only_once(run_script, ids, local_stack, tmp_path,
                                                                        batch):
    env = create_results_job(run_script, ids, local_stack, processes=3)

    refused = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", "escapes",
                         env={**env, "OUTPUT_FILES": "results/* ../wd/secret.txt"})
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]
    assert "OUTPUT_FILES has '../wd/secret.txt', which leaves the program's working directory" in refused.stderr
    assert list(batch.list_tasks(ids.job_id)) == []  # nothing was added

    ok, failing = f"{ids.task_id}-ok", f"{ids.task_id}-fails"
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ok, env=env)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "stdout.txt and stderr.txt and result files (OUTPUT_FILES) go to" in sent.stdout
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", failing,
                      env={**env, "PROGRAM_ARGS": "--fail"})
    assert sent.returncode == 0, sent.stdout + sent.stderr

    waited = run_script("check_task.py", "--job_id", ids.job_id, "--wait", *POLL, env=env, timeout=300)
    assert waited.returncode == EXIT_TASKS_FAILED, waited.stdout + waited.stderr
    assert batch.get_task(ids.job_id, failing).execution_info.exit_code != 0
    for task_id in (ok, failing):
        task_dir = tmp_path / "outputs" / ids.job_id / task_id
        assert {name: (task_dir / name).read_bytes() for name in RESULTS} == expected(3), task_id
        assert (task_dir / "stdout.txt").is_file() and (task_dir / "stderr.txt").is_file()
    assert "results written; failing on purpose" in (tmp_path / "outputs" / ids.job_id / failing
                                                      / "stderr.txt").read_text()
    files = sorted(path for path in (tmp_path / "outputs" / ids.job_id).rglob("*") if path.is_file())
    stamps = {path: path.stat().st_mtime_ns for path in files}

    again = run_script("check_task.py", "--job_id", ids.job_id, "--verbose", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "outputs of 2 completed task(s)" in again.stdout and "(8 files)" in again.stdout, again.stdout
    assert "downloaded now" not in again.stdout
    for name in RESULTS:
        assert f"{Path('outputs') / ids.job_id / ok / name}: already downloaded" in again.stdout
    assert {path: path.stat().st_mtime_ns for path in files} == stamps  # not one file written again

    (tmp_path / "outputs" / ids.job_id / ok / "results/sub/b.bin").unlink()  # a deleted result file comes back
    restored = run_script("check_task.py", "--job_id", ids.job_id, env=env)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "downloaded now: 1 from the blob container" in restored.stdout, restored.stdout
    assert (tmp_path / "outputs" / ids.job_id / ok / "results/sub/b.bin").read_bytes() == \
        expected(3)["results/sub/b.bin"]

    deleted = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--yes")
    assert deleted.returncode == 0, deleted.stderr


def test_with_the_blob_container_out_of_reach_result_files_come_from_the_node(run_script, ids, local_stack, tmp_path,
                                                                              batch):
    env = create_results_job(run_script, ids, local_stack, processes=2)
    keep_nodes(batch, ids.pool_id)  # the node keeps the task's files after it completes
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, env=env)
    assert sent.returncode == 0, sent.stdout + sent.stderr

    origin = re.match(r"http://[^/]+", local_stack.blob_endpoint).group(0)
    dead = local_stack.env["BLOB_CONTAINER_URL"].replace(origin, f"http://127.0.0.1:{free_port()}", 1)
    waited = run_script("check_task.py", "--job_id", ids.job_id, "--wait", "--verbose", *POLL, timeout=300,
                        env={**env, "BLOB_CONTAINER_URL": dead})
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert waited.stdout.count("The blob container cannot be reached") == 1, waited.stdout
    for name in RESULTS:
        assert f"{Path('outputs') / ids.job_id / ids.task_id / name}: from the node" in waited.stdout, waited.stdout
    task_dir = tmp_path / "outputs" / ids.job_id / ids.task_id
    assert {name: (task_dir / name).read_bytes() for name in RESULTS} == expected(2)
    again = run_script("check_task.py", "--job_id", ids.job_id, env={**env, "BLOB_CONTAINER_URL": dead})
    assert "(4 files)" in again.stdout and "downloaded now" not in again.stdout, again.stdout

    deleted = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--yes")
    assert deleted.returncode == 0, deleted.stderr
