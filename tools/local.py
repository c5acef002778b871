"""`make local`: Azurite and the Batch emulator in the foreground, for your own work.

    .venv/bin/python -m tools.local [--env_file .local/local.env] [--workdir .local/stack]

It runs the stack of tools/local_stack.py, writes .local/local.env (git-ignored; the container URL
and Azurite's published development key, so the scripts make their own short-lived SAS), prints the
`source .venv/bin/activate` and `export BATCH_TOOLKIT_ENV_FILE=...` lines to use it with the scripts,
and stops both services on Ctrl-C or SIGTERM, removing the env file (the scripts then say it is
missing, rather than "connection refused"). It watches both: when one stops on its own, it says which
(and the last line of its log), stops the other and removes the env file. Beside the env file it leaves
a marker (toolkit/envfile.py's local_stack_marker), kept when it stops, so that a script given the
missing env file says the local stack is not running and how to start it. One run at a time per env file
and per workdir: a second is refused (a lock file beside each, held while the stack runs, so a killed
run's never blocks).
Exit codes: 0 stopped, 1 the stack could not start, 2 another run uses the same env file or workdir,
3 Azurite or the Batch emulator stopped on its own.
"""

import argparse
import contextlib
import fcntl
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from toolkit.envfile import local_stack_marker
from tools.local_stack import (
    ENV_FILE_VARIABLE,
    HOST,
    REPO_ROOT,
    LocalStack,
    LocalStackError,
    last_line,
    pid_file,
    start_stack,
    toolkit_environment,
    write_env_file,
)

LOCAL_WORKDIR = REPO_ROOT / ".local" / "stack"
LOCAL_ENV_FILE = REPO_ROOT / ".local" / "local.env"
# The services of start_stack, by the name the messages give them and the log each writes in the workdir
# (start_azurite and start_batch_emulator of tools/local_stack.py); _spawn writes the pid beside it.
SERVICES = (("Azurite", "azurite.log"), ("the Batch emulator", "batch_emulator.log"))
# Seconds between two looks at the services: how soon a service that stopped is noticed.
WATCH_INTERVAL = 0.5
EXIT_SERVICE_STOPPED = 3
MARKER_TEXT = ("# make local (python -m tools.local) writes {name} beside this file while Azurite and the Batch\n"
               "# emulator run, and removes it when they stop. This file stays: with it, a script given the missing\n"
               "# {name} says that the local stack is not running. Safe to delete.\n")


@dataclass(frozen=True)
class Service:
    name: str       # as the messages say it: "Azurite", "the Batch emulator"
    log: Path
    pid: int        # a child of this process


def services_of(workdir: Path) -> list[Service]:
    """The services start_stack started in `workdir`, by the pid files _spawn wrote beside their logs."""
    return [Service(name, workdir / log, int(pid_file(workdir / log).read_text())) for name, log in SERVICES]


def how_it_stopped(pid: int) -> str | None:
    """How the child `pid` stopped ('exit 1', 'killed by SIGKILL'), or None while it runs.

    WNOWAIT leaves the child unreaped: its Popen (tools/local_stack.stop_process) still waits for it."""
    try:
        stopped = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped already (not by us: we leave that to its Popen), so it stopped
        return "exit status unknown"
    if stopped is None:
        return None
    if stopped.si_code == os.CLD_EXITED:
        return f"exit {stopped.si_status}"
    try:
        return f"killed by {signal.Signals(stopped.si_status).name}"
    except ValueError:
        return f"killed by signal {stopped.si_status}"


def wait_until_one_stops(services: list[Service]) -> tuple[Service, str]:
    """Block until one of `services` stops on its own; returns it and how it stopped. Ctrl-C (and SIGTERM)
    interrupt it with KeyboardInterrupt."""
    while True:
        for service in services:
            how = how_it_stopped(service.pid)
            if how is not None:
                return service, how
        time.sleep(WATCH_INTERVAL)


def local_environment(stack: LocalStack) -> dict[str, str]:
    """The variables of .local/local.env: the stack's account, and the container with Azurite's key (the scripts
    then make a short-lived SAS per use, so nothing expires while the stack runs)."""
    variables = toolkit_environment(stack, stack.container_url)
    variables["AZURE_STORAGE_KEY"] = stack.storage_key
    return variables


