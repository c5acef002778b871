"""`python -m batch_emulator` as a subprocess, for the end-to-end tests of the emulator itself
(test_emulator_contract.py, test_emulator_faults.py): how to start it, the line that says it
listens, and the VM configuration every pool of those tests uses."""

import re
import subprocess
import sys
from pathlib import Path

from azure.batch import models as m

REPO_ROOT = Path(__file__).resolve().parents[2]

# The emulator's first (and only) line on stdout, with the development account.
READY = re.compile(r"^Batch emulator listening on (http://127\.0\.0\.1:\d+) \(account devbatchaccount1\)"
                   r" isolation (none|netns)$")
VM = m.VirtualMachineConfiguration(
    image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
    node_agent_sku_id="batch.node.ubuntu 24.04")


def start_emulator(root, log, *options):
    """Start `python -m batch_emulator --port 0 --root ROOT OPTIONS...` with its stderr in the open file `log`;
    return (process, url) once its first line says where it listens. A process that prints anything else
    is killed and the test fails. Nodes are not isolated (--isolation none) unless OPTIONS say otherwise."""
    if "--isolation" not in options:
        options = ("--isolation", "none", *options)
    proc = subprocess.Popen([sys.executable, "-m", "batch_emulator", "--port", "0", "--root", str(root), *options],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline().strip()
    match = READY.match(line)
    if not match:
        proc.kill()
        proc.wait()
        log.flush()
    assert match, f"unexpected first line {line!r}; the emulator's stderr: {Path(log.name).read_text()[-2000:]}"
    return proc, match.group(1)
