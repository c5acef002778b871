"""How long a task whose rank 1 raises keeps its nodes after the crash: the default START_COMMAND (python3 -m
mpi4py) beside the old one (plain python3), against the local stack (Azurite + Batch emulator, --isolation none).

    .venv/bin/python -m bench.bench_crash [--processes 3] [--wall_clock_minutes 1]    (from the repository root)

Each run sends, as PROGRAM, a crashing program from a temporary repository (the checkout's install.sh and
requirements_node.txt beside it): rank 1 writes the time to stderr and raises while the others wait at a
barrier. The figure is from that time to the task's end (its executionInfo.endTime, when it turned failed;
the emulator and the ranks share this machine's clock), read back from the stderr.txt that check_task.py
downloads; the task's whole run (startTime to endTime) is printed beside it. The old command line ends only
at the task's wall clock (--wall_clock_minutes, kept short so that the bench ends). It asserts nothing: it
prints what it measured.
"""

import argparse
import datetime
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from config_resources import INSTALL_SCRIPT, NODE_REQUIREMENTS, default_start_command
from tests.git_repos import make_repository
from toolkit.batch import wire_value
from toolkit.progress import task_result
from toolkit.redaction import redact
from tools import local_stack

if TYPE_CHECKING:
    from azure.batch import BatchClient

REPO_ROOT = Path(__file__).resolve().parent.parent
PROGRAM = "src/crash.py"
CRASH_MARK = "bench_crash: rank 1 raises at unix time "
CRASHING_PROGRAM = f'''"""Rank 1 writes when it raises, then raises, while the other ranks wait at a barrier."""
import sys
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD
if comm.Get_rank() == 1:
    print(f"{CRASH_MARK}{{time.time():.6f}}", file=sys.stderr, flush=True)
    raise RuntimeError(f"rank 1 of {{comm.Get_size()}} broke on purpose")
comm.barrier()
'''


@dataclass(frozen=True)
class Crash:
    after_crash: float  # seconds from the raise to the task's failed state
    ran: float          # seconds from the task's start to its failed state
    result: str         # how check_task.py words its end, e.g. FAILED (exit code 1)


def run(argv: list[str], env: Mapping[str, str], cwd: str, secrets: tuple[str, ...],
        ok: tuple[int, ...] = (0,)) -> None:
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if result.returncode not in ok:
        raise SystemExit(f"{' '.join(argv[1:])} failed: {redact(result.stderr.strip(), secrets=secrets)}")


def crash_time(stderr_file: Path) -> datetime.datetime:
    found = re.search(re.escape(CRASH_MARK) + r"([0-9.]+)", stderr_file.read_text())
    if found is None:
        raise SystemExit(f"{stderr_file} does not say when rank 1 raised")
    return datetime.datetime.fromtimestamp(float(found.group(1)), datetime.timezone.utc)


def crash_to_failed(client: "BatchClient", env: Mapping[str, str], workdir: str, name: str, secrets: tuple[str, ...],
                    timeout: float) -> Crash:
    """Send the task, wait for it to complete, download its outputs (check_task.py) and time it."""
    pool_id = job_id = f"bench-crash-{name}"
    run([sys.executable, str(REPO_ROOT / "create_pool_job.py"), "--pool_id", pool_id, "--job_id", job_id], env,
        workdir, secrets)
    run([sys.executable, str(REPO_ROOT / "send_task.py"), "--job_id", job_id, "--task_id", "t"], env, workdir,
        secrets)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get_task(job_id, "t")
        info = task.execution_info
        if wire_value(task.state) == "completed" and info and info.start_time and info.end_time:
            # It downloads the outputs; its exit code 3 says a task failed, as this one should.
            run([sys.executable, str(REPO_ROOT / "check_task.py"), "--job_id", job_id], env, workdir, secrets,
                ok=(0, 3))
            crashed = crash_time(Path(workdir) / "outputs" / job_id / "t" / "stderr.txt")
            return Crash(after_crash=(info.end_time - crashed).total_seconds(),
                         ran=(info.end_time - info.start_time).total_seconds(), result=task_result(task)[0])
        time.sleep(0.2)
    raise SystemExit(f"the {name} task did not complete within {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--wall_clock_minutes", type=int, default=1)
    args = parser.parse_args()

    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    new = default_start_command(args.processes, PROGRAM)
    old = new.replace("python3 -m mpi4py ", "python3 ")
    with tempfile.TemporaryDirectory() as workdir, local_stack.start_stack(Path(workdir) / "stack") as stack:
        files = {name: (REPO_ROOT / name).read_text() for name in (INSTALL_SCRIPT, NODE_REQUIREMENTS)}
        repository = make_repository(Path(workdir) / "repo", {**files, PROGRAM: CRASHING_PROGRAM})
        client = BatchClient(stack.batch_endpoint, AzureNamedKeyCredential(stack.batch_account, stack.batch_key))
        secrets = (stack.batch_key, stack.storage_key)
        figures = {}
        for name, command in (("python3-m-mpi4py", new), ("python3", old)):
            env = local_stack.script_environment(stack, REPOSITORY_URL=str(repository), NB_NODES=str(args.processes),
                                                 NB_PROCESSES=str(args.processes), START_COMMAND=command,
                                                 TASK_MAX_WALL_CLOCK_MINUTES=str(args.wall_clock_minutes))
            figures[name] = crash_to_failed(client, env, workdir, name, secrets,
                                            timeout=args.wall_clock_minutes * 60 + 120)
    print(f"Rank 1 of {args.processes} raises while the others wait at a barrier "
          f"(wall clock {args.wall_clock_minutes} min):")
    print(f"  {'':<30} {'crash -> failed':>16} {'start -> failed':>16}")
    for label, name in (("default (python3 -m mpi4py)", "python3-m-mpi4py"), ("baseline (python3, before)", "python3")):
        crash = figures[name]
        print(f"  {label:<30} {crash.after_crash:14.2f} s {crash.ran:14.2f} s   {crash.result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
