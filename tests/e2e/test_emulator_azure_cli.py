"""The Azure CLI (`az batch pool/job/task create, show, list, delete`) against the emulator, as against the service.

The `az_executable` fixture (tests/e2e/azure_cli.py) installs the pinned azure-cli once per machine and Python
version, in a virtualenv every clone shares; under CI=true a failed install fails these tests instead of skipping them.

`az` runs isolated: AZURE_CONFIG_DIR and HOME in a temp dir, no telemetry, HTTP(S)_PROXY pointed at a dead
loopback port with NO_PROXY for 127.0.0.1, so any attempt to reach a non-loopback host fails instead of leaving
the machine. With --account-key, az uses AzureNamedKeyCredential and never loads a login profile
(azure/cli/command_modules/batch/_client_factory.py in Azure/azure-cli).

What azure-cli 2.91.0 sends: azure-batch 15.0.0b1 (track 2), api-version 2024-02-01.19.0; `--target-dedicated-nodes 1`
as the JSON string "1"; `--json-file` the REST body as is.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from batch_emulator import DEFAULT_ACCOUNT_KEY as KEY
from batch_emulator import DEFAULT_ACCOUNT_NAME as ACCOUNT
from tests.conftest import wait_for
from tests.e2e.recorded_client import running_emulator, uid

REPO_ROOT = Path(__file__).resolve().parents[2]
DEAD_PROXY = "http://127.0.0.1:9"   # discard port: nothing listens, a connection is refused at once
AZ_TIMEOUT = 60.0                   # az takes 0.2-1 s a call; waits poll it


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    yield from running_emulator(tmp_path_factory, "azure-cli")


class Az:
    def __init__(self, executable, endpoint, home):
        self.executable = executable
        self.endpoint = endpoint
        self.home = home
        self.config_dir = home / "azure-config"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("AZURE_", "AZ_"))
                    and k.upper() not in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")}
        self.env.update({
            "HOME": str(home), "AZURE_CONFIG_DIR": str(self.config_dir),
            "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "true", "AZURE_CORE_SURVEY_MESSAGE": "false",
            "HTTP_PROXY": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY, "NO_PROXY": "127.0.0.1,localhost",
        })

    def __call__(self, *args, expect_ok=True):
        cmd = [str(self.executable), *args, "--account-name", ACCOUNT, "--account-key", KEY,
               "--account-endpoint", self.endpoint, "--output", "json"]
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL, check=False)
        if expect_ok:
            assert done.returncode == 0, f"az {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return done

    def json(self, *args):
        out = self(*args).stdout
        return json.loads(out) if out.strip() else None


@pytest.fixture(scope="module")
def az(az_executable, emulator, tmp_path_factory):
    return Az(az_executable, emulator, tmp_path_factory.mktemp("az-home"))


POOL_WIRE = {"vmSize": "standard_d2s_v3",
             "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts",
                                                                "sku": "server", "version": "latest"},
                                             "nodeAgentSKUId": "batch.node.ubuntu 24.04"},
             "targetDedicatedNodes": 1, "taskSlotsPerNode": 2,
             "startTask": {"commandLine": "/bin/sh -c 'echo start'", "waitForSuccess": True,
                           "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}},
             "metadata": [{"name": "origin", "value": "dry-run"}]}


@pytest.fixture(scope="module")
def pool_from_json(az, tmp_path_factory):
    """A pool created with `az batch pool create --json-file` from REST wire JSON (as a toolkit --dry_run prints)."""
    pool_id = uid("azjson")
    path = tmp_path_factory.mktemp("json") / "pool.json"
    path.write_text(json.dumps({"id": pool_id, **POOL_WIRE}))
    az("batch", "pool", "create", "--json-file", str(path))
    return pool_id


def test_az_pool_create_from_rest_wire_json_then_show_and_list(az, pool_from_json):
    pool = az.json("batch", "pool", "show", "--pool-id", pool_from_json)
    assert pool["id"] == pool_from_json
    assert pool["targetDedicatedNodes"] == 1
    assert pool["startTask"]["commandLine"] == "/bin/sh -c 'echo start'"
    assert pool["metadata"] == [{"name": "origin", "value": "dry-run"}]
    assert pool_from_json in [p["id"] for p in az.json("batch", "pool", "list")]
    selected = az.json("batch", "pool", "list", "--filter", f"id eq '{pool_from_json}'", "--select", "id,state")
    assert selected == [{"id": pool_from_json, "state": "active"}]


def test_az_pool_create_with_flags(az):
    # az 2.91 sends "targetDedicatedNodes": "1" (a string). No public recording shows the service's answer to a
    # string; the CLI ships and tests these flags against the service, so the emulator reads it as the integer.
    pool_id = uid("azflags")
    az("batch", "pool", "create", "--id", pool_id, "--vm-size", "standard_d2s_v3",
       "--image", "canonical:ubuntu-24_04-lts:server", "--node-agent-sku-id", "batch.node.ubuntu 24.04",
       "--target-dedicated-nodes", "1")
    pool = az.json("batch", "pool", "show", "--pool-id", pool_id)
    assert pool["targetDedicatedNodes"] == 1
    # az prints the SDK model's attribute in its own camelCase (nodeAgentSkuId), not the wire name
    assert pool["virtualMachineConfiguration"]["nodeAgentSkuId"] == "batch.node.ubuntu 24.04"


def test_az_pool_create_without_target_counts(az):
    # Recorded (CLI-jobs data entry 1): the CLI's own test creates a pool with no target counts -> 201.
    pool_id = uid("aznotarget")
    az("batch", "pool", "create", "--id", pool_id, "--vm-size", "standard_d2s_v3",
       "--image", "canonical:ubuntu-24_04-lts:server", "--node-agent-sku-id", "batch.node.ubuntu 24.04")
    assert az.json("batch", "pool", "show", "--pool-id", pool_id)["targetDedicatedNodes"] == 0


def test_az_pool_delete(az):
    pool_id = uid("azdel")
    path = az.home / f"{pool_id}.json"
    path.write_text(json.dumps({"id": pool_id, **dict(POOL_WIRE, targetDedicatedNodes=0)}))
    az("batch", "pool", "create", "--json-file", str(path))
    az("batch", "pool", "delete", "--pool-id", pool_id, "--yes")
    # the service shows the pool deleting for a while, then not at all (tests/e2e/test_emulator_recorded_pools.py)
    wait_for(lambda: pool_id not in [p["id"] for p in az.json("batch", "pool", "list")],
             timeout=AZ_TIMEOUT, interval=0.2, what="pool gone from the list")
    shown = az("batch", "pool", "show", "--pool-id", pool_id, expect_ok=False)
    assert shown.returncode != 0 and "PoolNotFound" in shown.stderr


def test_az_job_create_show_list_delete(az, pool_from_json):
    job_id = uid("azjob")
    az("batch", "job", "create", "--id", job_id, "--pool-id", pool_from_json)
    job = az.json("batch", "job", "show", "--job-id", job_id)
    assert (job["id"], job["state"], job["poolInfo"]["poolId"]) == (job_id, "active", pool_from_json)
    assert job_id in [j["id"] for j in az.json("batch", "job", "list")]
    az("batch", "job", "delete", "--job-id", job_id, "--yes")
    wait_for(lambda: job_id not in [j["id"] for j in az.json("batch", "job", "list")], timeout=AZ_TIMEOUT, interval=0.2,
             what="job gone from the list")


def test_az_job_create_from_json_with_job_manager(az, pool_from_json):
    # The CLI's recorded test (CLI-jobs data entry 2) creates a job with a jobManagerTask.
    job_id = uid("azjm")
    path = az.home / f"{job_id}.json"
    manager = {"id": "JobManager", "commandLine": "/bin/sh -c 'echo $AZ_BATCH_TASK_ID'"}
    path.write_text(json.dumps({"id": job_id, "poolInfo": {"poolId": pool_from_json},
                                "constraints": {"maxTaskRetryCount": 5}, "jobManagerTask": manager}))
    az("batch", "job", "create", "--json-file", str(path))
    job = az.json("batch", "job", "show", "--job-id", job_id)
    assert job["jobManagerTask"]["killJobOnCompletion"] is True


def test_az_task_create_show_list_delete(az, pool_from_json):
    job_id = uid("aztaskjob")
    az("batch", "job", "create", "--id", job_id, "--pool-id", pool_from_json)
    created = az.json("batch", "task", "create", "--job-id", job_id, "--task-id", "t1",
                      "--command-line", "/bin/sh -c 'echo hello'")
    assert created["id"] == "t1"
    task = wait_for(lambda: (lambda t: t if t["state"] == "completed" else None)(
        az.json("batch", "task", "show", "--job-id", job_id, "--task-id", "t1")), timeout=AZ_TIMEOUT,
        interval=0.2, what="task t1 completed")
    assert task["executionInfo"]["exitCode"] == 0
    assert [t["id"] for t in az.json("batch", "task", "list", "--job-id", job_id)] == ["t1"]
    az("batch", "task", "delete", "--job-id", job_id, "--task-id", "t1", "--yes")
    assert az.json("batch", "task", "list", "--job-id", job_id) == []
    az("batch", "job", "delete", "--job-id", job_id, "--yes")


def test_az_task_create_from_rest_wire_json(az, pool_from_json):
    job_id = uid("azjsontask")
    az("batch", "job", "create", "--id", job_id, "--pool-id", pool_from_json)
    path = az.home / f"{job_id}-task.json"
    path.write_text(json.dumps({"id": "t2", "commandLine": "/bin/sh -c 'echo $A'",
                                "environmentSettings": [{"name": "A", "value": "1"}],
                                "constraints": {"maxWallClockTime": "PT1H", "maxTaskRetryCount": 1},
                                "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}}))
    az("batch", "task", "create", "--job-id", job_id, "--json-file", str(path))
    task = az.json("batch", "task", "show", "--job-id", job_id, "--task-id", "t2")
    assert task["environmentSettings"] == [{"name": "A", "value": "1"}]
    assert task["constraints"]["maxWallClockTime"] == "PT1H" and task["constraints"]["maxTaskRetryCount"] == 1
    az("batch", "job", "delete", "--job-id", job_id, "--yes")


def test_az_writes_only_into_its_config_dir(az):
    az("batch", "pool", "list")
    assert az.config_dir.is_dir()
    assert not (az.home / ".azure").exists()


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_az_connects_to_nothing_but_the_loopback_emulator(az, tmp_path):
    trace = tmp_path / "connect.trace"
    cmd = ["strace", "-f", "-e", "trace=connect", "-o", str(trace), str(az.executable), "batch", "job", "list",
           "--account-name", ACCOUNT, "--account-key", KEY, "--account-endpoint", az.endpoint]
    env = {k: v for k, v in az.env.items() if k not in ("HTTP_PROXY", "HTTPS_PROXY")}    # no proxy: see real targets
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          check=False)
    if "ptrace" in done.stderr.lower() and done.returncode != 0:
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr[-2000:]
    addresses = set(re.findall(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"', trace.read_text()))
    addresses = {a or b for a, b in addresses}
    assert addresses <= {"127.0.0.1", "::1"}, addresses
