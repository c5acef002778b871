"""Checks on request bodies, with the service's 400/409 codes. Pure functions, no state changes.

Where the real code is not documented we use 400 InvalidPropertyValue with
PropertyName/PropertyValue/Reason values ([inferred]: the Batch error-code list,
https://learn.microsoft.com/rest/api/batchservice/batch-status-and-error-codes, names the
codes but not which request gets which).
"""

from __future__ import annotations

import posixpath
import re
from datetime import timedelta
from typing import Any

import isodate

from .. import formula as autoscale_formula
from .errors import conflict, invalid_property, missing_property, service_error
from .resource_ids import check_application_packages, check_image_id, check_subnet_id
from .state import Job
from .states import DeallocationOption

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_FORMULA_CHARS = 8192
UPLOAD_CONDITIONS = ("tasksuccess", "taskfailure", "taskcompletion")
DISABLE_OPTIONS = ("requeue", "terminate", "wait")


def require_object(body: object, what: str = "request body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise service_error(400, "InvalidRequestBody", Reason=f"The {what} must be a JSON object.")
    return body


def check_id(value: Any, name: str = "id") -> str:
    if value is None or value == "":
        raise missing_property(name)
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise invalid_property(name, value, "The id can contain any combination of alphanumeric characters "
                                            "including hyphens and underscores, and cannot contain more than 64 "
                                            "characters.")
    return value


# The service counts a year as 365 days and a month as 30: a job PATCHed with maxWallClockTime
# P3Y6M4DT12H30M5S reads back P1279DT12H30M5S (Azure/azure-cli, src/azure-cli/azure/cli/command_modules/batch/
# tests/latest/recordings/test_batch_jobs_and_tasks.yaml).
DAYS_PER_YEAR, DAYS_PER_MONTH = 365, 30


def parse_duration(value: Any, name: str) -> timedelta:
    """Durations arrive as ISO-8601 (the SDK writes PT05M00S style); isodate reads all forms."""
    try:
        parsed = isodate.parse_duration(value)
    except (isodate.ISO8601Error, TypeError, ValueError, AttributeError):
        raise invalid_property(name, value, "The value is not a valid ISO-8601 duration.") from None
    if isinstance(parsed, isodate.Duration):   # years and/or months: fixed lengths, as the service counts them
        days = (int(parsed.years) * DAYS_PER_YEAR + int(parsed.months) * DAYS_PER_MONTH)
        if parsed.years != int(parsed.years) or parsed.months != int(parsed.months):
            raise invalid_property(name, value, "Years and months must be whole numbers.")
        parsed = parsed.tdelta + timedelta(days=days)
    duration: timedelta = parsed   # isodate has no type hints; without years and months it returns a timedelta
    if duration < timedelta(0):
        raise invalid_property(name, value, "The duration must not be negative.")
    return duration


def _check_int(body: dict[str, Any], name: str, low: int | None = None, high: int | None = None,
               code: str = "InvalidPropertyValue") -> int | None:
    """An Int32 property; an integer written as a JSON string ("1", what `az batch pool create
    --target-dedicated-nodes 1` sends) is read as that integer and stored as one."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        value = body[name] = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_property(name, value, "The value must be an integer.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise service_error(400, code, PropertyName=name, PropertyValue=value,
                            Reason=f"The value must be between {low} and {high}.")
    return value


def _check_enum(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    value = body.get(name)
    if value is not None and str(value).lower() not in allowed:
        raise invalid_property(name, value, f"Allowed values are: {', '.join(allowed)}.")


def _check_name_values(items: object, name: str) -> None:
    if items is None:
        return
    if not isinstance(items, list):
        raise invalid_property(name, items, "The value must be a list of name/value pairs.")
    for item in items:
        if not isinstance(item, dict) or not item.get("name"):
            raise missing_property(f"{name}.name")


def check_resource_files(files: Any, name: str = "resourceFiles") -> None:
    for rf in files or []:
        require_object(rf, name)
        sources = [k for k in ("httpUrl", "storageContainerUrl", "autoStorageContainerName") if rf.get(k)]
        if len(sources) != 1:
            raise invalid_property(name, str(rf), "Exactly one of httpUrl, storageContainerUrl or "
                                                  "autoStorageContainerName must be specified.")
        if rf.get("httpUrl") and not rf.get("filePath"):
            raise missing_property(f"{name}.filePath")
        path = rf.get("filePath")
        # Refuse paths that would write outside the working directory of the task.
        if path and (path.startswith("/") or posixpath.normpath(path).startswith("..")):
            raise invalid_property(f"{name}.filePath", path, "The path must be relative and stay inside "
                                                             "the task working directory.")


def check_output_files(files: Any) -> None:
    for of in files or []:
        require_object(of, "outputFiles")
        if not of.get("filePattern"):
            raise missing_property("outputFiles.filePattern")
        container = ((of.get("destination") or {}).get("container")) or {}
        if not container.get("containerUrl"):
            raise missing_property("outputFiles.destination.container.containerUrl")
        condition = (of.get("uploadOptions") or {}).get("uploadCondition")
        if condition is None:
            raise missing_property("outputFiles.uploadOptions.uploadCondition")
        if str(condition).lower() not in UPLOAD_CONDITIONS:
            raise invalid_property("uploadCondition", condition, f"Allowed: {', '.join(UPLOAD_CONDITIONS)}.")


def check_constraints(constraints: Any, name: str = "constraints") -> None:
    if constraints is None:
        return
    require_object(constraints, name)
    for key in ("maxWallClockTime", "retentionTime"):
        if constraints.get(key) is not None:
            parse_duration(constraints[key], f"{name}.{key}")
    _check_int(constraints, "maxTaskRetryCount", -1, 2**31 - 1)


def check_command_task(spec: Any, name: str) -> None:
    """Fields every runnable task kind shares (task, job preparation, start task)."""
    require_object(spec, name)
    if not spec.get("commandLine"):
        raise missing_property(f"{name}.commandLine")
    check_resource_files(spec.get("resourceFiles"))
    _check_name_values(spec.get("environmentSettings"), "environmentSettings")
    check_constraints(spec.get("constraints"))


def check_start_task(spec: Any) -> None:
    """A pool's startTask; its maxTaskRetryCount is its own property (a task's is in its constraints)."""
    check_command_task(spec, "startTask")
    _check_int(spec, "maxTaskRetryCount", -1, 2**31 - 1)


def validate_pool(body: object) -> dict[str, Any]:
    body = require_object(body)
    check_id(body.get("id"))
    return check_pool_spec(body)


def check_pool_spec(body: dict[str, Any], name: str = "") -> dict[str, Any]:
    """A pool's properties (pool add, or an auto pool's ``pool``; ``name`` prefixes property names).
    Neither target node counts nor autoscale is a pool of 0 nodes: the service answers 201 (Azure/azure-cli,
    src/azure-cli/azure/cli/command_modules/batch/tests/latest/recordings/test_batch_jobs_and_tasks.yaml)."""
    if not body.get("vmSize"):
        raise missing_property(f"{name}vmSize")
    vm = body.get("virtualMachineConfiguration")
    if not vm:
        raise missing_property(f"{name}virtualMachineConfiguration")
    if not vm.get("imageReference"):
        raise missing_property(f"{name}virtualMachineConfiguration.imageReference")
    if not vm.get("nodeAgentSKUId"):
        raise missing_property(f"{name}virtualMachineConfiguration.nodeAgentSKUId")
    image = require_object(vm["imageReference"], f"{name}virtualMachineConfiguration.imageReference")
    if image.get("virtualMachineImageId") is not None:
        check_image_id(image["virtualMachineImageId"])
    encryption = vm.get("diskEncryptionConfiguration")
    if isinstance(encryption, dict) and encryption.get("customerManagedKey") is not None and not body.get("identity"):
        # Recorded (Azure/azure-sdk-assets js batch-rest: should_failed_to_create_a_cmk_disk_encrypted_pool_as_
        # dataplane_does_not_support_pool_identity): the data plane cannot give a pool an identity, so a customer
        # managed key is always refused, PropertyValue empty.
        raise invalid_property("identity", "", "Pool Identity is required when using CustomerManagedKey.")
    network = body.get("networkConfiguration")
    if network is not None and require_object(network, f"{name}networkConfiguration").get("subnetId") is not None:
        check_subnet_id(network["subnetId"])
    check_sizing(body)
    if body.get("resizeTimeout") is not None and \
            parse_duration(body["resizeTimeout"], "resizeTimeout") < timedelta(minutes=5):
        raise invalid_property("resizeTimeout", body["resizeTimeout"], "The minimum resize timeout is 5 minutes.")
    _check_int(body, "taskSlotsPerNode", 1, 256)
    _check_name_values(body.get("metadata"), "metadata")
    if body.get("startTask") is not None:
        check_start_task(body["startTask"])
    policy = body.get("taskSchedulingPolicy") or {}
    _check_enum(policy, "nodeFillType", ("spread", "pack"))
    check_application_packages(body.get("applicationPackageReferences"))   # 409, after the body's own checks
    return body


def validate_pool_properties(body: object) -> dict[str, Any]:
    """updateproperties: the start task, metadata and package references replace the pool's (absent: none)."""
    body = require_object(body)
    _check_name_values(body.get("metadata"), "metadata")
    if body.get("startTask") is not None:
        check_start_task(body["startTask"])
    _check_enum(body, "targetNodeCommunicationMode", ("default", "classic", "simplified"))
    check_application_packages(body.get("applicationPackageReferences"))
    return body


