"""Node operations against `python -m batch_emulator` (--isolation none): reboot, reimage, deallocate, start,
disable and enable scheduling, and node extensions; the answers Microsoft's recordings show, the states a node goes
through, what its running tasks do under each option, and the refusals.

Recordings (Azure/azure-sdk-assets; abbreviations used below):
  PY-nodes       python/sdk/batch/azure-batch/tests/recordings/test_batch.pyTestBatchtest_batch_compute_nodes[sync].json
  PY-extensions  the same folder, test_batch.pyTestBatchtest_batch_compute_node_extensions[sync].json
Where no recording shows a behaviour (the options' effect on running tasks, the refusals), the tests follow the REST
reference (2025-06-01) and the Batch error-code list.
"""

import pytest
from azure.batch import models as m
from azure.batch.models._models import BatchNodeDeallocateOptions, BatchNodeRebootOptions, BatchNodeReimageOptions
from azure.core.exceptions import HttpResponseError

from tests.conftest import wait_for
from tests.e2e.recorded_client import add_job, add_pool, wait_task

pytestmark = pytest.mark.e2e
# The options models come from azure.batch.models._models: azure-batch 15.1.0 does not export them, and its
# begin_reboot_node, begin_reimage_node and begin_deallocate_node fail in the client (ValueError: "No value for
# given attribute", the content type) unless given options.

# PY-extensions: the pool's extension as sent, and the node's extensions as listed (vmExtension of each entry).
DECLARED = {"name": "secretext", "type": "KeyVaultForLinux", "publisher": "Microsoft.Azure.KeyVault",
            "typeHandlerVersion": "1.0", "autoUpgradeMinorVersion": True}
LISTED = [{**DECLARED, "enableAutomaticUpgrade": False},
          {"name": "batchNodeExtension", "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
           "typeHandlerVersion": "2.0", "autoUpgradeMinorVersion": True, "enableAutomaticUpgrade": False}]


def node_pool(raw, **extra):
    """(pool id, node id) of a new pool of one node, once the node is idle."""
    pool_id = add_pool(raw, targetDedicatedNodes=1, **extra)
    nodes = wait_for(lambda: [n for n in raw("GET", f"/pools/{pool_id}/nodes").json["value"] if n["state"] == "idle"],
                     what="an idle node")
    return pool_id, nodes[0]["id"]


def node_in(raw, pool_id, node_id, *states):
    """The node's JSON once its state is one of ``states`` (for wait_for), else None."""
    node = raw("GET", f"/pools/{pool_id}/nodes/{node_id}").json
    return node if node["state"] in states else None


def waiting_task(raw, job_id, task_id, flag):
    """A task that runs until ``flag`` exists, once it runs."""
    command = f"/bin/bash -c 'while [ ! -e {flag} ]; do sleep 0.05; done'"
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": task_id, "commandLine": command}).status == 201
    return wait_task(raw, job_id, task_id, "running")


def counting_task(raw, job_id, task_id, log):
    """A task that writes a line to ``log`` each time it runs, and runs for 30 s the first time only."""
    command = f"/bin/bash -c 'echo run >> {log}; [ $(wc -l < {log}) -ge 2 ] || sleep 30'"
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": task_id, "commandLine": command}).status == 201
    wait_for(lambda: log.exists(), what=f"{task_id} running")


def action(raw, pool_id, node_id, name, body=None):
    return raw("POST", f"/pools/{pool_id}/nodes/{node_id}/{name}", body)


