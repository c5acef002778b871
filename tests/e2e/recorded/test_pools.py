"""The emulator answers pool requests as the real service did in Microsoft's recorded tests (sources and
abbreviations: tests/e2e/recorded_client.py). Raw signed requests, so statuses and headers are seen exactly."""

import pytest
from azure.batch import models as m

from tests.conftest import wait_for
from tests.e2e.emulator_process import VM
from tests.e2e.recorded_client import (
    API,
    IMAGE,
    add_pool,
    uid,
)

# ---------------------------------------------------------------- 1. pool without target node counts

def test_pool_add_without_target_counts_is_201_with_zero_targets(raw):
    # CLI-jobs data entry 1: POST /pools with neither targetDedicatedNodes, targetLowPriorityNodes nor
    # enableAutoScale -> 201 Created; SDK-update-24 entry 1 + 5: GET shows both targets 0.
    pool_id = uid("notarget")
    answer = raw("POST", "/pools", {"id": pool_id, "vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE})
    assert answer.status == 201, answer
    pool = raw("GET", f"/pools/{pool_id}").json
    assert (pool["targetDedicatedNodes"], pool["targetLowPriorityNodes"]) == (0, 0)
    assert (pool["currentDedicatedNodes"], pool["currentLowPriorityNodes"]) == (0, 0)
    assert pool["enableAutoScale"] is False


def test_pool_add_without_targets_through_the_sdk(sdk):
    # Same recording, through the public SDK: create_pool with no target counts succeeds.
    pool_id = uid("sdknotarget")
    sdk.create_pool(m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=VM))
    pool = sdk.get_pool(pool_id)
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (0, 0)


# ---------------------------------------------------------------- 2. updateproperties

def test_update_properties_is_204_and_replaces_start_task_and_metadata(raw):
    # SDK-update-24 entries 1-5: pool with a startTask; POST /pools/{id}/updateproperties
    # {"applicationPackageReferences":[],"metadata":[{"name":"foo","value":"bar"}],...} -> 204, Content-Length 0,
    # DataServiceId .../pools/{id}/updateproperties, ETag, Last-Modified; the GET has no startTask any more.
    pool_id = add_pool(raw, targetDedicatedNodes=0, startTask={"commandLine": "/bin/true"},
                       metadata=[{"name": "old", "value": "1"}])
    answer = raw("POST", f"/pools/{pool_id}/updateproperties",
                 {"applicationPackageReferences": [], "metadata": [{"name": "foo", "value": "bar"}]})
    assert answer.status == 204, answer
    assert answer.raw == b""
    assert answer.headers["DataServiceId"] == f"{raw.base}/pools/{pool_id}/updateproperties"
    assert "ETag" in answer.headers and "Last-Modified" in answer.headers
    pool = raw("GET", f"/pools/{pool_id}").json
    assert "startTask" not in pool
    assert pool["metadata"] == [{"name": "foo", "value": "bar"}]
    assert pool.get("applicationPackageReferences", []) == []


def test_autoscale_interval_is_normalised(raw):
    # SDK-scale entries 1, 3: autoScaleEvaluationInterval "PT06M00S" is read back as "PT6M".
    pool_id = add_pool(raw, targetDedicatedNodes=0)
    answer = raw("POST", f"/pools/{pool_id}/enableautoscale",
                 {"autoScaleFormula": "$TargetDedicatedNodes=0", "autoScaleEvaluationInterval": "PT06M00S"})
    assert answer.status == 200, answer
    assert raw("GET", f"/pools/{pool_id}").json["autoScaleEvaluationInterval"] == "PT6M"


# ---------------------------------------------------------------- 8. deleting

def test_pool_get_right_after_delete_shows_deleting_then_404(raw):
    # SDK-update-25 last entries: DELETE -> 202 (no DataServiceId, no ETag); GET same second -> 200 state deleting;
    # 5 s later -> 404 PoolNotFound.
    pool_id = add_pool(raw, targetDedicatedNodes=0)
    answer = raw("DELETE", f"/pools/{pool_id}")
    assert answer.status == 202, answer
    assert "DataServiceId" not in answer.headers and "ETag" not in answer.headers
    pool = raw("GET", f"/pools/{pool_id}")
    assert pool.status == 200, pool
    assert pool.json["state"] == "deleting"
    gone = wait_for(lambda: (lambda a: a if a.status == 404 else None)(raw("GET", f"/pools/{pool_id}")), timeout=30,
                    what="pool gone")
    assert gone.json["code"] == "PoolNotFound"


# ---------------------------------------------------------------- 9. secrets, defaults, previousState

def test_user_account_password_is_never_returned(raw, sdk):
    # SDK-create entries 1, 8 and SDK-scale entry 3: userAccounts come back without password; elevationLevel
    # defaults to nonadmin.
    pool_id = add_pool(raw, targetDedicatedNodes=0, userAccounts=[
        {"name": "test-user-1", "password": "Pa55word!x"},
        {"name": "test-user-2", "password": "Pa55word!y", "elevationLevel": "admin"}])
    accounts = raw("GET", f"/pools/{pool_id}").json["userAccounts"]
    assert accounts[0] == {"name": "test-user-1", "elevationLevel": "nonadmin"}
    assert accounts[1] == {"name": "test-user-2", "elevationLevel": "admin"}
    listed = raw("GET", "/pools", query={"$filter": f"id eq '{pool_id}'"}).json["value"][0]
    assert all("password" not in a for a in listed["userAccounts"])
    assert all(a.password is None for a in sdk.get_pool(pool_id).user_accounts)


def test_pool_get_fills_documented_defaults(raw):
    # SDK-create entries 5-6, SDK-scale entry 3, SDK-update-25: resizeTimeout PT15M, taskSlotsPerNode 1,
    # nodeFillType Spread + jobDefaultOrder none, enableInterNodeCommunication false, imageReference.version latest
    # and no exactVersion on the pool, dataDisks caching none / storageAccountType standard_lrs,
    # networkConfiguration dynamicVNetAssignmentScope none / enableAcceleratedNetworking false.
    nat = {"name": "ruleName", "protocol": "tcp", "backendPort": 3389, "frontendPortRangeStart": 15000,
           "frontendPortRangeEnd": 15100}
    pool_id = add_pool(raw, targetDedicatedNodes=0,
                       virtualMachineConfiguration=dict(IMAGE, dataDisks=[{"lun": 1, "diskSizeGB": 50}]),
                       networkConfiguration={"endpointConfiguration": {"inboundNATPools": [nat]}})
    pool = raw("GET", f"/pools/{pool_id}").json
    assert pool["resizeTimeout"] == "PT15M"
    assert pool["taskSlotsPerNode"] == 1
    assert pool["taskSchedulingPolicy"] == {"nodeFillType": "Spread", "jobDefaultOrder": "none"}
    assert pool["enableInterNodeCommunication"] is False
    image = pool["virtualMachineConfiguration"]["imageReference"]
    assert image["version"] == "latest" and "exactVersion" not in image
    assert pool["virtualMachineConfiguration"]["dataDisks"] == [
        {"lun": 1, "caching": "none", "diskSizeGB": 50, "storageAccountType": "standard_lrs"}]
    network = pool["networkConfiguration"]
    assert network["dynamicVNetAssignmentScope"] == "none"
    assert network["enableAcceleratedNetworking"] is False
    assert network["endpointConfiguration"] == {"inboundNATPools": [nat]}


@pytest.mark.parametrize("action,body,status", [
    ("enableautoscale", {"autoScaleFormula": "$TargetDedicatedNodes=0", "autoScaleEvaluationInterval": "PT5M"}, 200),
    ("evaluateautoscale", {"autoScaleFormula": "$TargetDedicatedNodes=0"}, 200),
    ("disableautoscale", None, 200),
    ("resize", {"targetDedicatedNodes": 0, "targetLowPriorityNodes": 0}, 202),
    ("stopresize", None, 202),
])
def test_pool_actions_answer_with_the_action_data_service_id(raw, action, body, status):
    # SDK-scale entries 1, 2, 4, 5, 6 (and CLI-pools): DataServiceId is the action URL, e.g. .../pools/x/resize;
    # enable/disableautoscale 200 (not 202), resize/stopresize 202; evaluateautoscale without ETag.
    pool_id = add_pool(raw, targetDedicatedNodes=0)
    if action in ("evaluateautoscale", "disableautoscale"):
        raw("POST", f"/pools/{pool_id}/enableautoscale", {"autoScaleFormula": "$TargetDedicatedNodes=0"})
    answer = raw("POST", f"/pools/{pool_id}/{action}", body)
    assert answer.status == status, answer
    assert answer.headers["DataServiceId"] == f"{raw.base}/pools/{pool_id}/{action}"
    if action == "evaluateautoscale":
        assert "ETag" not in answer.headers
        assert answer.json["odata.metadata"] == \
            f"{raw.base}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.AutoScaleRun"
        assert answer.json["results"] == \
            "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    else:
        assert "ETag" in answer.headers


def test_next_link_carries_the_api_version(raw):
    # SDK-create entry 9: "odata.nextLink": ".../pools?api-version=2024-07-01.20.0&maxresults=1&$skiptoken=...".
    add_pool(raw, targetDedicatedNodes=0)
    add_pool(raw, targetDedicatedNodes=0)
    link = raw("GET", "/pools", query={"maxresults": "1"}).json["odata.nextLink"]
    assert link.startswith(f"{raw.base}/pools?api-version={API}&maxresults=1&$skiptoken="), link


def test_node_fill_type_comes_back_capitalised(raw):
    # SDK-create entries 1, 8: sent "pack" -> "Pack"; default "Spread".
    packed = add_pool(raw, targetDedicatedNodes=0, taskSchedulingPolicy={"nodeFillType": "pack"})
    assert raw("GET", f"/pools/{packed}").json["taskSchedulingPolicy"]["nodeFillType"] == "Pack"
    spread = add_pool(raw, targetDedicatedNodes=0)
    assert raw("GET", f"/pools/{spread}").json["taskSchedulingPolicy"]["nodeFillType"] == "Spread"


# ---------------------------------------------------------------- 12. first autoscale evaluation

def test_first_autoscale_evaluation_is_not_immediate(raw):
    # SDK-scale entries 1, 3: GET in the same second as enableautoscale: enableAutoScale true, formula, interval,
    # no autoScaleRun, targets unchanged (0), allocationState steady.
    pool_id = add_pool(raw, targetDedicatedNodes=0)
    answer = raw("POST", f"/pools/{pool_id}/enableautoscale",
                 {"autoScaleFormula": "$TargetDedicatedNodes=2", "autoScaleEvaluationInterval": "PT06M00S"})
    assert answer.status == 200, answer
    pool = raw("GET", f"/pools/{pool_id}").json
    assert pool["enableAutoScale"] is True
    assert pool["autoScaleFormula"] == "$TargetDedicatedNodes=2"
    assert "autoScaleRun" not in pool
    assert pool["targetDedicatedNodes"] == 0
