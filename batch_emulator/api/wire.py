"""Render state objects as the JSON the service returns, with the defaults a real GET fills in."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from email.utils import format_datetime
from typing import Any

import isodate

from ..service.errors import BatchServiceError, ResizeError
from ..service.node_users import inbound_endpoints
from ..service.state import Job, Node, Pool, Task, iso, task_counts
from ..service.states import AllocationState, NodeState
from ..service.validation import parse_duration

MAX_DURATION = "P10675199DT2H48M5.4775807S"   # .NET TimeSpan.MaxValue: the service's "unlimited"
NODE_AGENT_VERSION = "1.12.20"

# GET /supportedimages. Ubuntu 20.04 is left out: Batch retired it on 2025-04-23 and, as with
# earlier retirements (Azure/Batch#61), retired SKUs stop being listed. 24.04 has no announced
# Batch end of life, so batchSupportEndOfLife is absent (the service returned null, Azure/Batch#178).
SUPPORTED_IMAGES: list[dict[str, Any]] = [
    # Microsoft's HPC image for InfiniBand sizes (drivers, HPC-X and other MPIs as modules). Its capabilities are
    # the 2204 entry's (Azure/Batch#178); the 2404 entry itself was not seen (batch-facts §24): inferred.
    {"nodeAgentSKUId": "batch.node.ubuntu 24.04",
     "imageReference": {"publisher": "microsoft-dsvm", "offer": "ubuntu-hpc", "sku": "2404", "version": "latest"},
     "osType": "linux", "capabilities": ["DockerCompatible", "SupportsRDMAOnly", "Generation2VMImage"],
     "verificationType": "verified"},
    {"nodeAgentSKUId": "batch.node.ubuntu 22.04",
     "imageReference": {"publisher": "microsoft-dsvm", "offer": "ubuntu-hpc", "sku": "2204", "version": "latest"},
     "osType": "linux", "capabilities": ["DockerCompatible", "SupportsRDMAOnly", "Generation2VMImage"],
     "batchSupportEndOfLife": "2027-06-30T00:00:00Z", "verificationType": "verified"},
    {"nodeAgentSKUId": "batch.node.ubuntu 24.04",
     "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
     "osType": "linux", "capabilities": ["Generation2VMImage"], "verificationType": "verified"},
    {"nodeAgentSKUId": "batch.node.ubuntu 24.04",
     "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server-gen1",
                        "version": "latest"},
     "osType": "linux", "verificationType": "verified"},
    {"nodeAgentSKUId": "batch.node.ubuntu 22.04",
     "imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts",
                        "version": "latest"},
     "osType": "linux", "batchSupportEndOfLife": "2027-06-30T00:00:00Z", "verificationType": "verified"},
    {"nodeAgentSKUId": "batch.node.ubuntu 22.04",
     "imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                        "version": "latest"},
     "osType": "linux", "capabilities": ["Generation2VMImage"], "batchSupportEndOfLife": "2027-06-30T00:00:00Z",
     "verificationType": "verified"},
]

NODE_STATES = ("creating", "idle", "offline", "preempted", "rebooting", "reimaging", "running", "starting",
               "startTaskFailed", "leavingPool", "unknown", "unusable", "waitingForStartTask", "deallocated",
               "deallocating", "upgradingOS")
# Node counts name some states in camelCase; the others as a node's state does.
COUNTED_AS = {NodeState.START_TASK_FAILED: "startTaskFailed", NodeState.LEAVING_POOL: "leavingPool",
              NodeState.WAITING_FOR_START_TASK: "waitingForStartTask", NodeState.UPGRADING_OS: "upgradingOS"}
DEFAULT_USER = {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}


def rfc1123(dt: datetime) -> str:
    return format_datetime(dt, usegmt=True)


def norm_duration(text: str | None) -> str | None:
    """Echo durations the way the service does (PT05M00S -> PT5M, P3Y6M4DT12H30M5S -> P1279DT12H30M5S: years
    and months in days); keep the 'unlimited' value as is."""
    if text is None or text == MAX_DURATION:
        return text
    try:
        shown: str = isodate.duration_isoformat(parse_duration(text, "duration"))   # isodate has no type hints
    except BatchServiceError:
        return text
    return shown


def pool_spec_defaults(out: dict[str, Any]) -> dict[str, Any]:
    """Fill in what a pool GET (or a job's autoPoolSpecification.pool) shows when the add did not say it
    (Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/test_batch.pyTestBatchtest_batch_*
    [sync].json: create_pools, scale_pools, update_pools, jobs). Secrets are never returned."""
    vm = out.get("virtualMachineConfiguration") or {}
    image = vm.get("imageReference") or {}
    if "virtualMachineImageId" not in image:
        image.setdefault("version", "latest")
    image.pop("exactVersion", None)       # a node's virtualMachineInfo shows it, the pool does not
    _disk_defaults(vm)
    network = out.get("networkConfiguration")
    if network is not None:
        network.setdefault("dynamicVNetAssignmentScope", "none")
        network.setdefault("enableAcceleratedNetworking", False)
        for nat in (network.get("endpointConfiguration") or {}).get("inboundNATPools") or []:
            for rule in nat.get("networkSecurityGroupRules") or []:   # recorded (test_batch_network_configuration)
                rule.setdefault("sourcePortRanges", ["*"])
    _drop_mount_secrets(out)
    for account in out.get("userAccounts") or []:
        account.pop("password", None)
        account.setdefault("elevationLevel", "nonadmin")
        linux = account.get("linuxUserConfiguration")
        if linux:
            linux.pop("sshPrivateKey", None)
    policy = out.setdefault("taskSchedulingPolicy", {})
    # "Spread"/"Pack" capitalised, unlike the other enums, as the service writes them.
    policy["nodeFillType"] = "Pack" if str(policy.get("nodeFillType", "")).lower() == "pack" else "Spread"
    policy.setdefault("jobDefaultOrder", "none")
    out["enableInterNodeCommunication"] = bool(out.get("enableInterNodeCommunication", False))
    out["taskSlotsPerNode"] = int(out.get("taskSlotsPerNode") or 1)
    if isinstance(out.get("vmSize"), str):   # recorded (java pooltests, .NET): "STANDARD_D1_V2" reads back lowercase
        out["vmSize"] = out["vmSize"].lower()
    out["resizeTimeout"] = norm_duration(out.get("resizeTimeout")) or "PT15M"
    if out.get("autoScaleEvaluationInterval"):
        out["autoScaleEvaluationInterval"] = norm_duration(out["autoScaleEvaluationInterval"])
    if out.get("startTask"):
        start = out["startTask"]
        start.setdefault("waitForSuccess", True)
        start.setdefault("maxTaskRetryCount", 0)
        start.setdefault("userIdentity", copy.deepcopy(DEFAULT_USER))
    return out


def _disk_defaults(vm: dict[str, Any]) -> None:
    """Data and OS disk defaults (recorded: test_batch_create_pools, test_batch_create_pool_with_osdisk*); a managed
    disk holds its own storageAccountType; the OS disk's caching comes back Pascal-cased, unlike a data disk's."""
    for disk in vm.get("dataDisks") or []:
        disk.setdefault("caching", "none")
        if isinstance(disk.get("managedDisk"), dict):
            disk["managedDisk"].setdefault("storageAccountType", "standard_lrs")
        else:
            disk.setdefault("storageAccountType", "standard_lrs")
    os_disk = vm.get("osDisk")
    if isinstance(os_disk, dict):
        os_disk.setdefault("ephemeralOSDiskSettings", {})
        if isinstance(os_disk.get("managedDisk"), dict):
            os_disk["managedDisk"].setdefault("storageAccountType", "standard_lrs")
        # Pascal-cased, "None" when not given (recorded: js should_create_a_pool_with_confidential_vm).
        os_disk["caching"] = {"readwrite": "ReadWrite", "readonly": "ReadOnly"}.get(
            str(os_disk.get("caching", "")).lower(), "None")
    security = vm.get("securityProfile")
    if isinstance(security, dict) and isinstance(security.get("securityType"), str):
        security["securityType"] = security["securityType"].lower()   # recorded: "confidentialVM" reads back lower


def _drop_mount_secrets(out: dict[str, Any]) -> None:
    """A mount's key, SAS or password never comes back (recorded: test_batch_create_pool_with_blobfuse_mount)."""
    for mount in out.get("mountConfiguration") or []:
        for config in mount.values():
            if isinstance(config, dict):
                for secret in ("accountKey", "sasKey", "password"):
                    config.pop(secret, None)


def _drop_none(d: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in d.items() if v is not None}


def pool_to_wire(pool: Pool, base: str) -> dict[str, Any]:
    out = copy.deepcopy(pool.spec)
    for key in ("targetDedicatedNodes", "targetLowPriorityNodes", "enableAutoScale", "autoScaleFormula",
                "autoScaleEvaluationInterval", "resizeTimeout"):
        out.pop(key, None)
    nodes = [n for n in pool.nodes.values()]
    out.update({
        "url": f"{base}/pools/{pool.id}", "eTag": pool.etag, "lastModified": iso(pool.last_modified),
        "creationTime": iso(pool.creation_time), "state": pool.state, "stateTransitionTime": iso(pool.state_time),
        "allocationState": pool.allocation_state,
        "allocationStateTransitionTime": iso(pool.allocation_state_time),
        "currentDedicatedNodes": sum(1 for n in nodes if n.dedicated),
        "currentLowPriorityNodes": sum(1 for n in nodes if not n.dedicated),
        "targetDedicatedNodes": pool.target_dedicated, "targetLowPriorityNodes": pool.target_low_priority,
        "enableAutoScale": pool.enable_auto_scale, "resizeTimeout": pool.resize_timeout,
    })
    if pool.resize_errors and pool.allocation_state == AllocationState.STEADY:   # only when steady (the spec)
        out["resizeErrors"] = [resize_error_to_wire(e) for e in pool.resize_errors]
    if pool.enable_auto_scale:
        out["autoScaleFormula"] = pool.auto_scale_formula
        out["autoScaleEvaluationInterval"] = pool.auto_scale_interval or "PT15M"
        if pool.auto_scale_run:
            out["autoScaleRun"] = pool.auto_scale_run
    return pool_spec_defaults(out)


def resize_error_to_wire(error: ResizeError) -> dict[str, Any]:
    """A ResizeError: values are NameValuePairs ({name, value}, unlike a BatchError's {key, value}) and,
    like the service's quota errors, absent when there are none."""
    out: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.values:
        out["values"] = [{"name": name, "value": value} for name, value in error.values]
    return out


def node_to_wire(node: Node, pool: Pool, base: str) -> dict[str, Any]:
    image = ((pool.spec.get("virtualMachineConfiguration") or {}).get("imageReference")) or {}
    running = len({(j, t) for (j, t, _s) in node.running})
    out: dict[str, Any] = {
        "id": node.id, "url": f"{base}/pools/{pool.id}/nodes/{node.id}", "state": node.state,
        "schedulingState": node.scheduling_state, "stateTransitionTime": iso(node.state_time),
        "lastBootTime": iso(node.boot_time), "allocationTime": iso(node.allocation_time),
        "ipAddress": node.ip, "affinityId": f"TVM:{node.id}", "vmSize": str(pool.spec.get("vmSize") or "").lower(),
        "totalTasksRun": node.total_run, "runningTasksCount": running,
        "runningTaskSlotsCount": node.slots_used(), "totalTasksSucceeded": node.total_succeeded,
        "isDedicated": node.dedicated, "recentTasks": list(node.recent_tasks[-10:]) or None,
        "nodeAgentInfo": {"version": NODE_AGENT_VERSION, "lastUpdateTime": iso(node.boot_time)},
        "virtualMachineInfo": {"imageReference": _exact(copy.deepcopy(image))},
    }
    if out["recentTasks"] is None:    # a node that ran no task shows none (every recorded idle node)
        del out["recentTasks"]
    # Only a pool that declares inboundNATPools shows endpoints on its nodes: the recorded nodes of pools without
    # (.NET, api-version 2025-06-01) have no endpointConfiguration; remoteloginsettings answers all the same.
    if ((pool.spec.get("networkConfiguration") or {}).get("endpointConfiguration") or {}).get("inboundNATPools"):
        out["endpointConfiguration"] = {"inboundEndpoints": inbound_endpoints(pool, node)}
    if pool.spec.get("startTask"):
        out["startTask"] = copy.deepcopy(pool.spec["startTask"])
    if node.start_task_info:
        out["startTaskInfo"] = copy.deepcopy(node.start_task_info)
    return out


def _exact(image: dict[str, Any]) -> dict[str, Any]:
    """A node's image with the version it runs (the pool's shows none)."""
    if "virtualMachineImageId" not in image:
        image.setdefault("version", "latest")
        image.setdefault("exactVersion", "24.04.202501010" if "24_04" in str(image.get("offer")) else "1.0.0")
    return image


def node_counts_to_wire(pool: Pool) -> dict[str, Any]:
    def counts(dedicated: bool) -> dict[str, int]:
        c = {name: 0 for name in NODE_STATES}
        for node in pool.nodes.values():
            if node.dedicated == dedicated:
                key = COUNTED_AS.get(node.state, str(node.state))
                c[key] = c.get(key, 0) + 1
        c["total"] = sum(c.values())
        return c
    return {"poolId": pool.id, "dedicated": counts(True), "lowPriority": counts(False)}


def _task_defaults(spec: dict[str, Any], default_retries: int) -> dict[str, Any]:
    constraints = spec.setdefault("constraints", {})
    constraints["maxWallClockTime"] = norm_duration(constraints.get("maxWallClockTime")) or MAX_DURATION
    constraints["retentionTime"] = norm_duration(constraints.get("retentionTime")) or "P7D"
    constraints.setdefault("maxTaskRetryCount", default_retries)
    spec.setdefault("userIdentity", copy.deepcopy(DEFAULT_USER))
    return spec


def job_to_wire(job: Job, base: str) -> dict[str, Any]:
    out = copy.deepcopy(job.spec)
    constraints = out.setdefault("constraints", {})
    constraints["maxWallClockTime"] = norm_duration(constraints.get("maxWallClockTime")) or MAX_DURATION
    constraints.setdefault("maxTaskRetryCount", 0)
    for key, default in (("priority", 0), ("maxParallelTasks", -1), ("allowTaskPreemption", False),
                         ("usesTaskDependencies", False), ("onAllTasksComplete", "noaction"),
                         ("onTaskFailure", "noaction")):
        out.setdefault(key, default)
    out["onAllTasksComplete"] = str(out["onAllTasksComplete"]).lower()
    out["onTaskFailure"] = str(out["onTaskFailure"]).lower()
    prep = out.get("jobPreparationTask")
    if prep is not None:
        prep.setdefault("id", "jobpreparation")
        prep.setdefault("waitForSuccess", True)
        prep.setdefault("rerunOnNodeRebootAfterSuccess", True)
        _task_defaults(prep, 0)
    release = out.get("jobReleaseTask")
    if release is not None:
        release.setdefault("id", "jobrelease")
        release["maxWallClockTime"] = norm_duration(release.get("maxWallClockTime")) or "PT15M"
        release["retentionTime"] = norm_duration(release.get("retentionTime")) or "P7D"
        release.setdefault("userIdentity", copy.deepcopy(DEFAULT_USER))
    manager = out.get("jobManagerTask")
    if manager is not None:
        _task_defaults(manager, constraints["maxTaskRetryCount"])
        for key, default in (("requiredSlots", 1), ("runExclusive", True), ("allowLowPriorityNode", True),
                             ("killJobOnCompletion", True)):
            manager.setdefault(key, default)
    auto = (out.get("poolInfo") or {}).get("autoPoolSpecification")
    if auto is not None:
        auto.setdefault("keepAlive", False)
        pool = auto.get("pool") or {}
        for key, default in (("targetDedicatedNodes", 0), ("targetLowPriorityNodes", 0), ("enableAutoScale", False)):
            pool.setdefault(key, default)
        pool_spec_defaults(pool)
    out.update(_drop_none({
        "url": f"{base}/jobs/{job.id}", "eTag": job.etag, "lastModified": iso(job.last_modified),
        "creationTime": iso(job.creation_time), "state": job.state, "stateTransitionTime": iso(job.state_time),
        "previousState": job.previous_state, "previousStateTransitionTime": iso(job.previous_state_time),
    }))
    out["executionInfo"] = _drop_none({
        "startTime": iso(job.creation_time), "endTime": iso(job.end_time),
        "poolId": job.pool_id(), "terminateReason": job.terminate_reason,
    })
    return out


def task_to_wire(task: Task, job: Job, base: str) -> dict[str, Any]:
    out = _task_defaults(copy.deepcopy(task.spec), (job.spec.get("constraints") or {}).get("maxTaskRetryCount", 0))
    out.setdefault("requiredSlots", 1)
    if isinstance(out.get("containerSettings"), dict):   # recorded (.NET AddTask): the default working directory
        out["containerSettings"].setdefault("workingDirectory", "taskWorkingDirectory")
    if out.get("multiInstanceSettings") is not None:
        out["multiInstanceSettings"].setdefault("numberOfInstances", 1)
    out.update(_drop_none({
        "url": f"{base}/jobs/{job.id}/tasks/{task.id}", "eTag": task.etag, "lastModified": iso(task.last_modified),
        "creationTime": iso(task.creation_time), "state": task.state, "stateTransitionTime": iso(task.state_time),
        "previousState": task.previous_state, "previousStateTransitionTime": iso(task.previous_state_time),
    }))
    out["executionInfo"] = copy.deepcopy(task.execution)
    if task.node_info:
        out["nodeInfo"] = copy.deepcopy(task.node_info)
    return out


def task_counts_to_wire(job: Job) -> dict[str, dict[str, int]]:
    counts, slots = task_counts(job)
    return {"taskCounts": counts, "taskSlotCounts": slots}


def prep_status_to_wire(record: Mapping[str, Any], base: str) -> dict[str, Any]:
    return {"poolId": record["poolId"], "nodeId": record["nodeId"],
            "nodeUrl": f"{base}/pools/{record['poolId']}/nodes/{record['nodeId']}",
            "jobPreparationTaskExecutionInfo": copy.deepcopy(record["info"])}

