"""The local stack and own-program pages the README links (docs/local-stack.md, docs/your-program.md), run as
written.

`make local` is run through its underlying command (python -m tools.local, what the Makefile's
`local` target runs after `make setup`), with its env file and working directory in the test's temporary
directory; the fenced commands then run in bash from the repository root, with two substitutions: HOME in
the test's directory (for ~/hello-mpi), and the test's env file for `$PWD/.local/local.env`. PATH is the
user's without the venv: the README's `source .venv/bin/activate` must make `python3` the venv's.
Also: one `make local` at a time, its env file gone when it stops, and the clean-up command the scripts
print is the README's.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import process_alive, wait_for
from tests.e2e.conftest import ScriptRunner
from tools import local
from tools import local_stack as stack_module

REPO_ROOT = Path(__file__).resolve().parents[2]
README = (REPO_ROOT / "README.md").read_text()


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def doc(name: str) -> str:
    """A page of docs/ (the README links each)."""
    return (REPO_ROOT / "docs" / name).read_text()


def fenced(text: str) -> list[str]:
    return re.findall(r"^```\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def start_make_local(env_file: Path, workdir: Path) -> tuple[subprocess.Popen, list[str]]:
    """python -m tools.local in its own session; returns the process and the list its output lines go to."""
    proc = subprocess.Popen([sys.executable, "-m", "tools.local", "--env_file", str(env_file),
                             "--workdir", str(workdir)], cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    return proc, lines


@pytest.fixture
def make_local(tmp_path):
    """The foreground stack of `make local`; yields (its env file, its output so far, its process).

    Before it starts, lock files are left as a run killed with SIGKILL leaves them: they must not block."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^local: setup\n\t\$\(VENV_PYTHON\) -m tools.local$", makefile, re.MULTILINE)
    env_file, workdir = tmp_path / "local.env", tmp_path / "stack"
    for stale in (local.lock_path(env_file), local.lock_path(workdir)):
        stale.write_text("4194303\n")
    proc, lines = start_make_local(env_file, workdir)
    try:
        export = wait_for(lambda: next((line.strip() for line in lines if "export BATCH_TOOLKIT_ENV_FILE=" in line),
                                       None) or (proc.poll() is not None and pytest.fail("".join(lines))),
                          timeout=90, what="make local to print its export line")
        assert export == f"export BATCH_TOOLKIT_ENV_FILE={env_file}"
        assert "    source .venv/bin/activate\n" in lines  # before the export line, as in the README
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"
        yield env_file, lines, proc
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C stops both services
        try:
            assert proc.wait(30) == 0, "".join(lines)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    wait_for(lambda: "Stopped Azurite and the Batch emulator.\n" in lines, timeout=5, what="the stop line")
    assert not process_alive(proc.pid)
    assert not env_file.exists()  # its settings would point at stopped services


def run_block(block: str, tmp_path: Path, env_file: Path) -> subprocess.CompletedProcess:
    script = block.replace("$PWD/.local/local.env", str(env_file))
    venv_bin = {str(Path(sys.executable).parent), str(Path(sys.prefix) / "bin")}
    path = os.pathsep.join(entry for entry in os.environ.get("PATH", os.defpath).split(os.pathsep)
                           if entry not in venv_bin)
    env = {"PATH": path,
           "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    (tmp_path / "home").mkdir(exist_ok=True)
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=REPO_ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)


def test_local_stack_and_own_program_sections_run_as_written(make_local, tmp_path):
    env_file, _, _ = make_local
    local_blocks = fenced(doc("local-stack.md"))
    assert local_blocks[0].strip() == "make local"
    own_blocks = [block for block in fenced(doc("your-program.md")) if "python3 " in block]
    assert len(own_blocks) == 1
    try:
        local = run_block(local_blocks[1], tmp_path, env_file)
        assert local.returncode == 0, local.stdout + local.stderr
        assert "Pool [local-pool] deleted." in local.stdout
        assert "pi ~=" in (REPO_ROOT / "outputs" / "local-job" / "run-1" / "stdout.txt").read_text()

        # In the same shell as the local stack's block: its activate and export lines first.
        assert local_blocks[1].splitlines()[0] == "source .venv/bin/activate"
        own = run_block("\n".join(local_blocks[1].splitlines()[:2]) + "\n" + own_blocks[0], tmp_path, env_file)
        assert own.returncode == 0, own.stdout + own.stderr
        # One whole line per rank, in any order (an unbuffered python3 on the nodes would mix them mid-line).
        assert own.stdout.count("hello from rank") == 3 and own.stdout.count("again") == 3, own.stdout
        assert all(re.fullmatch(r"hello from rank \d of 3 again", line)
                   for line in own.stdout.splitlines() if "hello from rank" in line), own.stdout
        assert all(f"rank {rank} of 3" in own.stdout for rank in range(3)), own.stdout
        assert "Pool [hello-pool] deleted." in own.stdout
    finally:
        for job in ("local-job", "hello-job"):
            shutil.rmtree(REPO_ROOT / "outputs" / job, ignore_errors=True)


