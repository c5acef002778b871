"""Time the toolkit's scripts against the local stack (Azurite + Batch emulator) and print the figures.

    .venv/bin/python -m bench.bench_scripts [--jobs 50] [--tasks 20]    (from the repository root)

Measures, each as a whole `python3 script.py` process (start-up included):
- `--help` of each script (imports are kept lazy for this);
- check_task.py over JOBS jobs (one task-counts request per job, in parallel);
- check_task.py downloading the stdout/stderr of TASKS finished tasks (in parallel),
  then again when every file is already downloaded.
It asserts nothing: it prints what it measured.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from toolkit.redaction import redact
from tools import local_stack

REPO_ROOT = Path(__file__).resolve().parent.parent


def timed(argv: list[str], env: Mapping[str, str], cwd: str, repeat: int = 3, secrets: tuple[str, ...] = ()) -> float:
    """The median time of `repeat` runs of `argv`; stops the benchmark if one fails."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(argv[1:])} failed: {redact(result.stderr.strip(), secrets=secrets)}")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=20)
    args = parser.parse_args()

    from azure.batch import BatchClient, models
    from azure.core.credentials import AzureNamedKeyCredential

    with tempfile.TemporaryDirectory() as workdir, local_stack.start_stack(Path(workdir) / "stack") as stack:
        env = local_stack.script_environment(stack)
        keys = (stack.batch_key, stack.storage_key)

        def script(name: str, *rest: str) -> list[str]:
            return [sys.executable, str(REPO_ROOT / name), *rest]

        for name in ("create_pool_job.py", "send_task.py", "check_task.py"):
            print(f"{name} --help: {timed(script(name, '--help'), env, workdir, secrets=keys):.3f} s (median of 3)")

        client = BatchClient(stack.batch_endpoint, AzureNamedKeyCredential(stack.batch_account, stack.batch_key))
        client.create_pool(models.BatchPoolCreateOptions(
            id="bench-pool", vm_size="standard_d2s_v5", target_dedicated_nodes=2,
            virtual_machine_configuration=models.VirtualMachineConfiguration(
                image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts",
                                                             sku="server"),
                node_agent_sku_id="batch.node.ubuntu 24.04")))
        for number in range(args.jobs):
            client.create_job(models.BatchJobCreateOptions(id=f"bench-job-{number:03d}",
                                                           pool_info=models.BatchPoolInfo(pool_id="bench-pool")))
        seconds = timed(script("check_task.py"), env, workdir, secrets=keys)
        print(f"check_task.py over {args.jobs} jobs: {seconds:.3f} s (median of 3)")

        def std_files_upload(task_id: str) -> models.OutputFile:
            return models.OutputFile(
                file_pattern="../std*.txt",
                destination=models.OutputFileDestination(container=models.OutputFileBlobContainerDestination(
                    container_url=local_stack.container_sas_url(stack), path=f"bench-job-000/{task_id}")),
                upload_options=models.OutputFileUploadConfiguration(upload_condition="taskcompletion"))

        tasks = [models.BatchTaskCreateOptions(id=f"task-{number:03d}", command_line="/bin/bash -c 'seq 1 20000'",
                                               output_files=[std_files_upload(f"task-{number:03d}")])
                 for number in range(args.tasks)]
        client.create_tasks("bench-job-000", tasks)
        while client.get_job_task_counts("bench-job-000").task_counts.completed < args.tasks:
            time.sleep(0.2)
        first = timed(script("check_task.py", "--job_id", "bench-job-000"), env, workdir, repeat=1, secrets=keys)
        print(f"check_task.py downloading {2 * args.tasks} files of {args.tasks} tasks: {first:.3f} s")
        again = timed(script("check_task.py", "--job_id", "bench-job-000"), env, workdir, secrets=keys)
        print(f"check_task.py again, every file already downloaded: {again:.3f} s (median of 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