def check_sizing(body: dict[str, Any]) -> None:
    """Sizing rules of pool create and resize (https://learn.microsoft.com/rest/api/batchservice/pool/create):
    autoscale needs a formula and forbids fixed targets (targetDedicatedNodes, targetLowPriorityNodes)."""
    auto = bool(body.get("enableAutoScale"))
    has_target = body.get("targetDedicatedNodes") is not None or body.get("targetLowPriorityNodes") is not None
    if auto:
        if not body.get("autoScaleFormula"):
            raise missing_property("autoScaleFormula")
        if has_target:
            name = "targetDedicatedNodes" if body.get("targetDedicatedNodes") is not None else "targetLowPriorityNodes"
            raise invalid_property(name, body.get(name), "Target node counts cannot be specified when "
                                                         "enableAutoScale is true.")
        check_autoscale(body)
    else:
        if body.get("autoScaleFormula"):
            raise invalid_property("autoScaleFormula", body["autoScaleFormula"],
                                   "autoScaleFormula can only be specified when enableAutoScale is true.")
        _check_int(body, "targetDedicatedNodes", 0, 10000)
        _check_int(body, "targetLowPriorityNodes", 0, 10000)


def check_autoscale(body: dict[str, Any], check_formula: bool = True) -> None:
    """Length and interval of an autoscale request; with ``check_formula`` (pool create, enable
    autoscale) also the formula itself, as the service checks it before accepting it. Evaluate
    reports formula problems in its AutoScaleRun instead."""
    formula = body.get("autoScaleFormula")
    if formula is not None and not isinstance(formula, str):
        raise invalid_property("autoScaleFormula", formula, "The formula must be a string.")
    if formula is not None and len(formula) > MAX_FORMULA_CHARS:
        raise service_error(400, "AutoScaleFormulaTooLong", PropertyName="autoScaleFormula",
                            Reason=f"The formula must be at most {MAX_FORMULA_CHARS} characters.")
    interval = body.get("autoScaleEvaluationInterval")
    if interval is not None:
        value = parse_duration(interval, "autoScaleEvaluationInterval")
        if not timedelta(minutes=5) <= value <= timedelta(hours=168):
            raise invalid_property("autoScaleEvaluationInterval", interval,
                                   "The interval must be between 5 minutes and 168 hours.")
    if check_formula and formula:
        try:
            autoscale_formula.check(formula)
        except autoscale_formula.FormulaError as err:
            # 400 AutoScalingFormulaSyntaxError / InvalidAutoScalingSettings with "Line L, Col C: ..."
            raise service_error(400, err.request_code, autoscale_formula.MESSAGES[err.request_code],
                                Message=err.detail) from None


