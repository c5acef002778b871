"""Check the tasks of each job, download each task's outputs as soon as it finishes, follow a running task.

    python3 check_task.py [--job_id JOB_ID] [--output_dir outputs] [--verbose]
    python3 check_task.py [--job_id JOB_ID] --wait [--poll_seconds 15]
    python3 check_task.py --job_id JOB_ID --tail TASK_ID [--poll_seconds 2]
    python3 check_task.py [--job_id JOB_ID] [--wait] --json
    python3 check_task.py --job_id JOB_ID --node_logs TASK_ID   (the service logs of the task's nodes)
    python3 check_task.py --job_id JOB_ID --login TASK_ID [--ssh_key PATH]   (SSH to its primary node)

1. Logs in to the Batch account from config_resources.py.
2. Prints the pools the jobs use (nodes by state) and flags a pool that has nodes but no active job.
3. Prints, for every job of the account (or --job_id only), one line of task counts (one request per
   job), a line per parameter sweep (send_task.py --sweep: its tasks by state) when its tasks were
   listed; then a line per task that failed (why, in plain words; the first 10, then the command that
   lists them all), per task still running (its node and how long it has run), and one line for the
   outputs of the completed tasks. Under a failed task, the lines of its stderr.txt that say why (a
   Python traceback's end), and those of its other nodes for an MPI task; under a job whose
   preparation task failed, what that task wrote on the node, and the commands that make the job
   again. A pool that cannot get its nodes (core quota, allocation failure) says so, with the fix.
4. Downloads each completed task's stdout.txt, stderr.txt and result files (OUTPUT_FILES, with their
   paths) to OUTPUT_DIR/JOB_ID/TASK_ID/ as soon as that task completes: from the blob container where
   send_task.py had them uploaded, else from the node (task file API). Downloads run in parallel and
   are atomic. A record of what is complete (OUTPUT_DIR/.check_task-record.json) makes a re-run cost one
   request per job.

--node_logs and --login are for when a task's own output does not say enough (toolkit/nodeaccess.py):
the first has each node of the task (or each node whose job preparation failed) upload its Batch service
logs to the blob container, then downloads them into OUTPUT_DIR/JOB_ID/TASK_ID/node-logs/NODE_ID/; the
second adds a short-lived user with your SSH public key on the task's primary node and prints the ssh
command and how to remove the user.

--wait polls until every task has completed: a live view in a terminal, timed lines of what changed
when piped. --tail follows a running task's stdout.txt and stderr.txt until it completes (each line
marked stdout| or stderr| once both have output). --json prints one JSON document (jobs, their
sweeps, pools, each task's state, exit code, failure, output paths and result files:
toolkit/report.py) and nothing else on stdout; the usual lines go to stderr.

Exit codes: 0 done (with --wait: every task succeeded), 1 the service refused or stayed unreachable,
or --wait stopped because a job's pool or the job is gone, 2 bad option or configuration, 3 --wait: a
task failed or a job's preparation task failed, 130 interrupted. Without --wait, 0 whatever the
tasks' own results (it prints them).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.account import leftover_pools, list_jobs
from toolkit.batch import make_batch_client
from toolkit.checked import BatchAccess, Storage, batch_access, storage
from toolkit.cli import check_id, make_parser, run
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.nodeaccess import fetch_node_logs, login
from toolkit.outputs import Downloader, load_record
from toolkit.progress import OUTAGE_LIMIT_SECONDS, Display, Outage
from toolkit.report import document
from toolkit.settings import Settings, load_settings
from toolkit.status import DEFAULT_OUTPUT_DIR, JobChecker
from toolkit.storage import check_container_sas, make_container_client

if TYPE_CHECKING:
    from azure.batch import BatchClient

DOWNLOAD_SAS_LIFETIME = datetime.timedelta(hours=1)  # when AZURE_STORAGE_KEY lets us make one
WAIT_POLL_SECONDS, TAIL_POLL_SECONDS = 15.0, 2.0


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "check_task.py",
        "Summarise task states per job; download each finished task's outputs;\nfollow a running task.",
        epilog=f"""\
--wait and --tail ride out a service that cannot be reached or is busy,
retrying with backoff for up to {OUTAGE_LIMIT_SECONDS / 60:g} minutes, then stop with exit code 1.
If the blob container cannot be reached, outputs come from the nodes.

--tail shows a multi-instance (MPI) task's primary output (stdout.txt and
stderr.txt), which holds mpirun's output of every rank; lines are marked
stdout| or stderr| once both files have output. A subtask's own stdout.txt
(its coordination command) is on its node; this gives its node and
taskRootDirectory:
  az batch task subtask list --job-id JOB --task-id TASK
