"""`make local`: Azurite and the Batch emulator in the foreground, for your own work.

    .venv/bin/python -m tools.local [--env_file .local/local.env] [--workdir .local/stack]

It runs the stack of tools/local_stack.py, writes .local/local.env (git-ignored; the container URL
and Azurite's published development key, so the scripts make their own short-lived SAS), prints the
`export BATCH_TOOLKIT_ENV_FILE=...` line to use it with the scripts, and stops both services on
Ctrl-C or SIGTERM. Exit codes: 0 stopped, 1 the stack could not start.
"""

import argparse
import signal
import sys
import time
from pathlib import Path

from tools.local_stack import (
    ENV_FILE_VARIABLE,
    HOST,
    REPO_ROOT,
    LocalStack,
    LocalStackError,
    start_stack,
    toolkit_environment,
    write_env_file,
)

LOCAL_WORKDIR = REPO_ROOT / ".local" / "stack"
LOCAL_ENV_FILE = REPO_ROOT / ".local" / "local.env"


def local_environment(stack: LocalStack) -> dict[str, str]:
    """The variables of .local/local.env: the stack's account, and the container with Azurite's key (the scripts
    then make a short-lived SAS per use, so nothing expires while the stack runs)."""
    variables = toolkit_environment(stack, stack.container_url)
    variables["AZURE_STORAGE_KEY"] = stack.storage_key
    return variables


def serve(env_file: Path = LOCAL_ENV_FILE, workdir: Path = LOCAL_WORKDIR) -> int:
    """Run the stack until Ctrl-C (or SIGTERM); returns the exit code."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops the services too, like Ctrl-C
    try:
        print(f"Starting Azurite and the Batch emulator on {HOST} ...", flush=True)
        with start_stack(workdir) as stack:
            env_file.parent.mkdir(parents=True, exist_ok=True)
            write_env_file(env_file, local_environment(stack))
            print(f"Azurite blob service: {stack.blob_endpoint} (container {stack.container}, created)")
            print(f"Batch emulator:       {stack.batch_endpoint} (account {stack.batch_account})")
            print(f"Settings for the scripts: {env_file} (REPOSITORY_URL is this checkout; the environment wins)")
            print("Use them from another shell:")
            print(f"    export {ENV_FILE_VARIABLE}={env_file}")
            print("Ctrl-C stops both (their pools, jobs and blobs are kept in memory only).", flush=True)
            while True:
                time.sleep(3600)
    except LocalStackError as error:
        print(f"local stack failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopped Azurite and the Batch emulator.", flush=True)
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Azurite and the Batch emulator in the foreground for your own "
                                                 "work (make local); Ctrl-C stops both.")
    parser.add_argument("--env_file", type=Path, default=LOCAL_ENV_FILE,
                        help=f"where to write the scripts' settings (default {LOCAL_ENV_FILE.relative_to(REPO_ROOT)})")
    parser.add_argument("--workdir", type=Path, default=LOCAL_WORKDIR,
                        help="the services' logs and the emulator's nodes (default "
                             f"{LOCAL_WORKDIR.relative_to(REPO_ROOT)}; emptied at start)")
    args = parser.parse_args(argv)
    return serve(args.env_file.resolve(), args.workdir.resolve())


if __name__ == "__main__":
    sys.exit(main())
