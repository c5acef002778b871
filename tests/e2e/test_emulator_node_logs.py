"""Upload a node's Batch service logs (issue 21): the SDK's upload_node_logs against the emulator, the files really
landing in Azurite's container (which checks the SAS), the time range, a SAS storage refuses, and the 400/404s.

The answer's shape follows Microsoft's recording (Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/
recordings/test_batch.pyTestBatchtest_batch_compute_nodes[sync].json): 200, virtualDirectoryName
"batch-<16 hex>/<poolId>/<nodeId>/<GUID>", numberOfFilesUploaded. The files come after the answer ("the number of
log files which will be uploaded", the REST reference), so the tests wait for them.
"""

import datetime
import re
import uuid

import pytest
from azure.batch import models
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient

from tests.conftest import wait_for
from tools import local_stack as stack_module

VM = models.VirtualMachineConfiguration(
    image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
    node_agent_sku_id="batch.node.ubuntu 24.04")


def now():
    return datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture(scope="module")
def ran(local_stack):
    """A pool of one node with a start task, and on it a job with a preparation task and one task, all run."""
    from tests.e2e.conftest import batch_client

    client = batch_client(local_stack)
    suffix = uuid.uuid4().hex[:8]
    pool_id, job_id = f"pool-node-logs-{suffix}", f"job-node-logs-{suffix}"
    began = now()
    client.create_pool(models.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v5", target_dedicated_nodes=1, virtual_machine_configuration=VM,
        start_task=models.BatchStartTask(command_line="/bin/bash -c 'echo start task ran'", wait_for_success=True)))
    node_id = wait_for(lambda: next((n.id for n in client.list_nodes(pool_id) if n.state == "idle"), None),
                       what="an idle node")
    client.create_job(models.BatchJobCreateOptions(
        id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id),
        job_preparation_task=models.BatchJobPreparationTask(command_line="/bin/bash -c 'echo preparation ran'")))
    client.create_task(job_id, models.BatchTaskCreateOptions(
        id="t1", command_line="/bin/bash -c 'echo task t1 ran; echo t1 complains >&2'"))
    wait_for(lambda: client.get_task(job_id, "t1").state == "completed", what="task t1 to complete")
    yield {"pool_id": pool_id, "node_id": node_id, "job_id": job_id, "began": began}
    client.begin_delete_job(job_id, polling_interval=0).result()
    client.begin_delete_pool(pool_id, polling_interval=0).result()


def reader(local_stack):
    return ContainerClient.from_container_url(stack_module.container_sas_url(local_stack, "rl"))


def landed(container, result):
    """The uploaded files by path under the node's root, once all the answer counted are in the container."""
    prefix = result.virtual_directory_name + "/"

    def all_there():
        names = [b.name for b in container.list_blobs(name_starts_with=prefix)]
        return names if len(names) == result.number_of_files_uploaded else None
    names = wait_for(all_there, what=f"{result.number_of_files_uploaded} uploaded files")
    return {name[len(prefix):]: container.download_blob(name).readall().decode() for name in names}


def upload(batch, ran, container_url, **times):
    return batch.upload_node_logs(ran["pool_id"], ran["node_id"], models.UploadBatchServiceLogsOptions(
        container_url=container_url, **times))


def test_a_node_uploads_its_agent_log_and_what_its_tasks_wrote(batch, local_stack, ran):
    result = upload(batch, ran, stack_module.container_sas_url(local_stack, "cw"), start_time=ran["began"])
    assert re.fullmatch(rf"batch-[0-9A-F]{{16}}/{ran['pool_id']}/{ran['node_id']}/[0-9a-f-]{{36}}",
                        result.virtual_directory_name), result.virtual_directory_name
    files = landed(reader(local_stack), result)
    job = f"workitems/{ran['job_id']}/job-1"
    assert sorted(files) == ["agent-logs/agent.log", "startup/stderr.txt", "startup/stdout.txt",
                             f"{job}/jobpreparation/stderr.txt", f"{job}/jobpreparation/stdout.txt",
                             f"{job}/t1/stderr.txt", f"{job}/t1/stdout.txt"]
    assert result.number_of_files_uploaded == 7
    assert files[f"{job}/t1/stdout.txt"] == "task t1 ran\n" and files[f"{job}/t1/stderr.txt"] == "t1 complains\n"
    assert files["startup/stdout.txt"] == "start task ran\n"
    assert files[f"{job}/jobpreparation/stdout.txt"] == "preparation ran\n"
    agent = files["agent-logs/agent.log"]
    for line in (f"Node {ran['node_id']} of pool {ran['pool_id']} started at ", "Start task ended: exit code 0",
                 f"Job preparation task jobpreparation of job {ran['job_id']} ended: exit code 0",
                 f"Task t1 of job {ran['job_id']} ended: completed, exit code 0",
                 f"Uploading service logs to {local_stack.container_url}/{result.virtual_directory_name}/"):
        assert line in agent, agent
    assert "sig=" not in agent


