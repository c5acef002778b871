"""How make local (tools/local.py) sees that one of its services stopped: without reaping it, so that its
Popen still waits for it when the stack stops."""

import signal
import subprocess
import sys

from tests.conftest import wait_for
from tools.local import how_it_stopped


def test_an_exit_is_seen_and_the_child_left_to_its_popen():
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"])

    assert wait_for(lambda: how_it_stopped(proc.pid), timeout=30, what="the child to exit") == "exit 4"
    assert how_it_stopped(proc.pid) == "exit 4"  # still there to be seen
    assert proc.wait(timeout=5) == 4


def test_a_running_child_and_then_its_signal():
    proc = subprocess.Popen(["sleep", "300"])
    try:
        assert how_it_stopped(proc.pid) is None
        proc.send_signal(signal.SIGKILL)
        assert wait_for(lambda: how_it_stopped(proc.pid), timeout=30, what="sleep to die") == "killed by SIGKILL"
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