class AlreadyRunning(Exception):
    """Another `make local` holds the lock; the message is the line to print."""


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def hold_lock(path: Path, locks: contextlib.ExitStack) -> None:
    """Lock `path` (by its .lock file) for as long as `locks` is open, or raise AlreadyRunning.

    flock, not the file's existence: the kernel releases it when the process ends however it ends,
    so a killed run's lock file never blocks the next one."""
    lock_file = lock_path(path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    handle = locks.enter_context(open(lock_file, "a+"))
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        raise AlreadyRunning(f"make local is already running with {path} (pid {pid}): use that one, or stop it "
                             "(Ctrl-C in its shell) before starting another") from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()


def activate_command() -> str:
    """`source .../bin/activate` of this interpreter's virtualenv (relative to the checkout when inside it),
    so that `python3` in the user's shell is the one with the toolkit's packages; "" outside a virtualenv."""
    if sys.prefix == sys.base_prefix:
        return ""
    activate = Path(sys.prefix) / "bin" / "activate"
    with contextlib.suppress(ValueError):
        activate = activate.relative_to(REPO_ROOT)
    return f"source {activate}"


def print_how_to_use(stack: LocalStack, env_file: Path) -> None:
    print(f"Azurite blob service: {stack.blob_endpoint} (container {stack.container}, created)")
    print(f"Batch emulator:       {stack.batch_endpoint} (account {stack.batch_account})")
    print(f"Settings for the scripts: {env_file} (REPOSITORY_URL is this checkout; the environment "
          "wins; removed when this stops)")
    print(f"Use them from another shell, in {REPO_ROOT}:")
    activate = activate_command()
    if activate:
        print(f"    {activate}")
    print(f"    export {ENV_FILE_VARIABLE}={env_file}")
    print("Ctrl-C stops both (their pools, jobs and blobs are kept in memory only).", flush=True)


def run_stack(env_file: Path, workdir: Path) -> int:
    """Run the stack until one of its services stops on its own, then stop the other: returns
    EXIT_SERVICE_STOPPED. Ctrl-C and SIGTERM raise KeyboardInterrupt, a failed start LocalStackError."""
    print(f"Starting Azurite and the Batch emulator on {HOST} ...", flush=True)
    with start_stack(workdir) as stack:
        write_env_file(env_file, local_environment(stack))
        print_how_to_use(stack, env_file)
        services = services_of(stack.workdir)
        stopped, how = wait_until_one_stops(services)
        print(f"make local: {stopped.name} stopped ({how}); the last line of its log ({stopped.log}): "
              f"{last_line(stopped.log) or '(none)'}", file=sys.stderr, flush=True)
    # Leaving start_stack stopped the other service.
    env_file.unlink(missing_ok=True)
    others = " and ".join(service.name for service in services if service is not stopped)
    print(f"make local: stopped {others} and removed {env_file}; run make local again to restart the stack.",
          file=sys.stderr, flush=True)
    return EXIT_SERVICE_STOPPED


def serve(env_file: Path = LOCAL_ENV_FILE, workdir: Path = LOCAL_WORKDIR) -> int:
    """Run the stack until Ctrl-C (or SIGTERM), or until one of its services stops; returns the exit code."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops the services too, like Ctrl-C
    with contextlib.ExitStack() as locks:
        try:
            for path in dict.fromkeys((env_file, workdir)):  # the env file is rewritten, the workdir emptied
                hold_lock(path, locks)
        except AlreadyRunning as error:
            print(f"make local: {error}", file=sys.stderr)
            return 2
        # hold_lock made the env file's directory. The marker stays after this run, the env file does not.
        local_stack_marker(env_file).write_text(MARKER_TEXT.format(name=env_file.name))
        try:
            return run_stack(env_file, workdir)
        except LocalStackError as error:
            print(f"local stack failed: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("Stopped Azurite and the Batch emulator.", flush=True)
            return 0
        finally:
            # Its settings point at the services just stopped (or at a killed run's): useless now.
            env_file.unlink(missing_ok=True)


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