def test_the_time_range_picks_the_files_written_in_it(batch, local_stack, ran):
    url = stack_module.container_sas_url(local_stack, "cw")
    # From after the task's end: none of the runs' files (the agent log may have a line since: this request's).
    ended = batch.get_task(ran["job_id"], "t1").execution_info.end_time
    later = upload(batch, ran, url, start_time=ended + datetime.timedelta(milliseconds=100))
    assert set(landed(reader(local_stack), later)) <= {"agent-logs/agent.log"}
    # A range that ends before the node existed: nothing.
    before = ran["began"] - datetime.timedelta(hours=1)
    none = upload(batch, ran, url, start_time=before - datetime.timedelta(hours=1), end_time=before)
    assert none.number_of_files_uploaded == 0
    # An end before the start is refused.
    status, code, values = refused(lambda: upload(batch, ran, url, start_time=ran["began"], end_time=before))
    assert (status, code, values["PropertyName"]) == (400, "InvalidPropertyValue", "endTime")


def test_a_container_that_refuses_the_upload_shows_in_the_agent_log(batch, local_stack, ran):
    """[inferred] The call still answers 200 (its files "will be uploaded"); the refusal is the node's to log."""
    url = stack_module.container_sas_url(local_stack, "cw")
    signature = re.search(r"sig=([^&]+)", url).group(1)
    tampered = url.replace(f"sig={signature}", "sig=" + ("A" * 43) + "%3D")
    result = upload(batch, ran, tampered, start_time=ran["began"])
    assert result.number_of_files_uploaded == 7

    def refusal():
        log = b"".join(batch.download_node_file(ran["pool_id"], ran["node_id"], "agent-logs/agent.log")).decode()
        return next((line for line in log.splitlines()
                     if result.virtual_directory_name in line and " failed " in line), None)
    line = wait_for(refusal, what="the refused upload in the agent log")
    # Azurite's code for a wrong signature (the service's is AuthenticationFailed): what storage said, as it said it.
    assert " ERROR " in line and "failed after 0 of 7 file(s): HTTP 403 AuthorizationFailure" in line, line
    assert "sig=" not in line and signature not in line
    assert not list(reader(local_stack).list_blobs(name_starts_with=result.virtual_directory_name))


def refused(call):
    with pytest.raises(HttpResponseError) as caught:
        call()
    body = caught.value.response.json()
    return caught.value.status_code, body["code"], {v["key"]: v["value"] for v in body.get("values", [])}


def test_bad_requests_and_unknown_nodes_are_refused(batch, local_stack, ran):
    start = now()
    status, code, values = refused(lambda: upload(batch, ran, "not a url", start_time=start))
    assert (status, code, values["PropertyName"]) == (400, "InvalidPropertyValue", "containerUrl")
    ftp = "ftp://host/c?sv=1&sig=secretsignature"
    status, code, values = refused(lambda: upload(batch, ran, ftp, start_time=start))
    assert (status, code) == (400, "InvalidPropertyValue") and "secretsignature" not in values["PropertyValue"]
    status, code, values = refused(lambda: upload(batch, ran, stack_module.container_sas_url(local_stack, "cw")))
    assert (status, code, values["PropertyName"]) == (400, "MissingRequiredProperty", "startTime")
    options = models.UploadBatchServiceLogsOptions(container_url=local_stack.container_url, start_time=start)
    assert refused(lambda: batch.upload_node_logs(ran["pool_id"], "tvmps_nosuchnode_d", options))[:2] == \
        (404, "NodeNotFound")
    assert refused(lambda: batch.upload_node_logs("no-such-pool", ran["node_id"], options))[:2] == \
        (404, "PoolNotFound")
