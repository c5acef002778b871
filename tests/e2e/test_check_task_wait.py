"""check_task.py --wait and --tail end to end: riding out an outage (fault injection), a real stop and
restart of the emulator (the job is then gone: reported, not a crash), and following a running task."""

import re
import socket
import subprocess
import sys
import time

from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential

from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from tests.conftest import REPO_ROOT, process_alive, wait_for
from tests.e2e.conftest import keep_nodes
from tests.e2e.test_check_task_outputs import VM, add_job, gated, plain_pool, wait_completed  # noqa: F401
from tools import local_stack as stack_module

__all__ = ["plain_pool"]  # the module-scoped fixture, shared


def start_check_task(local_stack, cwd, *args, env=None, merged=False):
    """check_task.py as a child; merged: its stderr into its stdout, in the order it wrote them."""
    return subprocess.Popen([sys.executable, str(REPO_ROOT / "check_task.py"), *args], cwd=cwd,
                            env=stack_module.script_environment(local_stack, **(env or {})), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merged else subprocess.PIPE, text=True)


def lines_until(stream, words, timeout=60.0):
    """Read lines from `stream` until one contains `words`; returns every line read."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if words in line:
            return seen
    raise AssertionError(f"no line with {words!r} in {''.join(seen)!r}")


def test_wait_rides_out_an_outage_and_says_so_once(run_script, ids, local_stack, batch, plain_pool, fault, tmp_path):
    add_job(batch, local_stack, ids.job_id, plain_pool, a="/bin/echo a")
    wait_completed(batch, ids.job_id, "a")
    # Every try of the client (4 per call) is refused twice over: two polls fail, then the service is back.
    fault("503", "GET", f"/jobs/{ids.job_id}/taskcounts", count=8, retry_after="none")
    result = run_script("check_task.py", "--job_id", ids.job_id, "--wait", "--poll_seconds", "0.2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("The service cannot be reached or is busy") == 1
    assert "retrying for up to 10 minutes" in result.stdout and "The service answers again" in result.stdout
    assert (tmp_path / "outputs" / ids.job_id / "a" / "stdout.txt").read_text() == "a\n"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(port, root, log):
    proc = subprocess.Popen([sys.executable, "-m", "batch_emulator", "--port", str(port), "--root", str(root)],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    assert "listening on" in proc.stdout.readline()
    return proc


def test_wait_keeps_retrying_while_the_emulator_restarts_then_reports_the_job_gone(local_stack, ids, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "emulator.log", "w")
    emulator = start_emulator(port, tmp_path / "root-1", log)
    waiting = None
    try:
        client = BatchClient(url, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY), retry_total=0)
        client.create_pool(models.BatchPoolCreateOptions(id=ids.pool_id, vm_size="standard_d2s_v5",
                                                         target_dedicated_nodes=1, virtual_machine_configuration=VM))
        client.create_job(models.BatchJobCreateOptions(id=ids.job_id,
                                                       pool_info=models.BatchPoolInfo(pool_id=ids.pool_id)))
        client.create_task(ids.job_id, models.BatchTaskCreateOptions(id="long", command_line=gated(tmp_path / "never")))
        env = {"AZURE_BATCH_ENDPOINT": url, "AZURE_BATCH_ACCOUNT": DEFAULT_ACCOUNT_NAME,
               "AZURE_BATCH_ACCESS_KEY": DEFAULT_ACCOUNT_KEY}
        waiting = start_check_task(local_stack, tmp_path, "--job_id", ids.job_id, "--wait", "--poll_seconds", "0.2",
                                   env=env)
        lines_until(waiting.stdout, "running 1")
        emulator.terminate()
        emulator.wait(30)
        lines_until(waiting.stdout, "The service cannot be reached")
        assert process_alive(waiting.pid)  # still waiting, not crashed
        emulator = start_emulator(port, tmp_path / "root-2", log)  # same port, empty state: the job is gone
        rest, err = waiting.communicate(timeout=120)
    finally:
        if waiting is not None and waiting.poll() is None:
            waiting.kill()
        emulator.terminate()
        emulator.wait(30)
        log.close()
    assert waiting.returncode == 1, rest + err
    assert "The service answers again" in rest
    assert f"Job [{ids.job_id}] no longer exists" in err and err.count("\n") == 1
    assert "Traceback" not in rest + err


def test_tail_follows_a_running_task_to_its_end(local_stack, ids, batch, plain_pool, tmp_path):
    flag = tmp_path / "go"
    add_job(batch, local_stack, ids.job_id, plain_pool, chatty=gated(flag, before="first-line", after="last-line"))
    tail = start_check_task(local_stack, tmp_path, "--job_id", ids.job_id, "--tail", "chatty", "--poll_seconds", "0.1")
    try:
        lines_until(tail.stdout, "first-line")
        assert tail.poll() is None  # still following
        flag.touch()
        out, err = tail.communicate(timeout=60)
    finally:
        if tail.poll() is None:
            tail.kill()
    assert tail.returncode == 0, err
    assert out == "last-line\n"  # the rest, after first-line, and nothing twice
    assert "Task [chatty]: following its stdout.txt and stderr.txt: running on node" in err
    assert "Task [chatty] completed: succeeded (exit code 0)" in err
    assert not (tmp_path / "outputs").exists()


def test_tail_says_what_it_follows_before_the_first_line(local_stack, ids, batch, plain_pool, tmp_path):
    flag = tmp_path / "go"
    add_job(batch, local_stack, ids.job_id, plain_pool, chatty=gated(flag, before="first-line", after="last-line"))
    wait_for(lambda: batch.get_task(ids.job_id, "chatty").state == "running", what="the task to run")
    tail = start_check_task(local_stack, tmp_path, "--job_id", ids.job_id, "--tail", "chatty", "--poll_seconds", "0.1",
                            merged=True)
    try:
        seen = lines_until(tail.stdout, "first-line")
        flag.touch()
        tail.communicate(timeout=60)
    finally:
        if tail.poll() is None:
            tail.kill()
    assert "Task [chatty]: following its stdout.txt and stderr.txt: running on node" in "".join(seen[:-1]), seen


def test_tail_of_a_finished_task_prints_it_whole(run_script, ids, local_stack, batch, plain_pool):
    add_job(batch, local_stack, ids.job_id, plain_pool, done="/bin/bash -c 'echo one; echo two; exit 4'")
    wait_completed(batch, ids.job_id, "done")
    result = run_script("check_task.py", "--job_id", ids.job_id, "--tail", "done")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "one\ntwo\n"
    assert "Task [done] completed: FAILED (exit code 4)" in result.stderr


def test_tail_of_a_program_that_writes_only_stdout_is_its_stdout_byte_for_byte(ids, local_stack, batch, plain_pool,
                                                                              tmp_path):
    add_job(batch, local_stack, ids.job_id, plain_pool, bare="/bin/bash -c 'printf \"one\\r\\ntwo\"'")
    wait_completed(batch, ids.job_id, "bare")
    # Bytes, not text: universal newlines would hide a changed line end.
    argv = [sys.executable, str(REPO_ROOT / "check_task.py"), "--job_id", ids.job_id, "--tail", "bare"]
    result = subprocess.run(argv, cwd=tmp_path, env=stack_module.script_environment(local_stack),
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"one\r\ntwo"  # no newline added to its last line, its carriage return kept
    assert b"Task [bare] completed: succeeded (exit code 0)" in result.stderr


def test_tail_follows_stderr_too_and_marks_the_lines_once_both_have_output(local_stack, ids, batch, plain_pool,
                                                                           tmp_path):
    flag = tmp_path / "go"
    command = (f"/bin/bash -c 'echo computing; while [ ! -e {flag} ]; do sleep 0.05; done; "
               "echo a frame of the error >&2; echo ValueError: bad input >&2; echo after; exit 1'")
    add_job(batch, local_stack, ids.job_id, plain_pool, mixed=command)
    tail = start_check_task(local_stack, tmp_path, "--job_id", ids.job_id, "--tail", "mixed", "--poll_seconds", "0.1")
    try:
        first = lines_until(tail.stdout, "computing")
        assert first == ["computing\n"]  # only stdout so far: its lines as they are
        flag.touch()
        out, err = tail.communicate(timeout=60)
    finally:
        if tail.poll() is None:
            tail.kill()
    assert tail.returncode == 0, err
    # Every line marked and whole, each stream's in its order; a poll reads stdout's new lines, then stderr's,
    # so how the streams interleave depends on where the polls fall between the echoes.
    printed = out.splitlines()
    assert [line for line in printed if not line.startswith("stderr| ")] == ["stdout| after"], out
    assert [line for line in printed if not line.startswith("stdout| ")] == ["stderr| a frame of the error",
                                                                             "stderr| ValueError: bad input"], out
    assert "stdout.txt and stderr.txt both have output: each line is now marked stdout| or stderr|" in err
    assert "Task [mixed] completed: FAILED (exit code 1)" in err


def test_the_help_commands_for_a_subtasks_output_work_as_shown(run_script, ids, local_stack, batch, az_executable,
                                                               tmp_path):
    """check_task.py --help (and the README) show two az commands for a subtask's stdout.txt: run them, with
    the placeholders filled in from the first one's answer, and the file arrives."""
    import json
    import shlex

    from tests.e2e.test_node_failures import az_environment

    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    assert created.returncode == 0, created.stderr
    # Nodes that stay after the task (one that leaves the pool takes its files), as while a user looks.
    keep_nodes(batch, ids.pool_id)
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id)
    assert sent.returncode == 0, sent.stderr
    wait_completed(batch, ids.job_id, ids.task_id)
    shown = run_script("check_task.py", "--help").stdout
    listing, download = [" ".join(line.strip().rstrip("\\") for line in block.splitlines())
                         for block in re.findall(r"^  (az batch .*(?:\n    .*)*)", shown, re.MULTILINE)]
    env = az_environment(local_stack, tmp_path)

    def az(command):
        done = subprocess.run([str(az_executable), *shlex.split(command)[1:], "--output", "json"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        return done.stdout

    [subtask] = json.loads(az(listing.replace("JOB", ids.job_id).replace("TASK", ids.task_id)))
    node = subtask["nodeInfo"]
    az(download.replace("POOL", ids.pool_id).replace("NODE", node["nodeId"])
       .replace("TASK_ROOT_DIRECTORY", node["taskRootDirectory"]))
    assert "ready for MPI" in (tmp_path / "sub-stdout.txt").read_text()


def test_tail_of_an_unknown_task_is_one_line(run_script, ids, local_stack, batch, plain_pool):
    add_job(batch, local_stack, ids.job_id, plain_pool)
    result = run_script("check_task.py", "--job_id", ids.job_id, "--tail", "nope")
    assert result.returncode == 1
    # --tail says on stderr how it signs in (stdout is the task's output), then the error in one line
    problem = [line for line in result.stderr.splitlines() if not line.startswith("Signing in to Batch")]
    assert len(problem) == 1, result.stderr
    assert problem[0] == ("Error: The service refused the request: TaskNotFound: the job has no task with that id: "
                          "list its tasks with python3 check_task.py --job_id JOB_ID --verbose.")


def test_wait_on_a_terminal_redraws_a_live_view(ids, local_stack, batch, plain_pool, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    add_job(batch, local_stack, ids.job_id, plain_pool, a="/bin/echo a")
    wait_completed(batch, ids.job_id, "a")
    primary, secondary = pty.openpty()
    # 40 columns: narrower than the job's line, which the live view must cut rather than let wrap.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))
    env = {name: value for name, value in stack_module.script_environment(local_stack).items()
           if name not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "check_task.py"), "--job_id", ids.job_id, "--wait",
                             "--poll_seconds", "0.2"], cwd=tmp_path, env=env,
                            stdin=subprocess.DEVNULL, stdout=secondary, stderr=subprocess.PIPE)
    import os

    os.close(secondary)
    output = b""
    try:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        proc.wait(60)
    finally:
        os.close(primary)
        if proc.poll() is None:
            proc.kill()
    text = output.decode()
    assert proc.returncode == 0, text
    job_line = f"Job [{ids.job_id}]: active 0, running 0, completed 1"
    assert "waited " in text and len(job_line) > 40
    *live_views, after_the_end = text.split("\x1b[J")
    drawn = [row.rpartition("\x1b[J")[2] for view in live_views for row in view.splitlines()
             if row.startswith(("Job [", "waited ", "\x1b"))]  # the rows of the live view, not events
    assert drawn and all(len(row) <= 39 for row in drawn), text
    assert job_line in after_the_end and "waited " not in after_the_end, text
    wait_for(lambda: (tmp_path / "outputs" / ids.job_id / "a" / "stdout.txt").exists(), what="the download")
