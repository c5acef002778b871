"""delete_pool_job.py against the emulator: deletes what exists, waits for it, is safe to re-run, refuses
what would surprise (a pool other jobs use, no terminal without --yes), and changes nothing in a dry run."""

import contextlib
import http.server
import os
import platform
import pty
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.batch import models
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

import delete_pool_job
from tests.conftest import wait_for
from tests.e2e.conftest import REPO_ROOT, SCRIPT_TIMEOUT
from tests.git_repos import serving
from tools import local_stack as stack_module

FAST = ("--poll_seconds", "0.2")
VM = models.VirtualMachineConfiguration(
    image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
    node_agent_sku_id="batch.node.ubuntu 24.04")


def create(run_script, pool_id, job_id):
    result = run_script("create_pool_job.py", "--pool_id", pool_id, "--job_id", job_id)
    assert result.returncode == 0, result.stderr


# read(2)'s number on Linux, as /proc/PID/syscall shows it (elsewhere, or on another architecture, the SIGINT is
# sent without waiting).
READ_SYSCALL = {"x86_64": "0", "aarch64": "63"}.get(platform.machine()) if sys.platform == "linux" else None


def reading_stdin(pid: int) -> bool:
    """Whether the process is blocked in read(2) on its file descriptor 0."""
    if READ_SYSCALL is None:
        return True
    fields = Path(f"/proc/{pid}/syscall").read_text().split()
    return len(fields) > 1 and fields[0] == READ_SYSCALL and int(fields[1], 16) == 0


def exists(getter, resource_id):
    try:
        getter(resource_id)
        return True
    except ResourceNotFoundError:
        return False


def test_deletes_job_then_pool_and_a_rerun_is_success(run_script, ids, batch):
    create(run_script, ids.pool_id, ids.job_id)
    sleeper = {"START_COMMAND": "/bin/bash -c 'sleep 60'"}
    assert run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, env=sleeper).returncode == 0
    wait_for(lambda: batch.get_task(ids.job_id, ids.task_id).state == "running", timeout=60, what="the task to run")

    result = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--yes", *FAST)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1 running" in out
    assert out.index(f"Deleting job [{ids.job_id}]...") < out.index(f"Deleting pool [{ids.pool_id}]...")
    assert f"Pool [{ids.pool_id}] deleted." in out
    assert not exists(batch.get_job, ids.job_id) and not exists(batch.get_pool, ids.pool_id)

    again = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--yes", *FAST)
    assert again.returncode == 0, again.stderr
    assert f"No job [{ids.job_id}] in this account: already deleted, or a mistyped id (python3 check_task.py " \
           "lists the jobs)." in again.stdout
    assert f"No pool [{ids.pool_id}] in this account: already deleted, or a mistyped id (python3 check_task.py " \
           "shows the pools in use)." in again.stdout
    assert "Nothing to do." in again.stdout


