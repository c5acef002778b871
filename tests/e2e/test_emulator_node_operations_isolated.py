"""Reboot, reimage, deallocate and start on isolated nodes (`python -m batch_emulator --isolation netns`): what each
does to the node itself. A reboot empties /tmp and keeps the disk (the node's overlay layer); a reimage makes the
node anew at the same address over a fresh layer, so what was installed is gone and the job preparation runs
again; after each, and after a deallocate and start, the node's own sshd answers again.

Needs root and the node image (tools/build_node_image.sh); elsewhere these tests skip saying why, under CI=true
they fail instead.
"""

import os
import shutil
import tempfile

import pytest

from batch_emulator.runtime.isolation import check_available
from tests.conftest import wait_for
from tests.e2e.conftest import require_isolation
from tests.e2e.emulator_process import start_emulator
from tests.e2e.recorded_client import Raw, add_job, add_pool, wait_task

pytestmark = pytest.mark.e2e
ADMIN = {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}   # root on the node
# From inside the node, as the pool's user with the intra-pool key: the node's sshd answers on its address.
SSH_TO_ITSELF = 'su _azbatch -c "ssh $(hostname) echo ssh-ok"'
NODE_SECONDS = 120   # an isolated node's start-up (namespaces, overlay, sshd) takes about a second


@pytest.fixture(scope="module")
def raw():
    require_isolation(check_available())
    root = tempfile.mkdtemp(prefix="node-operations-", dir="/var/tmp")   # not /tmp: each node has its own
    os.chmod(root, 0o755)   # the task's user walks through to its directories
    with open(os.path.join(root, "emulator-stderr.log"), "w") as log:
        proc, url = start_emulator(os.path.join(root, "batch"), log, "--isolation", "netns")
        try:
            yield Raw(url)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    shutil.rmtree(root, ignore_errors=True)


def idle(raw, pool_id, node_id):
    node = raw("GET", f"/pools/{pool_id}/nodes/{node_id}").json
    return node if node["state"] == "idle" else None


def run(raw, job_id, task_id, script):
    """(exit code, stdout, stderr) of ``script`` run by /bin/sh on the node as root."""
    body = {"id": task_id, "commandLine": f"/bin/sh -c '{script}'", "userIdentity": ADMIN}
    assert raw("POST", f"/jobs/{job_id}/tasks", body).status == 201
    task = wait_task(raw, job_id, task_id, "completed")
    out, err = (raw("GET", f"/jobs/{job_id}/tasks/{task_id}/files/{name}").raw.decode()
                for name in ("stdout.txt", "stderr.txt"))
    return task["executionInfo"].get("exitCode"), out, err


def operate(raw, pool_id, node_id, name, then="idle"):
    assert raw("POST", f"/pools/{pool_id}/nodes/{node_id}/{name}").status == 202
    return wait_for(lambda: (n := raw("GET", f"/pools/{pool_id}/nodes/{node_id}").json)["state"] == then and n,
                    timeout=NODE_SECONDS, what=f"the node {then} after its {name}")


def test_an_isolated_node_rebooted_reimaged_deallocated_and_started(raw):
    pool_id = add_pool(raw, targetDedicatedNodes=1)
    node = wait_for(lambda: [n for n in raw("GET", f"/pools/{pool_id}/nodes").json["value"] if n["state"] == "idle"],
                    timeout=NODE_SECONDS, what="an idle isolated node")[0]
    node_id, address = node["id"], node["ipAddress"]
    job_id = add_job(raw, pool_id=pool_id, jobPreparationTask={
        "commandLine": "/bin/sh -c 'echo ran >> /var/prep-runs'", "userIdentity": ADMIN,
        "rerunOnNodeRebootAfterSuccess": False})
    assert run(raw, job_id, "write", "touch /tmp/volatile /etc/on-disk") == (0, "", "")

    operate(raw, pool_id, node_id, "reboot")
    code, out, err = run(raw, job_id, "rebooted", f"cat /var/prep-runs; ls /etc/on-disk; {SSH_TO_ITSELF}; "
                                                  "ls /tmp/volatile")
    assert out == "ran\n/etc/on-disk\nssh-ok\n", err   # the disk stayed; the preparation did not run again
    assert code != 0 and "/tmp/volatile" in err        # /tmp did not

    reimaged = operate(raw, pool_id, node_id, "reimage")
    assert (reimaged["id"], reimaged["ipAddress"]) == (node_id, address)
    code, out, err = run(raw, job_id, "reimaged", f"cat /var/prep-runs; {SSH_TO_ITSELF}; ls /etc/on-disk")
    assert out == "ran\nssh-ok\n", err                 # a fresh disk: the preparation ran again, once
    assert code != 0 and "/etc/on-disk" in err

    operate(raw, pool_id, node_id, "deallocate", then="deallocated")
    operate(raw, pool_id, node_id, "start")
    assert run(raw, job_id, "started", SSH_TO_ITSELF) == (0, "ssh-ok\n", "")
