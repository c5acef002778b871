"""check_task.py on an account with no job: it names the pools left behind, with the command that deletes each,
run here exactly as printed. Its own emulator: the shared local stack always has other tests' jobs."""

import shlex
import subprocess
import sys

import pytest
from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential

from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from tests.conftest import wait_for
from tests.e2e.conftest import REPO_ROOT
from tests.e2e.recorded_client import running_emulator

pytestmark = pytest.mark.e2e
VM = models.VirtualMachineConfiguration(
    image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
    node_agent_sku_id="batch.node.ubuntu 24.04")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    yield from running_emulator(tmp_path_factory, "leftover-pools")


def script(emulator, tmp_path, name, *args):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BATCH_TOOLKIT_ENV_FILE": "",
           "AZURE_BATCH_ACCOUNT": DEFAULT_ACCOUNT_NAME, "AZURE_BATCH_ACCESS_KEY": DEFAULT_ACCOUNT_KEY,
           "AZURE_BATCH_ENDPOINT": emulator}
    return subprocess.run([sys.executable, str(REPO_ROOT / name), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)


def test_no_job_names_the_pools_left_and_how_to_delete_them(emulator, tmp_path):
    client = BatchClient(emulator, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY), retry_total=0)
    client.create_pool(models.BatchPoolCreateOptions(id="busy", vm_size="standard_d2s_v5",
                                                     virtual_machine_configuration=VM, target_dedicated_nodes=1))
    client.create_pool(models.BatchPoolCreateOptions(
        id="empty", vm_size="standard_d2s_v5", virtual_machine_configuration=VM, enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes = 0;", auto_scale_evaluation_interval="PT5M"))
    wait_for(lambda: len(list(client.list_nodes("busy"))) == 1, what="the busy pool's node")
    checked = script(emulator, tmp_path, "check_task.py")
    assert checked.returncode == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert "No jobs in this Batch account." in lines
    busy = next(line for line in lines if line.startswith("Pool [busy]"))
    assert busy.endswith("; no active job, so it costs money for nothing: delete it with "
                         "python3 delete_pool_job.py --pool_id busy --yes")
    empty = next(line for line in lines if line.startswith("Pool [empty]"))
    assert empty == ("Pool [empty]: 0 nodes, autoscale; no job, and no node to pay for: delete it when you are "
                     "done with python3 delete_pool_job.py --pool_id empty --yes")
    for line in (busy, empty):   # each hint, exactly as printed
        words = shlex.split(line.rpartition(" with ")[2])
        assert words[:2] == ["python3", "delete_pool_job.py"]
        deleted = script(emulator, tmp_path, *words[1:])
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    wait_for(lambda: not list(client.list_pools()), what="both pools to be deleted")
