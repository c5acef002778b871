"""Validation rules, wire defaults and scheduling decisions of the Batch emulator (no server, no processes)."""

import json
from datetime import timedelta

import pytest

from batch_emulator.api import wire
from batch_emulator.service import autoscale, pools, scheduler
from batch_emulator.service.errors import BatchServiceError, error_body, service_error
from batch_emulator.service.state import Account, Job, Pool, Task, dependencies_met, pending_instances
from batch_emulator.service.states import ExecutionResult, NodeState, PoolState, TaskState
from batch_emulator.service.validation import (
    parse_duration,
    validate_job,
    validate_job_patch,
    validate_pool,
    validate_resize,
    validate_task,
)

VM = {"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
      "nodeAgentSKUId": "batch.node.ubuntu 24.04"}


def pool_body(**extra):
    body = {"id": "p1", "vmSize": "standard_d2s_v3", "virtualMachineConfiguration": VM, "targetDedicatedNodes": 1}
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def refused(func, *args):
    with pytest.raises(BatchServiceError) as caught:
        func(*args)
    return caught.value


def test_error_body_is_top_level_with_lang_and_values():
    body = error_body(service_error(404, "PoolNotFound", Reason="x"), "http://h:1", "rid")
    assert body["code"] == "PoolNotFound"
    assert body["message"]["lang"] == "en-US"
    assert body["message"]["value"].startswith("The specified pool does not exist.\nRequestId:rid\nTime:")
    assert body["values"] == [{"key": "Reason", "value": "x"}]
    assert body["odata.metadata"].startswith("http://h:1/$metadata#")


@pytest.mark.parametrize("bad_id", ["", "a b", "x" * 65, "p/1", "é"])
def test_invalid_pool_ids_give_invalid_property_value_with_details(bad_id):
    err = refused(validate_pool, pool_body(id=bad_id))
    assert (err.status, err.code) == (400, "InvalidPropertyValue" if bad_id else "MissingRequiredProperty")
    assert dict(err.values)["PropertyName"] == "id"
    if bad_id:
        assert "Reason" in dict(err.values)


