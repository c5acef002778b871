"""A job's body and a pool's startTask, parsed once into the typed settings the service and the runtime read
(service/specs.py), anew whenever a request changes them; the body itself is what the wire renders (issue 17)."""

import copy

import pytest

from batch_emulator.api import wire
from batch_emulator.service import jobs, pools
from batch_emulator.service.conditions import Conditions
from batch_emulator.service.errors import BatchServiceError
from batch_emulator.service.specs import JobSettings, NodeTask, PoolSettings
from batch_emulator.service.state import Account

VM = {"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
      "nodeAgentSKUId": "batch.node.ubuntu 24.04"}
PREPARATION = {"id": "prep", "commandLine": "/bin/sh -c 'echo prep'", "waitForSuccess": False,
               "resourceFiles": [{"httpUrl": "http://x/f", "filePath": "f"}],
               "environmentSettings": [{"name": "A", "value": "1"}, {"name": "EMPTY"}],
               "constraints": {"maxTaskRetryCount": 2, "maxWallClockTime": "PT1M"},
               "userIdentity": {"autoUser": {"elevationLevel": "admin"}}}
JOB = {"id": "j1", "poolInfo": {"poolId": "p1"}, "priority": 5, "maxParallelTasks": 3,
       "constraints": {"maxTaskRetryCount": 4, "maxWallClockTime": "PT2H"},
       "onAllTasksComplete": "TerminateJob", "onTaskFailure": "performExitOptionsJobAction",
       "usesTaskDependencies": True, "metadata": [{"name": "made", "value": "by test"}],
       "commonEnvironmentSettings": [{"name": "COMMON", "value": "c"}],
       "jobPreparationTask": PREPARATION, "jobReleaseTask": {"commandLine": "/bin/true"},
       "jobManagerTask": {"id": "m", "commandLine": "/bin/true", "runExclusive": False}}


def refusal(func, *args):
    with pytest.raises(BatchServiceError) as caught:
        func(*args)
    return caught.value.status, caught.value.code


def test_a_job_body_is_parsed_once_into_its_settings():
    assert JobSettings.parse(copy.deepcopy(JOB)) == JobSettings(
        pool_id="p1", priority=5, max_parallel_tasks=3, max_task_retry_count=4, max_wall_clock_time="PT2H",
        terminate_when_all_tasks_complete=True, exit_options_act_on_job=True, uses_task_dependencies=True,
        common_environment=(("COMMON", "c"),),
        preparation=NodeTask(command_line="/bin/sh -c 'echo prep'",
                             resource_files=({"httpUrl": "http://x/f", "filePath": "f"},),
                             environment=(("A", "1"), ("EMPTY", "")),
                             user_identity={"autoUser": {"elevationLevel": "admin"}},
                             max_task_retry_count=2, max_wall_clock_time="PT1M", wait_for_success=False),
        preparation_task_id="prep", release_task_id="jobrelease", manager_runs_exclusive=False,
        manager_ends_job=True)


def test_a_job_without_options_has_the_services_defaults():
    settings = JobSettings.parse({"id": "j1", "poolInfo": {"autoPoolSpecification": {"keepAlive": True}}})
    assert settings == JobSettings(keep_auto_pool=True)
    assert (settings.preparation, settings.preparation_task_id, settings.release_task_id) == (None, "jobpreparation",
                                                                                              None)
    assert (settings.max_parallel_tasks, settings.manager_runs_exclusive, settings.manager_ends_job) == (-1, True, True)


def test_a_job_patch_and_put_parse_the_settings_anew(tmp_path):
    account = Account(name="a", root=str(tmp_path))
    jobs.create_job(account, {"id": "j1", "poolInfo": {"poolId": "p1"}, "priority": 1})
    jobs.patch_job(account, "j1", Conditions(), {"priority": 7, "onAllTasksComplete": "terminatejob",
                                                 "constraints": {"maxTaskRetryCount": 2}})
    settings = account.jobs["j1"].settings
    assert (settings.priority, settings.terminate_when_all_tasks_complete, settings.max_task_retry_count) == \
        (7, True, 2)
    jobs.replace_job(account, "j1", Conditions(), {"poolInfo": {"poolId": "p2"}, "onAllTasksComplete": "terminatejob"})
    settings = account.jobs["j1"].settings   # a PUT puts back the defaults of what it leaves out
    assert (settings.pool_id, settings.priority, settings.max_task_retry_count) == ("p2", 0, 0)
    assert account.jobs["j1"].pool_key() == "p2"


def test_a_job_renders_as_it_was_sent(tmp_path):
    account = Account(name="a", root=str(tmp_path))
    jobs.create_job(account, copy.deepcopy(JOB))
    out = wire.job_to_wire(account.jobs["j1"], "http://h")
    assert (out["jobPreparationTask"]["environmentSettings"], out["metadata"], out["onAllTasksComplete"]) == (
        [{"name": "A", "value": "1"}, {"name": "EMPTY"}], JOB["metadata"], "terminatejob")


def pool_body(**extra):
    return {"id": "p1", "vmSize": "standard_d2s_v5", "virtualMachineConfiguration": VM, **extra}


def test_a_start_task_is_parsed_with_its_own_retry_count():
    start = {"commandLine": "/bin/true", "maxTaskRetryCount": 3, "environmentSettings": [{"name": "S", "value": 1}]}
    assert PoolSettings.parse(pool_body(startTask=start)).start_task == NodeTask(
        command_line="/bin/true", environment=(("S", "1"),), max_task_retry_count=3)
    assert PoolSettings.parse(pool_body(startTask={})).start_task is None
    assert PoolSettings.parse(pool_body()).start_task is None


def test_every_pool_update_parses_the_start_task_anew(tmp_path):
    account = Account(name="a", root=str(tmp_path))
    pools.create_pool(account, pool_body(startTask={"commandLine": "/bin/first"}))
    assert account.pools["p1"].settings.start_task.command_line == "/bin/first"
    pools.patch_pool(account, "p1", Conditions(), {"startTask": {"commandLine": "/bin/second",
                                                                 "waitForSuccess": False}})
    start = account.pools["p1"].settings.start_task
    assert (start.command_line, start.wait_for_success) == ("/bin/second", False)
    pools.update_properties(account, "p1", Conditions(), {"startTask": {"commandLine": "/bin/third"},
                                                          "certificateReferences": [],
                                                          "applicationPackageReferences": [], "metadata": []})
    assert account.pools["p1"].settings.start_task.command_line == "/bin/third"
    pools.update_properties(account, "p1", Conditions(), {"certificateReferences": [],
                                                          "applicationPackageReferences": [], "metadata": []})
    assert account.pools["p1"].settings.start_task is None   # an omitted start task is removed


@pytest.mark.parametrize("start", [{"commandLine": "/bin/true", "maxTaskRetryCount": "many"}, {"waitForSuccess": True}])
def test_a_start_task_nodes_could_not_run_is_refused_before_it_is_stored(tmp_path, start):
    account = Account(name="a", root=str(tmp_path))
    assert refusal(pools.create_pool, account, pool_body(startTask=start))[0] == 400
    pools.create_pool(account, pool_body(startTask={"commandLine": "/bin/kept"}))
    assert refusal(pools.patch_pool, account, "p1", Conditions(), {"startTask": start})[0] == 400
    assert account.pools["p1"].spec["startTask"] == {"commandLine": "/bin/kept"}
    assert account.pools["p1"].settings.start_task.command_line == "/bin/kept"