def validate_resize(body: object) -> dict[str, Any]:
    body = require_object(body)
    if body.get("targetDedicatedNodes") is None and body.get("targetLowPriorityNodes") is None:
        raise missing_property("targetDedicatedNodes")
    _check_int(body, "targetDedicatedNodes", 0, 10000)
    _check_int(body, "targetLowPriorityNodes", 0, 10000)
    _check_enum(body, "nodeDeallocationOption", tuple(option.value for option in DeallocationOption))
    if body.get("resizeTimeout") is not None and \
            parse_duration(body["resizeTimeout"], "resizeTimeout") < timedelta(minutes=5):
        raise invalid_property("resizeTimeout", body["resizeTimeout"], "The minimum resize timeout is 5 minutes.")
    return body


def check_pool_info(pool_info: Any) -> None:
    """poolInfo: a poolId, or an autoPoolSpecification the emulator creates a pool from (lifetime job only:
    a schedule's jobs get one pool each, never one shared pool)."""
    if not pool_info:
        raise missing_property("poolInfo")
    require_object(pool_info, "poolInfo")
    auto = pool_info.get("autoPoolSpecification")
    if auto is None:
        check_id(pool_info.get("poolId"), "poolInfo.poolId")
        return
    if pool_info.get("poolId") is not None:
        raise invalid_property("poolInfo.poolId", pool_info["poolId"],
                               "Specify either poolId or autoPoolSpecification, not both.")
    require_object(auto, "poolInfo.autoPoolSpecification")
    name = "poolInfo.autoPoolSpecification"
    lifetime = auto.get("poolLifetimeOption")
    if not lifetime:
        raise missing_property(f"{name}.poolLifetimeOption")
    if str(lifetime).lower() != "job":
        raise invalid_property(f"{name}.poolLifetimeOption", lifetime,
                               "The emulator makes one auto pool per job, never one per job schedule: only "
                               "poolLifetimeOption job is supported.")
    prefix = auto.get("autoPoolIdPrefix")
    if prefix is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,20}", str(prefix)):
        raise invalid_property(f"{name}.autoPoolIdPrefix", prefix,
                               "The prefix can contain alphanumeric characters, hyphens and underscores, "
                               "at most 20 characters.")
    pool = auto.get("pool")
    if not pool:
        raise missing_property(f"{name}.pool")
    check_pool_spec(require_object(pool, f"{name}.pool"), f"{name}.pool.")