@contextlib.contextmanager
def held_download() -> Iterator[tuple[str, threading.Event, threading.Event]]:
    """(url, asked, release): a file served on loopback whose GET is answered only once `release` is set;
    `asked` is set when the GET arrives. The emulator stops a task's processes at once but lets a download it
    began finish, so a task downloading this resource file keeps its job, and the pool whose node runs it, in
    state deleting until the test releases it."""
    asked, release = threading.Event(), threading.Event()

    class Held(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.set()
            release.wait(timeout=SCRIPT_TIMEOUT)
            body = b"released\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # no access log on the test's stderr
            pass

    with serving(Held) as port:
        try:
            yield f"http://127.0.0.1:{port}/held.txt", asked, release
        finally:
            release.set()


def lines_of(stream, lines: list[str]) -> threading.Thread:
    """Append each line of `stream` to `lines` as it comes (so a test can wait for one), in a thread."""
    def read() -> None:
        for line in stream:
            lines.append(line)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


@pytest.mark.parametrize("kind", ["job", "pool"])
def test_waits_for_a_job_or_pool_already_being_deleted(local_stack, ids, batch, kind):
    """A delete sent earlier (as before a Ctrl-C) and still under way is waited for, saying so every
    PROGRESS_SECONDS, until the job or pool is gone."""
    resource_id = ids.job_id if kind == "job" else ids.pool_id
    get = batch.get_job if kind == "job" else batch.get_pool
    begin_delete = batch.begin_delete_job if kind == "job" else batch.begin_delete_pool
    batch.create_pool(models.BatchPoolCreateOptions(id=ids.pool_id, vm_size="standard_d2s_v5",
                                                    target_dedicated_nodes=1, virtual_machine_configuration=VM))
    proc = None
    try:
        batch.create_job(models.BatchJobCreateOptions(id=ids.job_id,
                                                      pool_info=models.BatchPoolInfo(pool_id=ids.pool_id)))
        with held_download() as (url, asked, release):
            batch.create_task(ids.job_id, models.BatchTaskCreateOptions(
                id=ids.task_id, command_line="true",
                resource_files=[models.ResourceFile(http_url=url, file_path="held.txt")]))
            wait_for(asked.is_set, timeout=60, what="the task to download its resource file")
            begin_delete(resource_id, polling_interval=60)  # sent, not waited for (as before a Ctrl-C)
            assert get(resource_id).state == "deleting"

            proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "delete_pool_job.py"), f"--{kind}_id",
                                     resource_id, "--yes", *FAST], cwd=REPO_ROOT,
                                    env=stack_module.script_environment(local_stack), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            printed: list[str] = []
            reader = lines_of(proc.stdout, printed)
            still = re.compile(rf"  still deleting {kind} \[{resource_id}\] \((\d+) s\)\.\.\.\n")
            wait_for(lambda: any(still.fullmatch(line) for line in printed),
                     timeout=delete_pool_job.PROGRESS_SECONDS + 60, what="the script to say it still waits")
            assert get(resource_id).state == "deleting"  # held: it is waiting for the delete, not done
        # Released: the download ends, the task is stopped, the job or pool goes.
        proc.wait(timeout=SCRIPT_TIMEOUT)
        reader.join(timeout=SCRIPT_TIMEOUT)
        err = proc.stderr.read()
        assert proc.returncode == 0, "".join(printed) + err
        assert "Traceback" not in err
        [waited] = [int(match.group(1)) for match in map(still.fullmatch, printed) if match]
        assert waited >= delete_pool_job.PROGRESS_SECONDS
        assert printed[printed.index("This will:\n"):] == [  # what follows the sign-in line
            "This will:\n",
            f"  - wait for {kind} [{resource_id}], which is already being deleted\n",
            f"Deleting {kind} [{resource_id}]...\n",
            f"  still deleting {kind} [{resource_id}] ({waited} s)...\n",
            f"{kind.capitalize()} [{resource_id}] deleted.\n"]
        assert not exists(get, resource_id)
    finally:  # what the test did not delete goes too (a pool's nodes count against the emulator's maximum)
        if proc is not None and proc.poll() is None:  # the test failed while the script waited
            proc.kill()
            proc.wait()
        for begin, other in ((batch.begin_delete_job, ids.job_id), (batch.begin_delete_pool, ids.pool_id)):
            with contextlib.suppress(HttpResponseError):
                begin(other, polling_interval=60)


def test_terminates_one_task_and_keeps_the_job(run_script, ids, batch):
    create(run_script, ids.pool_id, ids.job_id)
    sleeper = {"START_COMMAND": "/bin/bash -c 'sleep 60'"}
    assert run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, env=sleeper).returncode == 0
    wait_for(lambda: batch.get_task(ids.job_id, ids.task_id).state == "running", timeout=60, what="the task to run")
    result = run_script("delete_pool_job.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--yes", *FAST)
    assert result.returncode == 0, result.stderr
    assert "(it is running; its processes are stopped, its outputs are uploaded)" in result.stdout
    assert batch.get_task(ids.job_id, ids.task_id).state == "completed"
    assert batch.get_job(ids.job_id).state == "active"
    again = run_script("delete_pool_job.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--yes", *FAST)
    assert again.returncode == 0 and "already completed" in again.stdout
    # A task ended before it ran has no node and no files (see the report on check_task.py): leave none behind.
    assert run_script("delete_pool_job.py", "--job_id", ids.job_id, "--yes", *FAST).returncode == 0


def test_refuses_a_pool_another_active_job_uses_unless_forced(run_script, ids, batch):
    create(run_script, ids.pool_id, ids.job_id)
    result = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--yes", *FAST)
    assert result.returncode == 2
    assert f"used by other active job(s): {ids.job_id}" in result.stderr
    assert f"python3 delete_pool_job.py --job_id {ids.job_id} --yes" in result.stderr
    assert exists(batch.get_pool, ids.pool_id)
    forced = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--yes", "--force", *FAST)
    assert forced.returncode == 0, forced.stderr
    assert not exists(batch.get_pool, ids.pool_id)


