"""The node operations of the REST API: reboot, reimage, deallocate, start, disable and enable scheduling (each run
through changes.change), and the node's extensions (reads).

A reboot, reimage or deallocate tells the node's running tasks how to stop (the request's option: requeue, they go
back to the queue; terminate, they complete with TaskEnded; taskcompletion or retaineddata, they finish), shows the
node's new state (rebooting, reimaging, deallocating) and hands the rest to the runtime (service.work.Runtime
restart_node): once the tasks have stopped or ended, the node goes down, then comes back through starting to idle,
or stays deallocated until started. Disabling scheduling needs no runtime: the node takes no new task, its running
tasks follow the option, and it shows offline where it would be idle.

Which states allow what: the REST reference (2025-06-01) allows reboot, reimage and deallocate "only if idle or
running", start "only if deallocated", disable only when scheduling is enabled and enable only when it is disabled.
The refusals are 409 with the codes of the Batch error-code list (NodeBeingCreated, NodeBeingStarted,
NodeBeingRebooted, NodeBeingReimaged, NodeStateUnusable, NodeAlreadyInTargetSchedulingState), else
OperationInvalidForCurrentState.
"""

from __future__ import annotations

import copy
from typing import Any

from .changes import change, read
from .errors import conflict, invalid_property, not_found
from .state import Account, Node, get_node, get_pool
from .states import DeallocationOption, NodeAction, NodeState, SchedulingState, StopReason
from .validation import require_object
from .work import Runtime

# [inferred] Reboot and reimage also take a node whose start task failed, an unusable one and an offline one
# (scheduling disabled, nothing running): those are the nodes a reboot or reimage is for (a fixed start task runs
# again), although the REST reference names only idle and running. Deallocate keeps to the reference.
RESTARTABLE = frozenset({NodeState.IDLE, NodeState.RUNNING, NodeState.OFFLINE, NodeState.START_TASK_FAILED,
                         NodeState.UNUSABLE})
DEALLOCATABLE = frozenset({NodeState.IDLE, NodeState.RUNNING, NodeState.OFFLINE})
STARTABLE = frozenset({NodeState.DEALLOCATED})
# Why a node in these states refuses an operation (the Batch error-code list); any other state answers
# OperationInvalidForCurrentState.
BUSY = {NodeState.CREATING: "NodeBeingCreated", NodeState.STARTING: "NodeBeingStarted",
        NodeState.WAITING_FOR_START_TASK: "NodeBeingStarted", NodeState.REBOOTING: "NodeBeingRebooted",
        NodeState.REIMAGING: "NodeBeingReimaged", NodeState.UNUSABLE: "NodeStateUnusable"}
RESTART_OPTIONS = tuple(option.value for option in DeallocationOption)   # requeue, terminate, taskcompletion, ...
SCHEDULING_OPTIONS = ("requeue", "terminate", "taskcompletion")
# What a running task does under each option; taskcompletion and retaineddata: it runs to its end.
STOPS = {DeallocationOption.REQUEUE: StopReason.REQUEUE, DeallocationOption.TERMINATE: StopReason.TERMINATE}
DEFAULT_OPTION = DeallocationOption.REQUEUE   # every option's default, as the REST reference says

# Batch's own agent extension, on every node after the pool's own (Azure/azure-sdk-assets, python/sdk/batch/
# azure-batch/tests/recordings/test_batch.pyTestBatchtest_batch_compute_node_extensions[sync].json).
AGENT_EXTENSION = {"name": "batchNodeExtension", "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
                   "typeHandlerVersion": "2.0", "autoUpgradeMinorVersion": True}
# What the extension's instance view says once provisioned (the REST reference's example, 2024-02-01).
PROVISIONED_MESSAGES = {"batchNodeExtension": "Enable succeeded: Enabling and starting agent and controller"}
PROVISIONED_MESSAGE = "ExtensionOperation:enable. Status:Success"
# The node's extensions are still being provisioned while it is being made or started anew.
PROVISIONING_STATES = frozenset({NodeState.CREATING, NodeState.STARTING, NodeState.REIMAGING})
SECRET_SETTINGS = ("protectedSettings", "protectedSettingsFromKeyVault")   # never sent back


def _option(raw: object, name: str, allowed: tuple[str, ...]) -> DeallocationOption:
    """The request's option (its default: requeue); 400 InvalidPropertyValue for a value not in ``allowed``."""
    value = require_object(raw).get(name)
    if value is None:
        return DEFAULT_OPTION
    if str(value).lower() not in allowed:
        raise invalid_property(name, value, f"Allowed values are: {', '.join(allowed)}.")
    return DeallocationOption(str(value).lower())


def _node(account: Account, pool_id: str, node_id: str) -> Node:
    """The node an operation changes (lock held): 404 PoolNotFound / NodeNotFound, 409 PoolBeingDeleted."""
    get_pool(account, pool_id, allow_deleting=False)
    return get_node(account, pool_id, node_id)


def _require(node: Node, allowed: frozenset[NodeState]) -> None:
    if node.state not in allowed:
        raise conflict(BUSY.get(node.state, "OperationInvalidForCurrentState"))


def _stop_running_tasks(account: Account, node: Node, option: DeallocationOption) -> None:
    """The tasks running on ``node`` stop as ``option`` says (their runs see stop_reason and end)."""
    reason = STOPS.get(option)
    if reason is None:
        return   # taskcompletion, retaineddata: they run to their end
    for job_key, task_key, _subtask in list(node.running):
        job = account.jobs.get(job_key)
        task = job.tasks.get(task_key) if job is not None else None
        if task is not None and task.stop_reason is None:
            task.stop_reason = reason


