"""`make demo-nodes`: the three scripts end to end on isolated emulated nodes (needs root).

Like `make demo` (tools/demo.py), but the Batch emulator runs with --isolation netns: each
node is a network namespace with its own address, hostname, sshd and root filesystem (a private
layer over the node image), the job preparation task runs demo_azure_batch/install.sh for real
on every node (as root, into that node only), and the MPI task runs as _azbatch, whose mpirun
reaches the other nodes over SSH, as on Azure. The default CMD_PREP_TASK and START_COMMAND are
used unchanged, over 3 nodes.

First it installs what isolated nodes need on this machine (mmdebstrap, ip, ...; apt), then builds
the node image once and downloads what the nodes' install.sh would download
(tools/prefetch_node_packages.sh): nodes have no route out.
Exit codes: 0 done, 1 a step failed, 2 not root or a tool missing, 130 interrupted.
Its working files go to .local/demo-nodes (not under /tmp: each node has its own /tmp).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

from tools.demo import StepFailed, account_keys, run_step, say, show_program_output
from tools.local_stack import REPO_ROOT, LocalStackError, isolated_workdir, script_environment, start_stack

POOL_ID, JOB_ID, TASK_ID = "demo-nodes-pool", "demo-nodes-job", "mpi-task-1"
NB_NODES = 3
WORKDIR = isolated_workdir("demo-nodes")
OUTPUT_DIR = REPO_ROOT / "outputs"
HOST_PACKAGES = ("mmdebstrap", "openssh-client", "iproute2", "util-linux", "git")
STEPS = [
    ("create the pool and the job", ["create_pool_job.py", "--pool_id", POOL_ID, "--job_id", JOB_ID], 120),
    ("send the MPI task", ["send_task.py", "--job_id", JOB_ID, "--task_id", TASK_ID], 60),
    # Every new node installs Open MPI and mpi4py from the distribution (seconds per node).
    ("wait for the task and download its output",
     ["check_task.py", "--job_id", JOB_ID, "--wait", "--poll_seconds", "1"], 900),
]


def install_host_tools() -> None:
    """What isolated nodes need on this machine (mmdebstrap, ip, unshare, nsenter), the node image and the
    nodes' downloads."""
    missing = [tool for tool in ("/usr/bin/mmdebstrap", "/usr/bin/ssh-keygen", "/usr/bin/nsenter", "/usr/bin/git")
               if not os.path.exists(tool)] + ([] if shutil.which("ip") else ["ip"])
    if missing:
        say(f"Installing {' '.join(HOST_PACKAGES)} (missing: {', '.join(missing)}) ...")
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *HOST_PACKAGES], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    say("Building the node image (once) and downloading what the nodes' install.sh needs (no route out) ...")
    subprocess.run([str(REPO_ROOT / "tools" / "prefetch_node_packages.sh")], check=True, cwd=REPO_ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    if os.geteuid() != 0:
        print("demo-nodes needs root (network namespaces, mounts, the node image): run `sudo make demo-nodes`; "
              "`make demo` runs without root", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.monotonic()
    try:
        install_host_tools()
        shutil.rmtree(OUTPUT_DIR / JOB_ID, ignore_errors=True)
        say("Starting Azurite and the Batch emulator with isolated nodes (--isolation netns) ...")
        with start_stack(WORKDIR, isolation="netns") as stack:
            say(f"      Batch emulator: {stack.batch_endpoint} (account {stack.batch_account})")
            env = script_environment(stack, NB_NODES=str(NB_NODES))
            for number, (title, step_argv, timeout) in enumerate(STEPS, start=1):
                run_step(number, title, step_argv, timeout, env, account_keys(stack))
            say("Stopping Azurite and the Batch emulator (its nodes are removed) ...")
        show_program_output(OUTPUT_DIR / JOB_ID / TASK_ID / "stdout.txt")
        say(f"\nDemo on isolated nodes done in {time.monotonic() - started:.0f} s")
        return 0
    except subprocess.CalledProcessError as error:
        print(f"demo-nodes failed: {' '.join(map(str, error.cmd))} exited {error.returncode}", file=sys.stderr)
        return 1
    except (LocalStackError, StepFailed) as error:
        print(f"demo-nodes failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo-nodes interrupted; Azurite and the Batch emulator are stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
