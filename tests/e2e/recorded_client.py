"""Raw SharedKey-signed requests to the emulator, for the tests that compare its answers with the real
service's (test_emulator_recorded_*.py): status, headers and body exactly, with no SDK interpretation.

The recorded answers come from Microsoft's public recordings of its own tests against live accounts:
  SDK-*  Azure/azure-sdk-assets python/sdk/batch/azure-batch/tests/recordings/
         test_batch.pyTestBatchtest_batch_<jobs|update_pools|create_pools|scale_pools|files>[sync].json
  CLI-*  Azure/azure-cli src/azure-cli/azure/cli/command_modules/batch/tests/latest/recordings/
         test_batch_<jobs_and_tasks|task_create_cmd|pools_and_nodes>.yaml
Each test names the recording it reproduces; where a recording does not show a behaviour (e.g. disableTasks on
running tasks), the test says it follows the REST reference instead.
"""

import json
import uuid

from azure.batch._patch import BatchSharedKeyAuthPolicy  # the SDK's own signer: requests signed as the SDK signs
from azure.core import PipelineClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.rest import HttpRequest

from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from tests.conftest import wait_for
from tests.e2e.emulator_process import start_emulator

API = "2025-06-01"
IMAGE = {"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
         "nodeAgentSKUId": "batch.node.ubuntu 24.04"}
NEVER = "P10675199DT2H48M5.4775807S"     # the service's "unlimited" duration


def running_emulator(tmp_path_factory, name):
    """A module's own `python -m batch_emulator` (generator for a module-scoped fixture): yields its URL."""
    root = tmp_path_factory.mktemp(f"{name}-root")
    with open(root.parent / f"{name}-emulator-stderr.log", "w") as log:
        proc, url = start_emulator(root, log)
        try:
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=15)


class Answer:
    def __init__(self, response):
        self.status = response.status_code
        self.headers = response.headers
        self.raw = response.content
        try:
            self.json = json.loads(self.raw) if self.raw else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<{self.status} {dict(self.headers)} {self.raw[:400]!r}>"


class Raw:
    """raw(method, path, body=None, headers=None, query=None) -> Answer, signed with the development key."""

    def __init__(self, base):
        self.base = base
        credential = AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)
        self.client = PipelineClient(base, policies=[BatchSharedKeyAuthPolicy(credential)])

    def __call__(self, method, path, body=None, headers=None, query=None, api=API):
        params = {"api-version": api} if api else {}
        params.update(query or {})
        sent = {"Content-Type": "application/json; odata=minimalmetadata"} if body is not None else {}
        sent.update(headers or {})
        request = HttpRequest(method, self.base + path, params=params, headers=sent,
                              content=json.dumps(body) if body is not None else None)
        return Answer(self.client.send_request(request))


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def add_pool(raw, pool_id=None, **extra):
    pool_id = pool_id or uid("pool")
    answer = raw("POST", "/pools", {"id": pool_id, "vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE,
                                    **extra})
    assert answer.status == 201, answer
    return pool_id


def add_job(raw, job_id=None, pool_id=None, **extra):
    job_id = job_id or uid("job")
    answer = raw("POST", "/jobs", {"id": job_id, "poolInfo": {"poolId": pool_id or uid("nopool")}, **extra})
    assert answer.status == 201, answer
    return job_id


def make_node_pool(raw):
    """A pool with two idle nodes (4 slots each), for the tests that need tasks to run."""
    pool_id = add_pool(raw, targetDedicatedNodes=2, taskSlotsPerNode=4)
    wait_for(lambda: sum(n.get("state") == "idle" for n in raw("GET", f"/pools/{pool_id}/nodes").json["value"]) == 2,
             what="two idle nodes")
    return pool_id


def job_state(raw, job_id, state):
    """The job's JSON once it is in ``state`` (for wait_for), else None."""
    job = raw("GET", f"/jobs/{job_id}").json
    return job if job["state"] == state else None


def wait_task(raw, job_id, task_id, state):
    def reached():
        answer = raw("GET", f"/jobs/{job_id}/tasks/{task_id}")
        return answer.json if answer.status == 200 and answer.json.get("state") == state else None
    return wait_for(reached, what=f"task {task_id} {state}")


def scheduler_passes(raw, pool_id):
    """Run a task to completion on ``pool_id``: afterwards the scheduler has made many passes (what a test that
    checks something did *not* happen waits for, instead of sleeping)."""
    job_id = add_job(raw, pool_id=pool_id)
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "probe", "commandLine": "/bin/true"}).status == 201
    wait_task(raw, job_id, "probe", "completed")
    raw("DELETE", f"/jobs/{job_id}")