def test_the_recorded_node_actions_answer_as_the_service(raw, emulator, tmp_path):
    # PY-nodes, entries 7 to 9: disablescheduling (terminate) 200, enablescheduling 200, reboot (terminate) 202;
    # no body, DataServiceId naming the action, no ETag or Last-Modified.
    boots = tmp_path / "boots"
    pool_id, node_id = node_pool(raw, startTask={"commandLine": f"/bin/bash -c 'echo boot >> {boots}'"})
    before = raw("GET", f"/pools/{pool_id}/nodes/{node_id}").json
    for name, body, status in (("disablescheduling", {"nodeDisableSchedulingOption": "terminate"}, 200),
                               ("enablescheduling", None, 200), ("reboot", {"nodeRebootOption": "terminate"}, 202)):
        answer = action(raw, pool_id, node_id, name, body)
        assert answer.status == status, answer
        assert answer.raw == b""
        assert answer.headers["DataServiceId"] == f"{emulator}/pools/{pool_id}/nodes/{node_id}/{name}"
        assert "ETag" not in answer.headers and "Last-Modified" not in answer.headers
    after = wait_for(lambda: node_in(raw, pool_id, node_id, "idle") if boots.read_text().count("boot") == 2 else None,
                     what="the node idle again, its start task run again")
    assert after["lastBootTime"] > before["lastBootTime"]
    assert after["allocationTime"] == before["allocationTime"] and after["ipAddress"] == before["ipAddress"]
    assert after["startTaskInfo"]["startTime"] > before["startTaskInfo"]["endTime"]
    assert raw("GET", f"/pools/{pool_id}").json["allocationState"] == "steady"


def test_a_reboot_with_taskcompletion_lets_the_running_task_end_and_takes_no_new_task(raw, sdk, tmp_path):
    pool_id, node_id = node_pool(raw)
    job_id = add_job(raw, pool_id=pool_id)
    waiting_task(raw, job_id, "t1", tmp_path / "flag")
    assert action(raw, pool_id, node_id, "reboot", {"nodeRebootOption": "taskcompletion"}).status == 202
    rebooting = node_in(raw, pool_id, node_id, "rebooting")
    assert rebooting is not None and rebooting["runningTasksCount"] == 1
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "t2", "commandLine": "/bin/true"}).status == 201
    assert raw("GET", f"/jobs/{job_id}/tasks/t1").json["state"] == "running"
    assert raw("GET", f"/pools/{pool_id}").json["allocationState"] == "steady"
    (tmp_path / "flag").touch()
    first = wait_task(raw, job_id, "t1", "completed")
    assert first["executionInfo"]["result"] == "success" and first["executionInfo"]["requeueCount"] == 0
    second = wait_task(raw, job_id, "t2", "completed")
    booted = sdk.get_node(pool_id, node_id).last_boot_time
    # t2 waited for the reboot: it started on the rebooted node.
    assert m.BatchTask(second).execution_info.start_time >= booted


@pytest.mark.parametrize("option", ["requeue", "terminate"])
def test_a_reboot_requeues_or_ends_the_running_task_as_its_option_says(raw, tmp_path, option):
    pool_id, node_id = node_pool(raw)
    job_id = add_job(raw, pool_id=pool_id)
    log = tmp_path / "runs"
    counting_task(raw, job_id, "t1", log)
    assert action(raw, pool_id, node_id, "reboot", {"nodeRebootOption": option}).status == 202
    task = wait_task(raw, job_id, "t1", "completed")
    execution = task["executionInfo"]
    if option == "requeue":   # back to the queue, then ran again on the rebooted node (and exited 0 at once)
        assert execution["requeueCount"] == 1 and execution["retryCount"] == 0
        assert execution["result"] == "success" and log.read_text() == "run\nrun\n"
    else:                     # completed as ended, never to run again
        assert execution["result"] == "failure" and execution["failureInfo"]["code"] == "TaskEnded"
        assert execution["requeueCount"] == 0 and log.read_text() == "run\n"
    wait_for(lambda: node_in(raw, pool_id, node_id, "idle"), what="the node idle after its reboot")


