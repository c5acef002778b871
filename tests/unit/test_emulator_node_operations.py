"""The node operations' rules (service/nodes.py): which node states allow what and the 409 codes of the others,
the options and what the running tasks do under each, scheduling on and off, the node's extensions, and a pool
that stays steady while its nodes are offline or reboot. The runtime is the emulator's own Executor, not started:
a restart it begins waits while the node still runs a task."""

import pytest

from batch_emulator.runtime.executor import Executor
from batch_emulator.service import jobs, nodes, pools, scheduler, tasks
from batch_emulator.service.conditions import Conditions
from batch_emulator.service.errors import BatchServiceError
from batch_emulator.service.state import Account
from batch_emulator.service.states import NodeState, SchedulingState, StopReason

VM = {"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
      "nodeAgentSKUId": "batch.node.ubuntu 24.04"}
SECRET = {"name": "secretext", "type": "KeyVaultForLinux", "publisher": "Microsoft.Azure.KeyVault",
          "typeHandlerVersion": "1.0", "settings": {"a": "b"}, "protectedSettings": {"key": "do not show"}}


@pytest.fixture
def world(tmp_path):
    """(account, runtime, node): a pool p1 of one node, idle, running a task t1 of job j1 (so a restart waits)."""
    account = Account(name="a", root=str(tmp_path))
    runtime = Executor(account)
    pools.create_pool(account, {"id": "p1", "vmSize": "standard_d2s_v5", "targetDedicatedNodes": 1,
                                "virtualMachineConfiguration": {**VM, "extensions": [SECRET]}})
    scheduler.tick(account)
    node = next(iter(account.pools["p1"].nodes.values()))
    node.set_state(NodeState.IDLE)
    jobs.add_job(account, {"id": "j1", "poolInfo": {"poolId": "p1"}})
    tasks.create_task(account, "j1", {"id": "t1", "commandLine": "/bin/true"})
    node.running[("j1", "t1", 0)] = 1
    account.jobs["j1"].tasks["t1"].busy = True
    yield account, runtime, node
    runtime.stopping.set()   # the restarts it began end (its scheduler thread never started: no stop())
    account.wake()
    for thread in list(runtime.threads):
        thread.join(5)
    assert not runtime.threads


def refused(func, *args):
    with pytest.raises(BatchServiceError) as caught:
        func(*args)
    return caught.value.status, caught.value.code


def reboot(account, runtime, node, body=None):
    nodes.reboot_node(account, runtime, "p1", node.id, body or {})


@pytest.mark.parametrize("state, code", [
    (NodeState.CREATING, "NodeBeingCreated"), (NodeState.STARTING, "NodeBeingStarted"),
    (NodeState.WAITING_FOR_START_TASK, "NodeBeingStarted"), (NodeState.REBOOTING, "NodeBeingRebooted"),
    (NodeState.REIMAGING, "NodeBeingReimaged"), (NodeState.LEAVING_POOL, "OperationInvalidForCurrentState"),
    (NodeState.DEALLOCATING, "OperationInvalidForCurrentState"),
    (NodeState.DEALLOCATED, "OperationInvalidForCurrentState")])
def test_reboot_reimage_and_deallocate_refuse_a_node_that_is_not_up(world, state, code):
    account, runtime, node = world
    node.state = state
    for operation in (nodes.reboot_node, nodes.reimage_node, nodes.deallocate_node):
        assert refused(operation, account, runtime, "p1", node.id, {}) == (409, code), operation
    assert node.state == state


def test_an_unusable_node_may_be_rebooted_or_reimaged_but_not_deallocated(world):
    account, runtime, node = world
    node.state = NodeState.UNUSABLE
    assert refused(nodes.deallocate_node, account, runtime, "p1", node.id, {}) == (409, "NodeStateUnusable")
    nodes.reimage_node(account, runtime, "p1", node.id, {})
    assert node.state == NodeState.REIMAGING and node.restarted


@pytest.mark.parametrize("state", [NodeState.START_TASK_FAILED, NodeState.OFFLINE, NodeState.RUNNING])
def test_a_reboot_takes_a_node_that_is_up(world, state):
    account, runtime, node = world
    node.state = state
    reboot(account, runtime, node)
    assert node.state == NodeState.REBOOTING


@pytest.mark.parametrize("state, code", [(NodeState.IDLE, "OperationInvalidForCurrentState"),
                                         (NodeState.REBOOTING, "NodeBeingRebooted"),
                                         (NodeState.DEALLOCATING, "OperationInvalidForCurrentState")])
def test_only_a_deallocated_node_starts(world, state, code):
    account, runtime, node = world
    node.state = state
    assert refused(nodes.start_node, account, runtime, "p1", node.id) == (409, code)