def _take_down(account: Account, runtime: Runtime, pool_id: str, node_id: str, raw: object, option_name: str,
               allowed: frozenset[NodeState], state: NodeState, action: NodeAction) -> None:
    option = _option(raw, option_name, RESTART_OPTIONS)

    def take_down() -> None:
        node = _node(account, pool_id, node_id)
        _require(node, allowed)
        _stop_running_tasks(account, node, option)
        node.set_state(state)
        node.restarted = True
        runtime.restart_node(node, action)
    change(account, take_down)


def reboot_node(account: Account, runtime: Runtime, pool_id: str, node_id: str, raw: object) -> None:
    """rebooting, then (once its tasks have stopped or ended) starting and idle: its processes go, its disk stays."""
    _take_down(account, runtime, pool_id, node_id, raw, "nodeRebootOption", RESTARTABLE, NodeState.REBOOTING,
               NodeAction.REBOOT)


def reimage_node(account: Account, runtime: Runtime, pool_id: str, node_id: str, raw: object) -> None:
    """reimaging, then starting and idle: its disk goes too (its files, what was installed, its job preparations)."""
    _take_down(account, runtime, pool_id, node_id, raw, "nodeReimageOption", RESTARTABLE, NodeState.REIMAGING,
               NodeAction.REIMAGE)


def deallocate_node(account: Account, runtime: Runtime, pool_id: str, node_id: str, raw: object) -> None:
    """deallocating, then deallocated: it runs nothing until started."""
    _take_down(account, runtime, pool_id, node_id, raw, "nodeDeallocateOption", DEALLOCATABLE,
               NodeState.DEALLOCATING, NodeAction.DEALLOCATE)


def start_node(account: Account, runtime: Runtime, pool_id: str, node_id: str) -> None:
    """A deallocated node boots again: starting, then idle (its start task runs again)."""
    def start() -> None:
        node = _node(account, pool_id, node_id)
        _require(node, STARTABLE)
        node.set_state(NodeState.STARTING)
        runtime.restart_node(node, NodeAction.START)
    change(account, start)


def disable_node_scheduling(account: Account, pool_id: str, node_id: str, raw: object) -> None:
    """The node takes no new task; its running tasks follow the option (requeue, terminate, taskcompletion)."""
    option = _option(raw, "nodeDisableSchedulingOption", SCHEDULING_OPTIONS)

    def disable() -> None:
        node = _node(account, pool_id, node_id)
        if node.scheduling_state == SchedulingState.DISABLED:
            raise conflict("NodeAlreadyInTargetSchedulingState")
        node.scheduling_state = SchedulingState.DISABLED
        _stop_running_tasks(account, node, option)
        if node.state == NodeState.IDLE:
            node.set_state(NodeState.IDLE)   # shows offline now (Node.set_state)
    change(account, disable)


def enable_node_scheduling(account: Account, pool_id: str, node_id: str) -> None:
    """The node takes tasks again: an offline node is idle."""
    def enable() -> None:
        node = _node(account, pool_id, node_id)
        if node.scheduling_state == SchedulingState.ENABLED:
            raise conflict("NodeAlreadyInTargetSchedulingState")
        node.scheduling_state = SchedulingState.ENABLED
        if node.state == NodeState.OFFLINE:
            node.set_state(NodeState.IDLE)
    change(account, enable)


# ---- extensions (reads) ----

def _extension_view(extension: dict[str, Any], provisioned: bool) -> dict[str, Any]:
    """A BatchNodeVMExtension: the extension as declared (no protected settings), its provisioning state and
    instance view."""
    declared = {k: copy.deepcopy(v) for k, v in extension.items() if k not in SECRET_SETTINGS}
    declared.setdefault("enableAutomaticUpgrade", False)   # the default the service fills in (recorded)
    if not provisioned:
        return {"provisioningState": "Creating", "instanceView": {}, "vmExtension": declared}
    name = str(extension.get("name"))
    status = {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
              "message": PROVISIONED_MESSAGES.get(name, PROVISIONED_MESSAGE)}
    return {"provisioningState": "Succeeded", "instanceView": {"name": name, "statuses": [status]},
            "vmExtension": declared}


def node_extensions(account: Account, pool_id: str, node_id: str) -> list[dict[str, Any]]:
    """The extensions the node's pool declares (virtualMachineConfiguration.extensions), then Batch's agent
    extension; emulated nodes run none of them."""
    def query() -> list[dict[str, Any]]:
        pool = get_pool(account, pool_id)
        node = get_node(account, pool_id, node_id)
        declared = (pool.spec.get("virtualMachineConfiguration") or {}).get("extensions") or []
        provisioned = node.state not in PROVISIONING_STATES
        return [_extension_view(e, provisioned) for e in [*declared, AGENT_EXTENSION] if isinstance(e, dict)]
    return read(account, query)


def node_extension(account: Account, pool_id: str, node_id: str, name: str) -> dict[str, Any]:
    """One extension of the node, by name (case-insensitive); 404 ResourceNotFound if the node has none so named
    ([inferred]: the service's code for an unknown extension was not found)."""
    for extension in node_extensions(account, pool_id, node_id):
        if str(extension["vmExtension"].get("name", "")).lower() == name.lower():
            return extension
    raise not_found("ResourceNotFound")