def test_a_reboot_keeps_the_disk_and_reruns_the_job_preparations_that_ask_for_it(raw, tmp_path):
    pool_id, node_id = node_pool(raw)
    logs = {"default": tmp_path / "prep-default", "once": tmp_path / "prep-once"}
    jobs = {name: add_job(raw, pool_id=pool_id, jobPreparationTask={
        "commandLine": f"/bin/bash -c 'echo ran >> {log}'", **({"rerunOnNodeRebootAfterSuccess": False}
                                                               if name == "once" else {})})
        for name, log in logs.items()}
    keep = "/bin/bash -c 'echo kept > $AZ_BATCH_NODE_SHARED_DIR/kept'"
    for job_id in jobs.values():
        assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "before", "commandLine": keep}).status == 201
        wait_task(raw, job_id, "before", "completed")
    assert action(raw, pool_id, node_id, "reboot").status == 202
    wait_for(lambda: node_in(raw, pool_id, node_id, "idle"), what="the node idle after its reboot")
    for job_id in jobs.values():
        assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "after", "commandLine": "/bin/true"}).status == 201
        wait_task(raw, job_id, "after", "completed")
    assert logs["default"].read_text() == "ran\nran\n"   # rerunOnNodeRebootAfterSuccess: true by default
    assert logs["once"].read_text() == "ran\n"
    kept = raw("GET", f"/pools/{pool_id}/nodes/{node_id}/files/shared/kept")
    assert kept.status == 200 and kept.raw == b"kept\n"


def test_a_reimage_wipes_the_node_and_its_job_preparation_runs_again(raw, sdk, tmp_path):
    pool_id, node_id = node_pool(raw)
    log = tmp_path / "prep"
    job_id = add_job(raw, pool_id=pool_id, jobPreparationTask={"commandLine": f"/bin/bash -c 'echo ran >> {log}'",
                                                               "rerunOnNodeRebootAfterSuccess": False})
    keep = "/bin/bash -c 'echo kept > $AZ_BATCH_NODE_SHARED_DIR/kept'"
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "before", "commandLine": keep}).status == 201
    wait_task(raw, job_id, "before", "completed")
    before = sdk.get_node(pool_id, node_id)
    sdk.begin_reimage_node(pool_id, node_id, BatchNodeReimageOptions(node_reimage_option="requeue"),
                           polling_interval=0).result()
    after = m.BatchNode(wait_for(lambda: node_in(raw, pool_id, node_id, "idle"), what="the reimaged node idle"))
    assert (after.id, after.ip_address, after.allocation_time) == (before.id, before.ip_address, before.allocation_time)
    assert after.last_boot_time > before.last_boot_time
    assert raw("GET", f"/pools/{pool_id}/nodes/{node_id}/files/shared/kept").json["code"] == "FileNotFound"
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "after", "commandLine": "/bin/true"}).status == 201
    wait_task(raw, job_id, "after", "completed")
    assert log.read_text() == "ran\nran\n"   # a reimage reruns it whatever rerunOnNodeRebootAfterSuccess says


def test_a_deallocated_node_runs_nothing_until_it_is_started(raw, sdk):
    pool_id, node_id = node_pool(raw)
    sdk.begin_deallocate_node(pool_id, node_id, BatchNodeDeallocateOptions(node_deallocate_option="requeue"),
                              polling_interval=0).result()
    assert sdk.get_node(pool_id, node_id).state == m.BatchNodeState.DEALLOCATED
    counts = [c for c in raw("GET", "/nodecounts").json["value"] if c["poolId"] == pool_id][0]["dedicated"]
    assert counts["deallocated"] == 1 and counts["total"] == 1
    assert raw("GET", f"/pools/{pool_id}").json["allocationState"] == "steady"
    job_id = add_job(raw, pool_id=pool_id)
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "t1", "commandLine": "/bin/true"}).status == 201
    assert action(raw, pool_id, node_id, "start").status == 202
    task = wait_task(raw, job_id, "t1", "completed")
    node = sdk.get_node(pool_id, node_id)
    assert node.state == m.BatchNodeState.IDLE
    assert m.BatchTask(task).execution_info.start_time >= node.last_boot_time   # it ran only once started