def test_dry_run_changes_nothing(run_script, ids, batch):
    create(run_script, ids.pool_id, ids.job_id)
    result = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--dry_run")
    assert result.returncode == 0, result.stderr
    assert f"DELETE {batch._config.endpoint}/jobs/{ids.job_id}" in result.stdout
    assert f"DELETE {batch._config.endpoint}/pools/{ids.pool_id}" in result.stdout
    assert batch.get_job(ids.job_id).state == "active" and batch.get_pool(ids.pool_id).state == "active"


@pytest.mark.parametrize("args, message", [
    ((), "Give --job_id, --pool_id or both"),
    (("--task_id", "t"), "--task_id needs the --job_id of its job"),
    (("--job_id", "j", "--pool_id", "p", "--task_id", "t"), "give it without --pool_id"),
    (("--job_id", "j.1"), "--job_id 'j.1' contains '.'"),
    (("--job_id", "j"), "Refusing to delete without confirmation: there is no terminal to ask in. Add --yes"),
    (("--job_id", "j", "--yes", "--poll_seconds", "0"), "--poll_seconds is 0"),
    # --force only matters to a pool's delete: accepted without --pool_id, it would have been silently ignored
    (("--job_id", "j", "--yes", "--force"), "--force lets --pool_id delete a pool other active jobs use, and there "
                                            "is no --pool_id: drop --force, or add --pool_id POOL_ID."),
    (("--job_id", "j", "--task_id", "t", "--yes", "--force"), "drop --force"),
])
def test_bad_usage_is_one_line_and_exit_2_before_any_request(run_script, args, message):
    # An endpoint where nothing listens: any request would give exit 1, not 2.
    result = run_script("delete_pool_job.py", *args, env={"AZURE_BATCH_ENDPOINT": "http://127.0.0.1:9"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_ctrl_c_during_a_delete_leaves_what_a_rerun_finishes(local_stack, ids, batch, fault, run_script):
    create(run_script, ids.pool_id, ids.job_id)
    fault("delay", "DELETE", f"/pools/{ids.pool_id}", delay=3, count=1)  # the pool's delete is slow to answer
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "delete_pool_job.py"), "--pool_id", ids.pool_id,
                             "--job_id", ids.job_id, "--yes", *FAST], cwd=REPO_ROOT,
                            env=stack_module.script_environment(local_stack), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: fault.fired() == 1, timeout=30, what="the pool's DELETE to be under way")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "Interrupted: a delete already sent goes on at the service. Run the same command again" in err
    assert "Traceback" not in err
    again = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--yes", *FAST)
    assert again.returncode == 0, again.stderr
    assert not exists(batch.get_job, ids.job_id) and not exists(batch.get_pool, ids.pool_id)


def test_the_question_in_a_terminal(local_stack, ids, batch, run_script):
    """In a terminal it asks; anything but y deletes nothing."""
    create(run_script, ids.pool_id, ids.job_id)

    def answer(reply: str) -> tuple[int, str]:
        leader, follower = pty.openpty()
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "delete_pool_job.py"), "--job_id", ids.job_id, *FAST],
                                cwd=REPO_ROOT, env=stack_module.script_environment(local_stack), stdin=follower,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        os.close(follower)
        if reply:
            os.write(leader, reply.encode())
            out, _ = proc.communicate(timeout=60)
        else:  # interrupt it once it asks
            assert proc.stdout is not None
            asked = ""
            while "Go ahead? [y/N] " not in asked:
                chunk = os.read(proc.stdout.fileno(), 4096).decode()
                assert chunk, asked
                asked += chunk
            # Only once it waits in read(2): a SIGINT that comes between the prompt and the read is noted by
            # Python but does not end the read, so the script would wait for an answer (seen on a busy machine).
            wait_for(lambda: reading_stdin(proc.pid), timeout=30, what="delete_pool_job.py to read its answer")
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=60)
            out = asked + rest
        os.close(leader)
        return proc.returncode, out

    code, out = answer("n\n")
    assert code == 1 and "Go ahead? [y/N]" in out and "Nothing deleted: not confirmed" in out
    assert batch.get_job(ids.job_id).state == "active"
    code, out = answer("")  # Ctrl-C at the question: the message starts on a line of its own
    assert code == 130 and "Go ahead? [y/N] \nError: Interrupted: nothing deleted." in out, out
    assert batch.get_job(ids.job_id).state == "active"
    code, out = answer("\x04")  # Ctrl-D: likewise
    assert code == 1 and "Go ahead? [y/N] \nError: Nothing deleted: not confirmed" in out, out
    code, out = answer("y\n")
    assert code == 0 and f"Job [{ids.job_id}] deleted." in out, out