@pytest.mark.parametrize("body, reason", [({}, StopReason.REQUEUE), ({"nodeRebootOption": "Terminate"},
                                                                     StopReason.TERMINATE),
                                          ({"nodeRebootOption": "taskcompletion"}, None),
                                          ({"nodeRebootOption": "retaineddata"}, None)])
def test_the_running_tasks_stop_as_the_option_says(world, body, reason):
    account, runtime, node = world
    reboot(account, runtime, node, body)
    assert account.jobs["j1"].tasks["t1"].stop_reason == reason
    assert node.state == NodeState.REBOOTING   # until its task has stopped or ended


def test_an_unknown_option_or_a_body_that_is_no_object_is_refused(world):
    account, runtime, node = world
    assert refused(nodes.reboot_node, account, runtime, "p1", node.id, {"nodeRebootOption": "now"}) == \
        (400, "InvalidPropertyValue")
    assert refused(nodes.disable_node_scheduling, account, "p1", node.id,
                   {"nodeDisableSchedulingOption": "retaineddata"}) == (400, "InvalidPropertyValue")
    assert refused(nodes.deallocate_node, account, runtime, "p1", node.id, ["requeue"]) == (400, "InvalidRequestBody")
    assert node.state == NodeState.IDLE


def test_a_deleting_pool_and_an_unknown_node_are_refused(world):
    account, runtime, node = world
    assert refused(nodes.reboot_node, account, runtime, "p1", "tvmps_x_d", {}) == (404, "NodeNotFound")
    pools.delete_pool(account, "p1", Conditions())
    assert refused(nodes.reboot_node, account, runtime, "p1", node.id, {}) == (409, "PoolBeingDeleted")
    assert refused(nodes.enable_node_scheduling, account, "p1", node.id) == (409, "PoolBeingDeleted")


def test_a_node_with_scheduling_disabled_takes_no_task_and_shows_offline_where_it_would_be_idle(world):
    account, _runtime, node = world
    node.set_state(NodeState.RUNNING)
    nodes.disable_node_scheduling(account, "p1", node.id, {"nodeDisableSchedulingOption": "taskcompletion"})
    assert node.scheduling_state == SchedulingState.DISABLED and node.state == NodeState.RUNNING
    assert not node.usable() and account.jobs["j1"].tasks["t1"].stop_reason is None
    scheduler.release_nodes(account, "j1", account.jobs["j1"].tasks["t1"])   # the task ended
    assert node.state == NodeState.OFFLINE
    assert refused(nodes.disable_node_scheduling, account, "p1", node.id, {}) == \
        (409, "NodeAlreadyInTargetSchedulingState")
    nodes.enable_node_scheduling(account, "p1", node.id)
    assert node.state == NodeState.IDLE and node.usable()
    assert refused(nodes.enable_node_scheduling, account, "p1", node.id) == \
        (409, "NodeAlreadyInTargetSchedulingState")


def test_disabling_an_idle_node_makes_it_offline_at_once_and_requeues_by_default(world):
    account, _runtime, node = world
    nodes.disable_node_scheduling(account, "p1", node.id, {})
    assert node.state == NodeState.OFFLINE
    assert account.jobs["j1"].tasks["t1"].stop_reason == StopReason.REQUEUE


def test_a_pool_stays_steady_while_its_node_is_offline_or_reboots(world):
    account, runtime, node = world
    pool = account.pools["p1"]
    scheduler.tick(account)
    assert pool.allocation_state == "steady"
    nodes.disable_node_scheduling(account, "p1", node.id, {})
    scheduler.tick(account)
    assert (node.state, pool.allocation_state) == (NodeState.OFFLINE, "steady")
    reboot(account, runtime, node)
    scheduler.tick(account)
    assert (node.state, pool.allocation_state) == (NodeState.REBOOTING, "steady")


def test_the_extensions_are_the_pools_then_batchs_agent_without_protected_settings(world):
    account, _runtime, node = world
    listed = nodes.node_extensions(account, "p1", node.id)
    assert [e["vmExtension"]["name"] for e in listed] == ["secretext", "batchNodeExtension"]
    assert "protectedSettings" not in listed[0]["vmExtension"] and listed[0]["vmExtension"]["settings"] == {"a": "b"}
    assert listed[0]["provisioningState"] == "Succeeded"
    assert listed[0]["instanceView"]["name"] == "secretext"
    node.state = NodeState.CREATING   # as PY-extensions recorded a node being created
    creating = nodes.node_extension(account, "p1", node.id, "BATCHNODEEXTENSION")
    assert (creating["provisioningState"], creating["instanceView"]) == ("Creating", {})
    with pytest.raises(BatchServiceError) as caught:
        nodes.node_extension(account, "p1", node.id, "nosuch")
    assert (caught.value.status, caught.value.code) == (404, "ResourceNotFound")