def test_a_node_with_scheduling_disabled_is_offline_and_takes_no_task_until_enabled(raw, sdk, tmp_path):
    pool_id, node_id = node_pool(raw)
    job_id = add_job(raw, pool_id=pool_id)
    log = tmp_path / "runs"
    counting_task(raw, job_id, "t1", log)
    sdk.disable_node_scheduling(pool_id, node_id, m.BatchNodeDisableSchedulingOptions(
        node_disable_scheduling_option=m.BatchNodeDisableSchedulingOption.REQUEUE))
    node = m.BatchNode(wait_for(lambda: node_in(raw, pool_id, node_id, "offline"), what="the node offline"))
    assert node.scheduling_state == m.SchedulingState.DISABLED and node.running_tasks_count == 0
    requeued = raw("GET", f"/jobs/{job_id}/tasks/t1").json
    assert requeued["state"] == "active" and requeued["executionInfo"]["requeueCount"] == 1
    assert raw("GET", f"/pools/{pool_id}").json["allocationState"] == "steady"
    refused = action(raw, pool_id, node_id, "disablescheduling")
    assert (refused.status, refused.json["code"]) == (409, "NodeAlreadyInTargetSchedulingState")
    assert raw("GET", f"/jobs/{job_id}/tasks/t1").json["state"] == "active"
    sdk.enable_node_scheduling(pool_id, node_id)
    assert sdk.get_node(pool_id, node_id).scheduling_state == m.SchedulingState.ENABLED
    assert wait_task(raw, job_id, "t1", "completed")["executionInfo"]["result"] == "success"
    assert log.read_text() == "run\nrun\n"
    refused = action(raw, pool_id, node_id, "enablescheduling")
    assert (refused.status, refused.json["code"]) == (409, "NodeAlreadyInTargetSchedulingState")


def test_disabling_scheduling_with_taskcompletion_lets_the_running_task_end(raw, tmp_path):
    pool_id, node_id = node_pool(raw)
    job_id = add_job(raw, pool_id=pool_id)
    waiting_task(raw, job_id, "t1", tmp_path / "flag")
    assert action(raw, pool_id, node_id, "disablescheduling", {"nodeDisableSchedulingOption": "taskcompletion"}
                  ).status == 200
    running = raw("GET", f"/pools/{pool_id}/nodes/{node_id}").json
    assert (running["state"], running["schedulingState"]) == ("running", "disabled")
    (tmp_path / "flag").touch()
    assert wait_task(raw, job_id, "t1", "completed")["executionInfo"]["result"] == "success"
    wait_for(lambda: node_in(raw, pool_id, node_id, "offline"), what="the node offline once its task ended")


def test_node_actions_refuse_a_node_in_the_wrong_state(raw, sdk, tmp_path):
    pool_id, node_id = node_pool(raw)
    refused = action(raw, pool_id, node_id, "start")
    assert (refused.status, refused.json["code"]) == (409, "OperationInvalidForCurrentState")
    bad = action(raw, pool_id, node_id, "reboot", {"nodeRebootOption": "now"})
    assert (bad.status, bad.json["code"]) == (400, "InvalidPropertyValue")
    assert {v["key"]: v["value"] for v in bad.json["values"]}["PropertyName"] == "nodeRebootOption"
    job_id = add_job(raw, pool_id=pool_id)
    waiting_task(raw, job_id, "t1", tmp_path / "flag")
    assert action(raw, pool_id, node_id, "reboot", {"nodeRebootOption": "taskcompletion"}).status == 202
    for name in ("reboot", "reimage", "deallocate", "start"):
        refused = action(raw, pool_id, node_id, name)
        assert (refused.status, refused.json["code"]) == (409, "NodeBeingRebooted"), name
    with pytest.raises(HttpResponseError) as caught:   # the SDK's LRO sees the refusal at once
        sdk.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="requeue"))
    assert caught.value.error.code == "NodeBeingRebooted"
    (tmp_path / "flag").touch()
    wait_for(lambda: node_in(raw, pool_id, node_id, "idle"), what="the node idle after its reboot")
    assert action(raw, pool_id, node_id, "deallocate").status == 202
    wait_for(lambda: node_in(raw, pool_id, node_id, "deallocated"), what="the node deallocated")
    for name in ("reboot", "reimage", "deallocate"):
        refused = action(raw, pool_id, node_id, name)
        assert (refused.status, refused.json["code"]) == (409, "OperationInvalidForCurrentState"), name
    assert action(raw, pool_id, "tvmps_nosuchnode_d", "reboot").json["code"] == "NodeNotFound"
    assert action(raw, "no-such-pool", node_id, "reboot").json["code"] == "PoolNotFound"


