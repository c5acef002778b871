"""How long a task whose rank 1 raises keeps its nodes: the default START_COMMAND (python3 -m mpi4py) beside
the old one (plain python3), against the local stack (Azurite + Batch emulator, --isolation none).

    .venv/bin/python -m bench.bench_crash [--processes 3] [--wall_clock_minutes 1]    (from the repository root)

Each run sends tests/programs/crash.py as PROGRAM (rank 1 raises while the others wait at a barrier) and
measures, from the task's own times, how long it ran: from its start to the failed state. The crash itself
comes a fraction of a second after the start, so that is the time from the crash to the failed state, give
or take the interpreter's start-up. The old command line ends only at the task's wall clock
(--wall_clock_minutes, kept short so that the bench ends). It asserts nothing: it prints what it measured.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from config_resources import default_start_command
from toolkit.batch import wire_value
from toolkit.redaction import redact
from tools import local_stack

if TYPE_CHECKING:
    from azure.batch import BatchClient

REPO_ROOT = Path(__file__).resolve().parent.parent
PROGRAM = "tests/programs/crash.py"


def run(argv: list[str], env: Mapping[str, str], cwd: str, secrets: tuple[str, ...]) -> None:
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[1:])} failed: {redact(result.stderr.strip(), secrets=secrets)}")


def crash_to_failed(client: "BatchClient", env: Mapping[str, str], workdir: str, name: str, secrets: tuple[str, ...],
                    timeout: float) -> float:
    """Seconds the task ran (executionInfo end - start) once it has completed."""
    pool_id, job_id = f"bench-crash-{name}", f"bench-crash-{name}"
    script = str(REPO_ROOT / "create_pool_job.py")
    run([sys.executable, script, "--pool_id", pool_id, "--job_id", job_id], env, workdir, secrets)
    run([sys.executable, str(REPO_ROOT / "send_task.py"), "--job_id", job_id, "--task_id", "t"], env, workdir,
        secrets)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get_task(job_id, "t")
        info = task.execution_info
        if wire_value(task.state) == "completed" and info and info.start_time and info.end_time:
            return (info.end_time - info.start_time).total_seconds()
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
        client = BatchClient(stack.batch_endpoint, AzureNamedKeyCredential(stack.batch_account, stack.batch_key))
        secrets = (stack.batch_key, stack.storage_key)
        figures = {}
        for name, command in (("python3-m-mpi4py", new), ("python3", old)):
            env = local_stack.script_environment(stack, NB_NODES=str(args.processes),
                                                 NB_PROCESSES=str(args.processes), START_COMMAND=command,
                                                 TASK_MAX_WALL_CLOCK_MINUTES=str(args.wall_clock_minutes))
            figures[name] = crash_to_failed(client, env, workdir, name, secrets,
                                            timeout=args.wall_clock_minutes * 60 + 120)
    print(f"Rank 1 of {args.processes} raises; how long the task ran until it failed "
          f"(wall clock {args.wall_clock_minutes} min):")
    print(f"  {'default (python3 -m mpi4py)':<32} {figures['python3-m-mpi4py']:8.1f} s")
    print(f"  {'baseline (python3, before)':<32} {figures['python3']:8.1f} s   (ended by its wall clock)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
