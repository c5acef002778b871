"""The service operations the HTTP layer calls (issue 17): lock, rules, change, wake; errors with their status;
the scheduler's actions as types."""

import dataclasses
from datetime import datetime, timezone

import pytest

from batch_emulator.service import autoscale, changes, pools, scheduler, tasks
from batch_emulator.service.conditions import Conditions
from batch_emulator.service.errors import (
    BatchServiceError,
    Conflict,
    NotFound,
    ServiceUnavailable,
    conflict,
    not_found,
    service_error,
)
from batch_emulator.service.specs import MultiInstance, TaskSettings
from batch_emulator.service.state import Account, Job

VM = {"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
      "nodeAgentSKUId": "batch.node.ubuntu 24.04"}
AUTOSCALE = {"autoScaleFormula": "$TargetDedicatedNodes = 0;", "autoScaleEvaluationInterval": "PT5M"}


def counting_wakes(account):
    woken = []
    account.wake = lambda: woken.append(True)   # the instance's, not the class's: only this account
    return woken


def refusal(func, *args):
    with pytest.raises(BatchServiceError) as caught:
        func(*args)
    return caught.value


def test_an_operation_wakes_the_scheduler_once_it_changed_something(tmp_path):
    account = Account(name="a", root=str(tmp_path))
    woken = counting_wakes(account)
    pool = pools.create_pool(account, {"id": "p1", "vmSize": "standard_d2s_v5", "virtualMachineConfiguration": VM})
    assert woken == [True] and account.pools["p1"].etag == pool.etag
    assert refusal(pools.create_pool, account, {"id": "P1", "vmSize": "standard_d2s_v5",
                                                "virtualMachineConfiguration": VM}).code == "PoolExists"
    assert woken == [True]   # a refused operation changed nothing


def test_change_holds_the_account_lock_while_it_runs(tmp_path):
    account = Account(name="a", root=str(tmp_path))
    owned = changes.change(account, lambda: account.lock._is_owned())
    assert owned and not account.lock._is_owned()


def test_the_enable_autoscale_limit_is_the_service_constant(tmp_path, monkeypatch):
    monkeypatch.setattr(autoscale, "ENABLE_LIMIT_SECONDS", 60.0)
    account = Account(name="a", root=str(tmp_path), time_scale=1.0)
    pools.create_pool(account, {"id": "p1", "vmSize": "standard_d2s_v5", "virtualMachineConfiguration": VM})
    pools.enable_autoscale(account, "p1", Conditions(), AUTOSCALE)
    err = refusal(pools.enable_autoscale, account, "p1", Conditions(), AUTOSCALE)
    assert isinstance(err, ServiceUnavailable) and err.code == "TooManyEnableAutoScaleRequests"
    assert ("Reason", "Enable autoscale requests for the same pool must be separated by at least 60 seconds "
                      "(60 s at this emulator's time scale).") in err.values


def test_a_write_checks_its_preconditions_against_the_object(tmp_path):
    account = Account(name="a", root=str(tmp_path))
    pool = pools.create_pool(account, {"id": "p1", "vmSize": "standard_d2s_v5", "virtualMachineConfiguration": VM})
    stale = Conditions.from_headers({"if-match": "0x8DSTALE", "content-length": "2"})
    assert stale.sent == (("if-match", "0x8DSTALE"),)
    assert refusal(pools.patch_pool, account, "p1", stale, {}).status == 412
    assert pools.patch_pool(account, "p1", Conditions.from_headers({"if-match": pool.etag}), {}).etag != pool.etag
    bad_date = Conditions.from_headers({"if-modified-since": "yesterday"})
    assert refusal(bad_date.check, pool.etag, datetime.now(timezone.utc)).code == "InvalidHeaderValue"
    assert refusal(pools.delete_pool, account, "nope", stale).code == "PoolNotFound"   # 404 before 412


def test_a_task_collection_answers_each_refused_task_with_its_error(tmp_path):
    account = Account(name="a", root=str(tmp_path))
    account.jobs["j1"] = Job(id="J1", spec={"id": "J1", "poolInfo": {"poolId": "p1"}})
    job_id, results = tasks.add_task_collection(account, "j1", {"value": [
        {"id": "t1", "commandLine": "true"}, {"id": "T1", "commandLine": "true"}, "not a task"]})
    assert job_id == "J1"
    assert isinstance(results[0], changes.Version) and results[0].id == "t1"
    assert [(r.task_id, r.error.code) for r in results[1:]] == [("T1", "TaskExists"),
                                                                (None, results[2].error.code)]
    assert results[2].error.status == 400


@pytest.mark.parametrize("status, kind", [(404, NotFound), (409, Conflict), (503, ServiceUnavailable)])
def test_an_error_carries_its_status_in_its_class(status, kind):
    err = service_error(status, "SomeCode", Reason="why")
    assert type(err) is kind and err.status == status and err.values == [("Reason", "why")]


def test_the_helpers_build_the_errors_of_their_status():
    assert isinstance(not_found("PoolNotFound"), NotFound) and not_found("PoolNotFound").status == 404
    assert conflict("TaskCompleted").values == [] and conflict("X", "because").values == [("Reason", "because")]
    with pytest.raises(ValueError, match="no Batch error class for HTTP status 418"):
        service_error(418, "Teapot")


def test_scheduler_actions_are_frozen_values(tmp_path):
    account = Account(name="a", root=str(tmp_path))
    pools.create_pool(account, {"id": "p1", "vmSize": "standard_d2s_v5", "virtualMachineConfiguration": VM,
                                "targetDedicatedNodes": 1})
    [action] = scheduler.tick(account)
    assert isinstance(action, scheduler.Provision) and action.pool is account.pools["p1"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        action.node = None


def test_a_patch_parses_the_pool_settings_anew(tmp_path):
    account = Account(name="a", root=str(tmp_path))
    pools.create_pool(account, {"id": "p1", "vmSize": "STANDARD_D2S_V5", "virtualMachineConfiguration": VM,
                                "enableInterNodeCommunication": True})
    settings = account.pools["p1"].settings
    assert (settings.vm_size, settings.task_slots_per_node, settings.inter_node_communication,
            settings.pack_nodes) == ("STANDARD_D2S_V5", 1, True, False)
    pools.patch_pool(account, "p1", Conditions(), {"taskSlotsPerNode": 4,
                                                   "taskSchedulingPolicy": {"nodeFillType": "Pack"}})
    settings = account.pools["p1"].settings
    assert (settings.task_slots_per_node, settings.pack_nodes) == (4, True)


def test_a_task_body_is_parsed_once_into_its_settings():
    settings = TaskSettings.parse({"id": "t", "requiredSlots": 2, "constraints": {"maxTaskRetryCount": 3,
                                                                                  "maxWallClockTime": "PT1M"},
                                   "multiInstanceSettings": {"numberOfInstances": 3,
                                                             "coordinationCommandLine": "setup",
                                                             "commonResourceFiles": [{"httpUrl": "http://x/f"}]}})
    assert settings == TaskSettings(required_slots=2, max_task_retry_count=3, max_wall_clock_time="PT1M",
                                    multi_instance=MultiInstance(3, "setup", ({"httpUrl": "http://x/f"},)))
    assert settings.instances == 3
    assert TaskSettings.parse({"id": "t"}) == TaskSettings() and TaskSettings().instances == 1