def test_a_node_whose_start_task_runs_is_being_started(raw, tmp_path):
    flag = tmp_path / "flag"
    pool_id = add_pool(raw, targetDedicatedNodes=1, startTask={
        "commandLine": f"/bin/bash -c 'while [ ! -e {flag} ]; do sleep 0.05; done'", "waitForSuccess": True})
    node = wait_for(lambda: [n for n in raw("GET", f"/pools/{pool_id}/nodes").json["value"]
                             if n["state"] == "waitingforstarttask"], what="a node running its start task")[0]
    for name in ("reboot", "reimage", "deallocate"):
        refused = action(raw, pool_id, node["id"], name)
        assert (refused.status, refused.json["code"]) == (409, "NodeBeingStarted"), name
    flag.touch()
    wait_for(lambda: node_in(raw, pool_id, node["id"], "idle"), what="the node idle")


def test_node_extensions_answer_as_recorded(raw, sdk):
    # PY-extensions: the pool's extensions, then Batch's own agent extension.
    pool_id, node_id = node_pool(raw, virtualMachineConfiguration={
        "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
        "nodeAgentSKUId": "batch.node.ubuntu 24.04", "extensions": [DECLARED]})
    listed = raw("GET", f"/pools/{pool_id}/nodes/{node_id}/extensions")
    assert listed.status == 200 and listed.json["odata.metadata"].endswith("/$metadata#extensions")
    assert [e["vmExtension"] for e in listed.json["value"]] == LISTED
    assert all(set(e) == {"provisioningState", "instanceView", "vmExtension"} for e in listed.json["value"])
    assert {e["provisioningState"] for e in listed.json["value"]} == {"Succeeded"}   # the node is idle
    one = raw("GET", f"/pools/{pool_id}/nodes/{node_id}/extensions/batchNodeExtension")
    assert one.json["odata.metadata"].endswith("/$metadata#extensions/@Element")
    assert {k: v for k, v in one.json.items() if k != "odata.metadata"} == listed.json["value"][1]
    assert one.json["instanceView"]["statuses"][0]["code"] == "ProvisioningState/succeeded"
    extension = sdk.get_node_extension(pool_id, node_id, "secretext")
    assert (extension.vm_extension.type, extension.provisioning_state) == ("KeyVaultForLinux", "Succeeded")
    assert [e.vm_extension.name for e in sdk.list_node_extensions(pool_id, node_id)] == ["secretext",
                                                                                         "batchNodeExtension"]
    missing = raw("GET", f"/pools/{pool_id}/nodes/{node_id}/extensions/nosuchextension")
    assert (missing.status, missing.json["code"]) == (404, "ResourceNotFound")


def test_a_reboot_stops_a_start_task_that_does_not_hold_the_node(raw, tmp_path):
    # waitForSuccess false: the node is idle while its start task runs; a reboot stops that run and starts another.
    runs = tmp_path / "runs"
    pool_id, node_id = node_pool(raw, startTask={"commandLine": f"/bin/bash -c 'echo run >> {runs}; sleep 60'",
                                                 "waitForSuccess": False})
    first = wait_for(lambda: runs.exists() and raw("GET", f"/pools/{pool_id}/nodes/{node_id}").json,
                     what="the first start task running")
    assert first["startTaskInfo"]["state"] == "running"
    assert action(raw, pool_id, node_id, "reboot").status == 202
    again = wait_for(lambda: runs.read_text() == "run\nrun\n" and node_in(raw, pool_id, node_id, "idle"),
                     what="the start task run again after the reboot")
    assert again["startTaskInfo"]["state"] == "running" and again["lastBootTime"] > first["lastBootTime"]
    assert again["startTaskInfo"]["startTime"] > first["startTaskInfo"]["startTime"]