def test_a_second_make_local_is_refused_while_the_first_runs(make_local, tmp_path):
    env_file, _, first = make_local
    settings = env_file.read_text()
    for other_env_file, other_workdir in ((env_file, tmp_path / "other"), (tmp_path / "other.env", tmp_path / "stack")):
        second = subprocess.run([sys.executable, "-m", "tools.local", "--env_file", str(other_env_file),
                                 "--workdir", str(other_workdir)], cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert second.stdout == ""
        assert second.stderr.count("\n") == 1 and "make local is already running" in second.stderr
        assert f"(pid {first.pid})" in second.stderr
    assert env_file.read_text() == settings  # still the first's
    assert first.poll() is None


def test_after_make_local_stops_the_scripts_say_its_env_file_is_missing(make_local):
    env_file, lines, proc = make_local
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0, "".join(lines)
    assert not env_file.exists()
    checked = subprocess.run([sys.executable, "check_task.py", "--job_id", "local-job"], cwd=REPO_ROOT,
                             env={"PATH": os.environ.get("PATH", os.defpath), "BATCH_TOOLKIT_ENV_FILE": str(env_file)},
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 2 and f"BATCH_TOOLKIT_ENV_FILE names '{env_file}'" in checked.stderr


def test_a_repository_without_install_sh_is_named_by_the_preparation_task(run_script, ids, tmp_path, batch):
    repo = tmp_path / "no-install"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "x.py").write_text("print('x')\n")
    git = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "PATH": os.environ.get("PATH", os.defpath), "HOME": str(tmp_path)}
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"]):
        subprocess.run(command, cwd=repo, env=git, check=True)
    # As a URL: create_pool_job.py refuses a local path without install.sh, but cannot see a URL's files.
    env = {"REPOSITORY_URL": f"file://{repo}", "PROGRAM": "src/x.py"}
    assert run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, env=env).returncode == 0
    assert run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, env=env).returncode == 0
    waited = run_script("check_task.py", "--job_id", ids.job_id, "--wait", "--poll_seconds", "0.3", env=env)
    assert waited.returncode == 3 and "the job preparation task failed" in waited.stderr
    assert "(exit code 3)" in waited.stderr
    status = wait_for(lambda: [s for s in batch.list_job_preparation_and_release_task_status(ids.job_id)
                               if s.job_preparation_task_execution_info is not None], what="the prep status")[0]
    stderr = b"".join(batch.download_node_file(ids.pool_id, status.node_id,
                                          f"{status.job_preparation_task_execution_info.task_root_directory}"
                                          "/stderr.txt")).decode()
    assert f"demo_azure_batch/install.sh not found in REPOSITORY_URL file://{repo}: add it" in stderr


def test_the_clean_up_command_the_script_prints_is_the_readmes(run_script, ids):
    created = run_script("create_pool_job.py", "--pool_id", "mpi-pool-x" + ids.pool_id[-8:],
                         "--job_id", "mpi-job-x" + ids.job_id[-8:])
    assert created.returncode == 0, created.stderr
    printed = re.search(r"python3 delete_pool_job\.py --pool_id (\S+) --job_id (\S+) --yes", created.stdout)
    assert printed, created.stdout
    shape = printed.group(0).replace(printed.group(1), "mpi-pool").replace(printed.group(2), "mpi-job")
    assert shape in fenced(section("Run it on Azure").split("\n### Clean-up\n", 1)[1])[0]
    deleted = run_script("delete_pool_job.py", "--pool_id", printed.group(1), "--job_id", printed.group(2), "--yes",
                         "--poll_seconds", "0.2")
    assert deleted.returncode == 0, deleted.stderr


@pytest.fixture
def own_stack(tmp_path):
    """A stack of its own, for a `check_task.py` without --job_id that reports every active job: no other
    test's jobs. Its autoscale clock runs 60 times faster, not 300: the sample shows the pool's 2 nodes idle
    after the task, which the formula keeps for 3 minutes (3 s here, not 0.6 s, a margin that holds on a
    machine busy with another test worker); the pool grows at the first evaluation, 5 s after create."""
    try:
        with stack_module.start_stack(tmp_path / "stack", emulator_options=("--time-scale", "60")) as stack:
            yield stack
    except stack_module.LocalStackError as error:
        pytest.fail(str(error), pytrace=False)


def test_the_three_commands_sample_outputs_are_what_the_scripts_print(own_stack, ids, tmp_path):
    """"The three commands": each `$ python3 ...` sample is a real run's output, with the README's names for
    the ids, the account, the repository and the container."""
    local_stack, run_script = own_stack, ScriptRunner(own_stack, tmp_path)
    # A clone of HEAD, given as a git URL as in the README (a local folder is packed and uploaded instead,
    # which prints more): a checkout with uncommitted changes would get a warning.
    clone = tmp_path / "repository"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True, capture_output=True)
    sample = fenced(README.split("\n### The three commands\n", 1)[1])[0]
    shown = {command: output for command, output in re.findall(r"^\$ python3 (.+)\n((?:(?!\$ ).*\n)*)", sample,
                                                               flags=re.MULTILINE)}
    names = {ids.pool_id: "mpi-pool", ids.job_id: "mpi-job", ids.task_id: "run-1",
             local_stack.batch_account: "mybatchaccount", f"file://{clone}": "https://github.com/you/mpi-batch.git",
             local_stack.container_url: "https://mystorage.blob.core.windows.net/mpi-outputs"}

    def printed(*args):
        result = run_script(*args, env={"REPOSITORY_URL": f"file://{clone}"})
        assert result.returncode == 0, result.stdout + result.stderr
        text = result.stdout + result.stderr
        for real, readme in names.items():
            text = text.replace(real, readme)
        return text

    created = printed("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    sent = printed("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id)
    waited = run_script("check_task.py", "--job_id", ids.job_id, "--wait", "--poll_seconds", "0.3",
                        "--output_dir", "elsewhere")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    checked = printed("check_task.py")
    try:
        assert shown["create_pool_job.py --pool_id mpi-pool --job_id mpi-job"].strip() == created.strip()
        assert shown["send_task.py --job_id mpi-job --task_id run-1"].strip() == sent.strip()
        assert shown["check_task.py"].strip() == checked.strip()
    finally:
        run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--yes",
                   "--poll_seconds", "0.2")
