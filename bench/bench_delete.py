"""Time delete_pool_job.py against the local stack, beside the SDK's own long-running-operation poller.

    .venv/bin/python -m bench.bench_delete [--rounds 3]    (from the repository root)

Each round creates a pool and a job (create_pool_job.py), then deletes both:
- delete_pool_job.py --yes (default --poll_seconds 5: its first check comes after 0.25 s, then
  doubles), as a whole process (start-up and its reads included);
- baseline: begin_delete_job(...).result() then begin_delete_pool(...).result() with the SDK's
  default polling interval (5 s), in this process.
It asserts nothing: it prints the median of each.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from toolkit.redaction import redact
from tools import local_stack

REPO_ROOT = Path(__file__).resolve().parent.parent


def create(env: dict[str, str], pool_id: str, job_id: str) -> None:
    result = subprocess.run([sys.executable, "create_pool_job.py", "--pool_id", pool_id, "--job_id", job_id],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise SystemExit(f"create_pool_job.py failed: {redact(result.stderr.strip())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    script_times, sdk_times = [], []
    with tempfile.TemporaryDirectory() as workdir, local_stack.start_stack(workdir) as stack:
        env = local_stack.script_environment(stack)
        client = BatchClient(stack.batch_endpoint, AzureNamedKeyCredential(stack.batch_account, stack.batch_key))
        for round_number in range(args.rounds):
            create(env, f"bench-a{round_number}", f"bench-ja{round_number}")
            started = time.perf_counter()
            result = subprocess.run([sys.executable, "delete_pool_job.py", "--pool_id", f"bench-a{round_number}",
                                     "--job_id", f"bench-ja{round_number}", "--yes"], cwd=REPO_ROOT, env=env,
                                    capture_output=True, text=True, timeout=300)
            script_times.append(time.perf_counter() - started)
            if result.returncode != 0:
                raise SystemExit(f"delete_pool_job.py failed: {redact(result.stderr.strip())}")
            create(env, f"bench-b{round_number}", f"bench-jb{round_number}")
            started = time.perf_counter()
            client.begin_delete_job(f"bench-jb{round_number}").result()
            client.begin_delete_pool(f"bench-b{round_number}").result()
            sdk_times.append(time.perf_counter() - started)
    print(f"delete job + pool, median of {args.rounds} rounds:")
    print(f"  delete_pool_job.py --yes (whole process):        {statistics.median(script_times):6.2f} s")
    print(f"  baseline: SDK begin_delete_*().result() (5 s):   {statistics.median(sdk_times):6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
