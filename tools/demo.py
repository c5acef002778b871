"""`make demo`: the toolkit's three scripts end to end, on this machine only.

Starts Azurite and the Batch emulator (tools/local_stack.py), then runs, from
the repository root and with only PATH, HOME, LANG and the stack's settings in
the environment (never your .env or your AZURE_* variables):

    create_pool_job.py --pool_id demo-pool --job_id demo-job
    send_task.py --job_id demo-job --task_id mpi-task-1
    check_task.py --job_id demo-job --wait --poll_seconds 1

prints the MPI program's output from outputs/demo-job/mpi-task-1/stdout.txt
and stops everything. Exit codes: 0 done, 1 a step failed, 130 interrupted.
Its working files (services' logs, the emulator's nodes) go to .local/demo.
"""

import argparse
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from toolkit.redaction import redact
from tools.local_stack import (
    REPO_ROOT,
    LocalStack,
    LocalStackError,
    script_environment,
    start_stack,
)

POOL_ID, JOB_ID, TASK_ID = "demo-pool", "demo-job", "mpi-task-1"
WORKDIR = REPO_ROOT / ".local" / "demo"
OUTPUT_DIR = REPO_ROOT / "outputs"
STEPS = [
    ("create the pool and the job", ["create_pool_job.py", "--pool_id", POOL_ID, "--job_id", JOB_ID], 120),
    ("send the MPI task", ["send_task.py", "--job_id", JOB_ID, "--task_id", TASK_ID], 60),
    ("wait for the task and download its output",
     ["check_task.py", "--job_id", JOB_ID, "--wait", "--poll_seconds", "1"], 300),
]


class StepFailed(Exception):
    pass


def say(message: str) -> None:
    print(message, flush=True)


def run_step(number: int, title: str, argv: list[str], timeout: float, env: dict[str, str],
             secrets: tuple[str, ...]) -> None:
    command = " ".join(argv)
    say(f"[{number}/{len(STEPS)}] {title}: {command}")
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, *argv], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        show(_text(expired.stdout) + _text(expired.stderr), secrets)
        raise StepFailed(f"{argv[0]} did not finish within {timeout:.0f} s") from None
    show(result.stdout + result.stderr, secrets)  # what the script prints is what a user of it would see
    if result.returncode != 0:
        raise StepFailed(f"{argv[0]} failed (exit {result.returncode}); its output is above")
    say(f"      ok ({time.monotonic() - started:.1f} s)")


def _text(output: bytes | str | None) -> str:
    """What a timed-out step printed (bytes or text, or None)."""
    return output.decode(errors="replace") if isinstance(output, bytes) else (output or "")


def show(output: str, secrets: tuple[str, ...] = ()) -> None:
    for line in redact(output, secrets=secrets).rstrip().splitlines():
        say(f"      | {line}")


def account_keys(stack: LocalStack) -> tuple[str, ...]:
    """The keys a step's output must never show."""
    return stack.batch_key, stack.storage_key


def show_program_output(stdout_file: Path) -> None:
    """Print the MPI program's output that check_task.py downloaded; without its pi line, show its
    stderr.txt and fail the demo."""
    if not stdout_file.is_file():
        raise StepFailed(f"check_task.py did not download {stdout_file.relative_to(REPO_ROOT)}")
    output = stdout_file.read_text(errors="replace")
    say(f"\nThe MPI program's output ({stdout_file.relative_to(REPO_ROOT)}):")
    say(output.rstrip())
    if "pi ~=" not in output:
        stderr_file = stdout_file.parent / "stderr.txt"
        show(stderr_file.read_text(errors="replace") if stderr_file.is_file() else "")
        raise StepFailed("the MPI program printed no 'pi ~=' line; its stderr.txt is above")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    # `kill` of the demo stops the services too: SIGTERM unwinds like Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    started = time.monotonic()
    try:
        shutil.rmtree(OUTPUT_DIR / JOB_ID, ignore_errors=True)  # an earlier demo's download
        say("Starting Azurite and the Batch emulator on 127.0.0.1 ...")
        with start_stack(WORKDIR) as stack:
            say(f"      Azurite blob service: {stack.blob_endpoint} (container {stack.container})")
            say(f"      Batch emulator:       {stack.batch_endpoint} (account {stack.batch_account})")
            env = script_environment(stack)
            for number, (title, step_argv, timeout) in enumerate(STEPS, start=1):
                run_step(number, title, step_argv, timeout, env, account_keys(stack))
            say("Stopping Azurite and the Batch emulator ...")
        show_program_output(OUTPUT_DIR / JOB_ID / TASK_ID / "stdout.txt")
        say(f"\nDemo done in {time.monotonic() - started:.0f} s; "
            f"outputs are in {OUTPUT_DIR.relative_to(REPO_ROOT)}/{JOB_ID}/")
        return 0
    except (LocalStackError, StepFailed) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo interrupted; Azurite and the Batch emulator are stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