then this downloads it:
  az batch node file download --pool-id POOL --node-id NODE \\
    --file-path TASK_ROOT_DIRECTORY/stdout.txt --destination ./sub-stdout.txt""")
    parser.add_argument("--job_id", help="check this job only (default: every job of the account)")
    parser.add_argument("--output_dir", help="where outputs go (default: outputs)")
    parser.add_argument("--wait", action="store_true", help="poll until every task has completed, downloading "
                                                             "each task's outputs as it finishes")
    parser.add_argument("--poll_seconds", type=float,
                        help=f"seconds between polls with --wait (default {WAIT_POLL_SECONDS:g}) or --tail "
                             f"(default {TAIL_POLL_SECONDS:g})")
    parser.add_argument("--tail", metavar="TASK_ID", help="with --job_id: print the task's stdout.txt and "
                                                          "stderr.txt while it runs, following new output until "
                                                          "it completes")
    parser.add_argument("--node_logs", metavar="TASK_ID", help="with --job_id: download the Batch service logs of "
                                                                "the task's nodes (into OUTPUT_DIR)")
    parser.add_argument("--login", metavar="TASK_ID", help="with --job_id: add a short-lived user with your SSH key "
                                                            "on the task's primary node and print the ssh command")
    parser.add_argument("--ssh_key", metavar="PATH", help="the SSH public key for --login (default: "
                                                          "~/.ssh/id_ed25519.pub, else ~/.ssh/id_rsa.pub)")
    parser.add_argument("--verbose", action="store_true", help="also list every task and every output file")
    parser.add_argument("--json", action="store_true", help="print one JSON document of the jobs, pools and tasks "
                                                            "on stdout (the usual lines go to stderr)")
    return parser


def check_options(args: argparse.Namespace) -> None:
    """Refuse bad values, and options that do nothing in the mode given, before any network call."""
    if args.job_id is not None:
        check_id("--job_id", args.job_id)
    for option in ("tail", "node_logs", "login"):
        if getattr(args, option) is not None:
            check_id(f"--{option}", getattr(args, option))
    check_debug_options(args)
    if args.poll_seconds is not None and not (math.isfinite(args.poll_seconds) and args.poll_seconds > 0):
        raise ToolkitError("--poll_seconds must be a number of seconds more than 0.", ExitStatus.USAGE)
    refused = [(args.poll_seconds is not None and not (args.wait or args.tail),
                "--poll_seconds is used only with --wait or --tail: add --wait, or drop --poll_seconds."),
               (args.tail is not None and args.job_id is None,
                "--tail TASK_ID needs --job_id JOB_ID (the job of that task)."),
               (args.tail is not None and args.wait,
                "--tail and --wait cannot be combined: --tail already follows the task until it completes."),
               (args.tail is not None and args.output_dir is not None,
                "--tail downloads nothing, so --output_dir does nothing: drop it (run without --tail to download)."),
               (args.tail is not None and args.verbose,
                "--verbose lists downloaded files, which --tail does not download: drop it."),
               (args.tail is not None and args.json,
                "--tail prints the task's own output, not a JSON document: drop --json.")]
    for bad, message in refused:
        if bad:
            raise ToolkitError(message, ExitStatus.USAGE)


def check_debug_options(args: argparse.Namespace) -> None:
    """--node_logs and --login: each alone, with --job_id (and --ssh_key only with --login)."""
    chosen = [f"--{option}" for option in ("tail", "node_logs", "login", "wait", "json")
              if getattr(args, option) not in (None, False)]
    for option in ("--node_logs", "--login"):
        if option in chosen and args.job_id is None:
            raise ToolkitError(f"{option} TASK_ID needs --job_id JOB_ID (the job of that task).", ExitStatus.USAGE)
        if option in chosen and len(chosen) > 1:
            raise ToolkitError(f"{option} cannot be combined with {', '.join(o for o in chosen if o != option)}: "
                               "run them one at a time.", ExitStatus.USAGE)
    if args.ssh_key is not None and args.login is None:
        raise ToolkitError("--ssh_key is the key of --login: add --login TASK_ID, or drop --ssh_key.", ExitStatus.USAGE)


def check_output_dir(output_dir: Path) -> None:
    """Refuse an output directory that could not be created or written, before waiting for anything
    (without creating it: a status check alone leaves nothing behind)."""
    existing = output_dir.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ToolkitError(f"--output_dir {output_dir} cannot be created: {existing} is not a directory.",
                           ExitStatus.USAGE)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ToolkitError(f"--output_dir {output_dir} is not writable ({existing}): choose another.",
                           ExitStatus.USAGE)


def accounts(settings: Settings, tail: bool) -> tuple[BatchAccess, Storage | None]:
    """The Batch account, and the blob container when one is set (optional: without it, outputs come from the
    nodes) and outputs are to be downloaded (not with --tail)."""
    access = batch_access(settings)
    return access, storage(settings) if settings.blob_container["url"] and not tail else None


def check(args: argparse.Namespace, settings: Settings) -> int:
    check_options(args)
    output_dir = Path(args.output_dir) if args.output_dir else DEFAULT_OUTPUT_DIR
    if args.tail is None:
        check_output_dir(output_dir)
    access, blobs = load_settings(settings, lambda configured: accounts(configured, args.tail is not None))
    if blobs is not None:
        check_container_sas(blobs, "r", "downloads")
    client = make_batch_client(access, sys.stderr if args.tail is not None or args.json else None)
    if args.login is not None or args.node_logs is not None or args.tail is not None:
        return one_task(args, client, blobs, output_dir)
    return check_jobs(args, client, blobs, output_dir)


def one_task(args: argparse.Namespace, client: BatchClient, blobs: Storage | None, output_dir: Path) -> int:
    """--login, --node_logs or --tail: one task of --job_id, not a round of checks."""
    if args.login is not None:
        return login(client, args.job_id, args.login, args.ssh_key)
    if args.node_logs is not None:
        if blobs is None:
            raise ToolkitError("--node_logs needs BLOB_CONTAINER_URL: the nodes upload their logs there.",
                               ExitStatus.USAGE)
        return fetch_node_logs(client, blobs, args.job_id, args.node_logs, output_dir)
    from toolkit.tail import follow

    return follow(client, args.job_id, args.tail, args.poll_seconds or TAIL_POLL_SECONDS)


def check_jobs(args: argparse.Namespace, client: BatchClient, blobs: Storage | None, output_dir: Path) -> int:
    """Rounds of checks of every job (or --job_id's): lines, downloads, and with --wait until all completed."""
    display = Display(waiting=args.wait, out=sys.stderr if args.json else None)
    record = load_record(output_dir)  # first: it decides how little needs asking
    # Read the outputs, and list them (l): a task's result files (OUTPUT_FILES) are the blobs under JOB/TASK/.
    factory = None if blobs is None else (lambda: make_container_client(blobs, "rl", DOWNLOAD_SAS_LIFETIME))
    downloader = Downloader(client, factory, display.event)
    outage = Outage(display)
    poll_seconds = args.poll_seconds or WAIT_POLL_SECONDS
    pool = ThreadPoolExecutor(16)
    try:
        jobs = outage.attempt(lambda: list_jobs(client, args.job_id), poll_seconds) if args.wait \
            else list_jobs(client, args.job_id)
        checker = JobChecker(client, downloader, record, output_dir, display, pool, jobs, wait=args.wait,
                             verbose=args.verbose, whole_account=args.job_id is None, list_always=args.json)
        if not jobs:
            display.event("No jobs in this Batch account.")
            for line in leftover_pools(client):   # what is left of earlier runs, and what it costs
                display.event(line)
        try:
            while jobs:
                finished = outage.attempt(checker.poll, poll_seconds) if args.wait else checker.poll()
                if finished or not args.wait:
                    break
                time.sleep(poll_seconds)
        except ToolkitError:
            if args.json:  # --wait stopped on what waiting cannot change: the document says what was found
                print(json.dumps(document(checker), indent=2))
            raise
        if args.json:
            print(json.dumps(document(checker), indent=2))
        return checker.exit_code()
    except BaseException:
        downloader.cancelled.set()
        raise
    finally:
        display.finish()  # also before an error or Ctrl-C's line: no 'waiting for' line left on the screen
        pool.shutdown(wait=True, cancel_futures=True)


def check_or_stop_waiting(args: argparse.Namespace, settings: Settings) -> int:
    """check(), where Ctrl-C during --wait is no error: only the waiting stops, the tasks keep running (exit 130)."""
    try:
        return check(args, settings)
    except KeyboardInterrupt:
        if not args.wait or args.tail is not None:
            raise
        print(f"Stopped waiting. The tasks keep running on Batch; pick up again with: {wait_again(args)}",
              file=sys.stderr)
        return ExitStatus.INTERRUPTED


def wait_again(args: argparse.Namespace) -> str:
    """The command that goes on waiting where Ctrl-C stopped (downloads already made are kept)."""
    words = ["python3", "check_task.py"]
    if args.job_id:
        words += ["--job_id", args.job_id]
    if args.output_dir:
        words += ["--output_dir", args.output_dir]
    return " ".join([*words, "--wait"])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda settings: check_or_stop_waiting(args, settings))


if __name__ == "__main__":
    sys.exit(main())