def check_job_manager(manager: Any) -> None:
    name = "jobManagerTask"
    check_command_task(manager, name)
    check_id(manager.get("id"), f"{name}.id")
    check_output_files(manager.get("outputFiles"))
    _check_int(manager, "requiredSlots", 1, 256)


def validate_job(body: object) -> dict[str, Any]:
    body = require_object(body)
    check_id(body.get("id"))
    check_pool_info(body.get("poolInfo"))
    _check_int(body, "priority", -1000, 1000, code="OutOfRangePriority")
    max_parallel = _check_int(body, "maxParallelTasks", -1, 2**31 - 1)
    if max_parallel == 0:
        raise invalid_property("maxParallelTasks", 0, "The value must be -1 or greater than 0.")
    _check_enum(body, "onAllTasksComplete", ("noaction", "terminatejob"))
    _check_enum(body, "onTaskFailure", ("noaction", "performexitoptionsjobaction"))
    check_constraints(body.get("constraints"))
    _check_name_values(body.get("commonEnvironmentSettings"), "commonEnvironmentSettings")
    _check_name_values(body.get("metadata"), "metadata")
    if body.get("jobManagerTask") is not None:
        check_job_manager(body["jobManagerTask"])
    prep = body.get("jobPreparationTask")
    if prep is not None:
        check_command_task(prep, "jobPreparationTask")
        if prep.get("id") is not None:
            check_id(prep["id"], "jobPreparationTask.id")
    release = body.get("jobReleaseTask")
    if release is not None:
        if prep is None:
            raise invalid_property("jobReleaseTask", "...", "A job release task requires a job preparation task.")
        check_command_task(release, "jobReleaseTask")
    return body


