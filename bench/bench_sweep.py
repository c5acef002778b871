"""Adding a parameter sweep: 1,000 tasks with one `send_task.py --sweep` call beside one send_task.py call per
task, against the local stack (Azurite + Batch emulator).

    .venv/bin/python -m bench.bench_sweep [--tasks 1000] [--single_calls 50]    (from the repository root)

The pool's autoscale is disabled and the pool resized to 0 nodes first, so no task runs while they are
added: the figures are the adding only. The one-call-per-task baseline is timed over --single_calls calls
(each a whole python3 process, as a user's shell loop would run it) and scaled to --tasks. It asserts
nothing: it prints what it measured.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from toolkit.redaction import redact
from tools import local_stack

REPO_ROOT = Path(__file__).resolve().parent.parent
POOL_ID, JOB_ID = "bench-sweep-pool", "bench-sweep-job"


def run(argv: list[str], env: dict[str, str], cwd: str, secrets: tuple[str, ...]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {redact(done.stderr.strip(), secrets=secrets)}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--single_calls", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, local_stack.start_stack(Path(workdir) / "stack") as stack:
        env = local_stack.script_environment(stack)
        keys = (stack.batch_key, stack.storage_key)
        run([str(REPO_ROOT / "create_pool_job.py"), "--pool_id", POOL_ID, "--job_id", JOB_ID], env, workdir, keys)
        from azure.batch import BatchClient, models
        from azure.core.credentials import AzureNamedKeyCredential

        client = BatchClient(stack.batch_endpoint, AzureNamedKeyCredential(stack.batch_account, stack.batch_key))
        client.disable_pool_auto_scale(POOL_ID)
        client.begin_resize_pool(POOL_ID, models.BatchPoolResizeOptions(target_dedicated_nodes=0),
                                 polling_interval=1).result()
        sweep = Path(workdir) / "sweep.txt"
        sweep.write_text("".join(f"--intervals {1000 + n}\n" for n in range(args.tasks)))
        swept = run([str(REPO_ROOT / "send_task.py"), "--job_id", JOB_ID, "--task_id", "s", "--sweep", str(sweep)],
                    env, workdir, keys)
        single = [run([str(REPO_ROOT / "send_task.py"), "--job_id", JOB_ID, "--task_id", f"one-{n}"], env, workdir,
                      keys) for n in range(args.single_calls)]
        added = sum(1 for _ in client.list_tasks(JOB_ID, select=["id"]))
    per_call = sum(single) / len(single)
    print(f"Adding {args.tasks:,} MPI tasks to a job (local stack; {added:,} tasks in the job at the end):")
    print(f"  {'one send_task.py --sweep call':<45} {swept:8.2f} s")
    print(f"  {'one send_task.py call per task':<45} {per_call * args.tasks:8.2f} s   "
          f"({per_call:.3f} s a call, timed over {args.single_calls} calls)")
    print(f"  {'speed-up':<45} {per_call * args.tasks / swept:8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