@pytest.mark.parametrize("body,code", [
    (pool_body(vmSize=None), "MissingRequiredProperty"),
    (pool_body(virtualMachineConfiguration=None), "MissingRequiredProperty"),
    (pool_body(targetDedicatedNodes="two"), "InvalidPropertyValue"),
    (pool_body(targetDedicatedNodes="1.5"), "InvalidPropertyValue"),
    (pool_body(targetDedicatedNodes=None, enableAutoScale=True), "MissingRequiredProperty"),   # no formula
    (pool_body(enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes=1;"), "InvalidPropertyValue"),
    (pool_body(autoScaleFormula="$TargetDedicatedNodes=1;"), "InvalidPropertyValue"),
    (pool_body(targetDedicatedNodes=None, enableAutoScale=True, autoScaleFormula="x",
               autoScaleEvaluationInterval="PT4M"), "InvalidPropertyValue"),
    (pool_body(targetDedicatedNodes=None, enableAutoScale=True, autoScaleFormula="x",
               autoScaleEvaluationInterval="PT169H"), "InvalidPropertyValue"),
    (pool_body(targetDedicatedNodes=None, enableAutoScale=True, autoScaleFormula="x" * 8193),
     "AutoScaleFormulaTooLong"),
    (pool_body(resizeTimeout="PT1M"), "InvalidPropertyValue"),
    (pool_body(resizeTimeout="soon"), "InvalidPropertyValue"),
    (pool_body(taskSlotsPerNode=0), "InvalidPropertyValue"),
    (pool_body(targetDedicatedNodes=-1), "InvalidPropertyValue"),
])
def test_pool_sizing_and_shape_rules(body, code):
    err = refused(validate_pool, body)
    assert (err.status, err.code) == (400, code)


def created(body):
    """The pool a pool add with ``body`` makes, and its account (the service operation, no server)."""
    account = Account(name="a", root="/nonexistent")
    pools.create_pool(account, body)
    return account, account.pools[body["id"].lower()]


def test_autoscale_pool_with_sdk_style_interval_is_valid():
    # The SDK sends a 5-minute interval as PT05M00S; it reads back as PT5M.
    account, pool = created(pool_body(targetDedicatedNodes=None, enableAutoScale=True,
                                      autoScaleFormula="$TargetDedicatedNodes=1;",
                                      autoScaleEvaluationInterval="PT05M00S"))
    assert (pool.enable_auto_scale, pool.auto_scale_formula) == (True, "$TargetDedicatedNodes=1;")
    assert autoscale.interval_seconds(account, pool) == 5 * 60 / account.time_scale
    shown = wire.pool_to_wire(pool, "http://h")
    assert (shown["enableAutoScale"], shown["autoScaleEvaluationInterval"]) == (True, "PT5M")

    account, pool = created(pool_body(targetDedicatedNodes=0, targetLowPriorityNodes=2, resizeTimeout="PT15M"))
    assert (pool.enable_auto_scale, pool.target_dedicated, pool.target_low_priority) == (False, 0, 2)
    assert pool.resize_timeout == "PT15M"
    scheduler.tick(account)
    assert sorted(node.dedicated for node in pool.nodes.values()) == [False, False]


def test_pool_without_targets_is_a_pool_of_zero_nodes():
    # Recorded: 201 for a pool add with neither target nor autoscale (Azure/azure-cli, src/azure-cli/azure/cli/
    # command_modules/batch/tests/latest/recordings/test_batch_jobs_and_tasks.yaml).
    account, pool = created(pool_body(targetDedicatedNodes=None))
    assert scheduler.tick(account) == [] and not pool.nodes
    shown = wire.pool_to_wire(pool, "http://h")
    assert {key: shown[key] for key in ("state", "allocationState", "enableAutoScale", "targetDedicatedNodes",
                                        "targetLowPriorityNodes", "currentDedicatedNodes",
                                        "currentLowPriorityNodes")} == {
        "state": "active", "allocationState": "steady", "enableAutoScale": False, "targetDedicatedNodes": 0,
        "targetLowPriorityNodes": 0, "currentDedicatedNodes": 0, "currentLowPriorityNodes": 0}


def test_integer_strings_are_read_as_integers():
    # `az batch pool create --target-dedicated-nodes 1` sends "1".
    body = validate_pool(pool_body(targetDedicatedNodes="1", taskSlotsPerNode=" 2"))
    assert (body["targetDedicatedNodes"], body["taskSlotsPerNode"]) == (1, 2)


@pytest.mark.parametrize("text,expected", [
    ("P3Y6M4DT12H30M5S", timedelta(days=1279, hours=12, minutes=30, seconds=5)),
    ("P1M", timedelta(days=30)), ("P1Y", timedelta(days=365)), ("PT06M00S", timedelta(minutes=6))])
def test_years_and_months_count_as_365_and_30_days(text, expected):
    # Recorded: P3Y6M4DT12H30M5S reads back P1279DT12H30M5S (Azure/azure-cli, .../test_batch_jobs_and_tasks.yaml).
    assert parse_duration(text, "d") == expected
    shown = {"P3Y6M4DT12H30M5S": "P1279DT12H30M5S", "P1M": "P30D", "P1Y": "P365D", "PT06M00S": "PT6M"}
    assert wire.norm_duration(text) == shown[text]


@pytest.mark.parametrize("pool_info,name", [
    ({"autoPoolSpecification": {"poolLifetimeOption": "jobschedule", "pool": {}}},
     "poolInfo.autoPoolSpecification.poolLifetimeOption"),
    ({"autoPoolSpecification": {"pool": {}}}, "poolInfo.autoPoolSpecification.poolLifetimeOption"),
    ({"autoPoolSpecification": {"poolLifetimeOption": "job"}}, "poolInfo.autoPoolSpecification.pool"),
    ({"autoPoolSpecification": {"poolLifetimeOption": "job", "pool": {"vmSize": "x"}}},
     "poolInfo.autoPoolSpecification.pool.virtualMachineConfiguration"),
])
def test_auto_pool_specification_problems_name_the_property(pool_info, name):
    err = refused(validate_job, {"id": "j1", "poolInfo": pool_info})
    assert err.status == 400 and dict(err.values)["PropertyName"] == name


def test_resize_needs_a_target():
    assert refused(validate_resize, {}).code == "MissingRequiredProperty"
    accepted = {"targetDedicatedNodes": 3, "nodeDeallocationOption": "taskcompletion"}
    assert validate_resize(dict(accepted)) == accepted


def job(**spec):
    body = {"id": "j1", "poolInfo": {"poolId": "p1"}}
    body.update(spec)
    return Job(id="j1", spec=validate_job(body))


def test_task_id_equal_to_the_prep_task_id_is_a_409():
    with_prep = job(jobPreparationTask={"commandLine": "true"})
    err = refused(validate_task, {"id": "JobPreparation", "commandLine": "true"}, with_prep)
    assert (err.status, err.code) == (409, "TaskIdSameAsJobPreparationTask")
    validate_task({"id": "jobpreparation", "commandLine": "true"}, job())


@pytest.mark.parametrize("task,code", [
    ({"id": "t"}, "MissingRequiredProperty"),
    ({"id": "t", "commandLine": "x", "dependsOn": {"taskIds": ["a"]}}, "TaskDependenciesNotSpecifiedOnJob"),
    ({"id": "t", "commandLine": "x", "requiredSlots": 2, "multiInstanceSettings": {"numberOfInstances": 2}},
     "InvalidPropertyValue"),
    ({"id": "t", "commandLine": "x", "constraints": {"maxWallClockTime": "forever"}}, "InvalidPropertyValue"),
    ({"id": "t", "commandLine": "x", "resourceFiles": [{"httpUrl": "http://x/a"}]}, "MissingRequiredProperty"),
    ({"id": "t", "commandLine": "x", "resourceFiles": [{"httpUrl": "http://x/a", "filePath": "../../etc/x"}]},
     "InvalidPropertyValue"),
    ({"id": "t", "commandLine": "x", "outputFiles": [{"filePattern": "*", "destination": {"container": {
        "containerUrl": "http://x/c"}}}]}, "MissingRequiredProperty"),
])
def test_task_validation(task, code):
    assert refused(validate_task, task, job()).code == code


def test_job_rules():
    assert refused(validate_job, {"id": "j"}).code == "MissingRequiredProperty"
    assert refused(validate_job, {"id": "j", "poolInfo": {"poolId": "p"}, "priority": 5000}).code == \
        "OutOfRangePriority"
    assert refused(validate_job, {"id": "j", "poolInfo": {"poolId": "p"}, "onAllTasksComplete": "later"}).status == 400
    terminating = job(onAllTasksComplete="terminatejob")
    assert refused(validate_job_patch, {"onAllTasksComplete": "noaction"}, terminating).status == 400


def test_job_and_task_wire_defaults():
    j = job()
    body = wire.job_to_wire(j, "http://h")
    assert body["priority"] == 0 and body["maxParallelTasks"] == -1 and body["onAllTasksComplete"] == "noaction"
    assert body["constraints"] == {"maxWallClockTime": wire.MAX_DURATION, "maxTaskRetryCount": 0}
    assert "previousState" not in body
    task = Task(id="t1", job_key="j1", spec={"id": "t1", "commandLine": "x",
                                             "constraints": {"maxWallClockTime": "PT01H00M00S"}})
    tbody = wire.task_to_wire(task, j, "http://h")
    assert tbody["requiredSlots"] == 1 and tbody["executionInfo"] == {"retryCount": 0, "requeueCount": 0}
    assert tbody["constraints"]["maxWallClockTime"] == "PT1H"
    assert tbody["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}


def test_task_counts_count_preparing_as_running():
    j = job()
    for i, state in enumerate([TaskState.ACTIVE, TaskState.PREPARING, TaskState.RUNNING, TaskState.COMPLETED,
                                TaskState.COMPLETED]):
        t = Task(id=f"t{i}", job_key="j1", spec={"id": f"t{i}"}, state=state)
        if state == TaskState.COMPLETED:
            t.execution["result"] = ExecutionResult.SUCCESS if i == 3 else ExecutionResult.FAILURE
        j.tasks[t.id] = t
    counts = wire.task_counts_to_wire(j)
    assert counts["taskCounts"] == {"active": 1, "running": 2, "completed": 2, "succeeded": 1, "failed": 1}
    assert counts["taskSlotCounts"] == counts["taskCounts"]


# ---- scheduler ----

def account_with(pool_spec, **pool_fields):
    account = Account(name="a", root="/nonexistent", max_nodes=3)
    pool = Pool(id="p1", spec=pool_spec, **pool_fields)
    account.pools["p1"] = pool
    return account, pool


def only_node_failed_prep(account, pool):
    """Job j1, whose preparation fails, with one task t; the pool's one node idle, having failed j1's preparation."""
    j = job(jobPreparationTask={"commandLine": "false"})
    j.tasks["t"] = Task(id="t", job_key="j1", spec={"id": "t"})
    account.jobs["j1"] = j
    scheduler.tick(account)
    node = next(iter(pool.nodes.values()))
    node.set_state(NodeState.IDLE)
    node.prep_failed.add("j1")
    return j, node


def test_autoscale_pool_grows_to_the_instances_a_multi_instance_task_needs():
    account, pool = account_with({"enableInterNodeCommunication": True}, enable_auto_scale=True,
                                 auto_scale_formula="$TargetDedicatedNodes = 2;")
    pool.next_evaluation = 0.0   # due (the first run comes an interval after autoscale is enabled)
    j = job()
    j.tasks["mpi"] = Task(id="mpi", job_key="j1", spec={"id": "mpi", "multiInstanceSettings": {"numberOfInstances": 2}})
    account.jobs["j1"] = j
    assert pending_instances(account, pool) == 2
    actions = scheduler.tick(account)
    assert [type(a) for a in actions] == [scheduler.Provision, scheduler.Provision]
    assert pool.target_dedicated == 2 and pool.allocation_state == "resizing"
    assert "$TargetDedicatedNodes=2;" in pool.auto_scale_run["results"]
    ips = {n.ip for n in pool.nodes.values()}
    assert ips == {"127.0.0.2", "127.0.0.3"}
    for node in pool.nodes.values():
        node.set_state(NodeState.IDLE)
    actions = scheduler.tick(account)
    assert [type(a) for a in actions] == [scheduler.RunTask]
    assert j.tasks["mpi"].state == "running" and len(j.tasks["mpi"].node_ids) == 2


def test_multi_instance_task_is_never_placed_without_inter_node_communication():
    account, pool = account_with({}, target_dedicated=2)
    j = job()
    j.tasks["mpi"] = Task(id="mpi", job_key="j1", spec={"id": "mpi", "multiInstanceSettings": {"numberOfInstances": 2}})
    account.jobs["j1"] = j
    scheduler.tick(account)
    for node in pool.nodes.values():
        node.set_state(NodeState.IDLE)
    assert [a for a in scheduler.tick(account) if isinstance(a, scheduler.RunTask)] == []
    assert j.tasks["mpi"].state == "active"


def test_nodes_that_failed_the_job_preparation_are_not_used_for_that_job():
    account, pool = account_with({}, target_dedicated=1)
    j, node = only_node_failed_prep(account, pool)
    assert [a for a in scheduler.tick(account) if isinstance(a, (scheduler.RunTask, scheduler.Provision))] == []
    node.prep_failed.clear()
    actions = scheduler.tick(account)
    assert [type(a) for a in actions] == [scheduler.RunTask] and j.tasks["t"].state == "preparing"


def test_job_with_terminatejob_and_no_tasks_stays_active_until_a_task_completes():
    # Recorded: such a job stayed active for 20 s, until deleted (Azure/azure-sdk-assets, python/sdk/batch/
    # azure-batch/tests/recordings/test_batch.pyTestBatchtest_batch_jobs[sync].json).
    account = Account(name="a", root="/x")
    account.jobs["j1"] = j = job(onAllTasksComplete="terminatejob")
    scheduler.tick(account)
    assert (j.state, j.previous_state) == ("active", None)
    j.tasks["t"] = Task(id="t", job_key="j1", spec={"id": "t"}, state=TaskState.COMPLETED)
    scheduler.tick(account)
    assert (j.state, j.previous_state, j.terminate_reason) == ("completed", "active", "AllTasksComplete")


def test_deleted_pool_disappears_once_its_nodes_left():
    account, pool = account_with({}, target_dedicated=2)
    scheduler.tick(account)
    pool.transition(PoolState.DELETING)
    scheduler.tick(account)
    assert all(n.state == "leavingpool" for n in pool.nodes.values())
    for node in pool.nodes.values():
        node.leaving_since -= 1
    scheduler.tick(account)
    assert not pool.nodes and account.pools["p1"].state == "deleting"   # shown deleting for a while, as recorded
    pool.state_time -= timedelta(seconds=account.deleting_seconds)
    scheduler.tick(account)
    assert "p1" not in account.pools


def test_autoscale_pool_whose_nodes_all_failed_prep_neither_grows_nor_churns():
    account, pool = account_with({}, enable_auto_scale=True, auto_scale_formula="$TargetDedicatedNodes = 1;")
    pool.next_evaluation = 0.0   # due
    j, node = only_node_failed_prep(account, pool)
    node.idle_since -= 60
    for _ in range(5):
        assert scheduler.tick(account) == []
    assert list(pool.nodes) == [node.id] and node.state == "idle" and j.tasks["t"].state == "active"


def test_dependent_tasks_wait_for_successful_dependencies():
    j = job(usesTaskDependencies=True)
    for task_id in ("1", "2", "a"):
        j.tasks[task_id] = Task(id=task_id, job_key="j1", spec={"id": task_id})
    later = Task(id="b", job_key="j1", spec={"id": "b", "dependsOn": {"taskIds": ["a"],
                                                                      "taskIdRanges": [{"start": 1, "end": 2}]}})
    assert not dependencies_met(j, later)
    for task in j.tasks.values():
        task.state, task.execution["result"] = TaskState.COMPLETED, ExecutionResult.SUCCESS
    assert dependencies_met(j, later)
    j.tasks["2"].execution["result"] = ExecutionResult.FAILURE
    assert not dependencies_met(j, later)


def test_states_render_as_their_lowercase_wire_strings():
    for member in (NodeState.LEAVING_POOL, TaskState.COMPLETED, PoolState.DELETING, ExecutionResult.SUCCESS):
        assert member == member.value and str(member) == member.value and f"{member}" == member.value
        assert f"{member:>12}" == f"{member.value:>12}"
        assert json.dumps({"state": member, member: 1}) == json.dumps({"state": member.value, member.value: 1})
        assert {member.value: "found"}.get(member) == "found" and {member: "found"}.get(member.value) == "found"
    assert NodeState.LEAVING_POOL.value == "leavingpool"


def test_an_entity_records_its_previous_state_and_a_new_etag():
    task = Task(id="t", job_key="j", spec={"id": "t"})
    etag, state_time = task.etag, task.state_time
    task.transition(TaskState.RUNNING)
    assert (task.state, task.previous_state, task.previous_state_time) == (TaskState.RUNNING, TaskState.ACTIVE,
                                                                             state_time)
    assert task.etag != etag
    etag, state_time = task.etag, task.state_time
    task.transition(TaskState.RUNNING)    # no change of state: only a new ETag
    assert (task.previous_state, task.state_time) == (TaskState.ACTIVE, state_time) and task.etag != etag
    body = wire.task_to_wire(task, Job(id="j", spec={"id": "j", "poolInfo": {"poolId": "p"}}), "http://h")
    sent = json.loads(json.dumps(body))
    assert (sent["state"], sent["previousState"]) == ("running", "active")