def validate_job_patch(body: object, job: Job, replace: bool = False) -> dict[str, Any]:
    """PATCH (``replace`` False) or PUT (True: poolInfo is required, and an omitted onAllTasksComplete
    means noaction)."""
    body = require_object(body)
    new_mode = body.get("onAllTasksComplete", "noaction" if replace else None)
    _check_enum(body, "onAllTasksComplete", ("noaction", "terminatejob"))
    if new_mode is not None and str(new_mode).lower() == "noaction" and \
            job.settings.terminate_when_all_tasks_complete:
        raise invalid_property("onAllTasksComplete", new_mode, "onAllTasksComplete cannot be changed from "
                                                               "terminatejob to noaction.")
    _check_enum(body, "onTaskFailure", ("noaction", "performexitoptionsjobaction"))
    _check_int(body, "priority", -1000, 1000, code="OutOfRangePriority")
    _check_int(body, "maxParallelTasks", -1, 2**31 - 1)
    check_constraints(body.get("constraints"))
    _check_name_values(body.get("metadata"), "metadata")
    if replace and body.get("poolInfo") is None:
        raise missing_property("poolInfo")
    if body.get("poolInfo") is not None:
        pool_info = require_object(body["poolInfo"], "poolInfo")
        auto = pool_info.get("autoPoolSpecification")
        if auto is not None and job.auto_pool_id:
            # Only its keepAlive changes (service/jobs.py, auto_pool_info_after).
            keep_alive = require_object(auto, "poolInfo.autoPoolSpecification").get("keepAlive")
            if keep_alive is not None and not isinstance(keep_alive, bool):
                raise invalid_property("poolInfo.autoPoolSpecification.keepAlive", keep_alive,
                                       "The value must be a boolean.")
            return body
        if auto is not None or job.auto_pool_id:
            # The service changes a job's pool only while it is disabled; the emulator not at all for auto pools.
            raise invalid_property("poolInfo.autoPoolSpecification", "...",
                                   "The emulator does not change the pool of a job to or from an auto pool.")
        check_id(pool_info.get("poolId"), "poolInfo.poolId")
    return body


def validate_disable(body: object) -> str:
    """disableTasks of a job disable: requeue, terminate or wait."""
    body = require_object(body)
    option = body.get("disableTasks")
    if option is None:
        raise missing_property("disableTasks")
    _check_enum(body, "disableTasks", DISABLE_OPTIONS)
    return str(option).lower()


def validate_task(body: object, job: Job) -> dict[str, Any]:
    """Validate one task of ``job``; raises like the single-task create would."""
    body = require_object(body)
    check_id(body.get("id"))
    settings = job.settings
    if settings.preparation is not None and body["id"].lower() == settings.preparation_task_id.lower():
        raise conflict("TaskIdSameAsJobPreparationTask")
    if settings.release_task_id is not None and body["id"].lower() == settings.release_task_id.lower():
        raise conflict("TaskIdSameAsJobReleaseTask")
    check_command_task(body, "task")
    check_output_files(body.get("outputFiles"))
    slots = _check_int(body, "requiredSlots", 1, 256)
    multi = body.get("multiInstanceSettings")
    if multi is not None:
        require_object(multi, "multiInstanceSettings")
        _check_int(multi, "numberOfInstances", 1, 100)
        check_resource_files(multi.get("commonResourceFiles"), "commonResourceFiles")
        if slots not in (None, 1):
            raise invalid_property("requiredSlots", slots, "Multi-instance tasks must have requiredSlots 1.")
    if body.get("dependsOn") and not settings.uses_task_dependencies:
        raise service_error(400, "TaskDependenciesNotSpecifiedOnJob")
    return body
