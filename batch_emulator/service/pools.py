"""The pool operations of the REST API, one function per request: each checks the body, then runs its
change through changes.change (lock, rules, mutation, scheduler wake) and returns what the answer shows.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from . import autoscale, jobs
from .changes import Version, change, read, version
from .conditions import Conditions
from .errors import conflict, missing_property, service_error
from .resource_ids import check_application_packages
from .state import Account, Pool, get_pool
from .states import AllocationState, NodeState, PoolState
from .validation import (
    check_autoscale,
    check_start_task,
    require_object,
    validate_pool,
    validate_pool_properties,
    validate_resize,
)

# What PATCH /pools/{id} replaces when the body has it (what it omits stays).
PATCHED = ("startTask", "metadata", "applicationPackageReferences", "targetNodeCommunicationMode", "displayName",
           "vmSize", "taskSlotsPerNode", "taskSchedulingPolicy")
# What POST /pools/{id}/updateproperties replaces: what the body omits is removed.
REPLACED = ("startTask", "metadata", "applicationPackageReferences", "certificateReferences",
            "targetNodeCommunicationMode")


def _writable(account: Account, pool_id: str, conditions: Conditions) -> Pool:
    """The pool a write or action changes (lock held): not being deleted, preconditions met."""
    pool = get_pool(account, pool_id, allow_deleting=False)
    conditions.check(pool.etag, pool.last_modified)
    return pool


def create_pool(account: Account, raw: object) -> Version:
    body = validate_pool(raw)
    return change(account, lambda: version(jobs.add_pool(account, body)))


def delete_pool(account: Account, pool_id: str, conditions: Conditions) -> None:
    def delete() -> None:
        _writable(account, pool_id, conditions).transition(PoolState.DELETING)
    change(account, delete)


def patch_pool(account: Account, pool_id: str, conditions: Conditions, raw: object) -> Version:
    body = require_object(raw)
    if body.get("startTask") is not None:   # what nodes run: checked as at pool add, before it is stored
        check_start_task(body["startTask"])
    check_application_packages(body.get("applicationPackageReferences"))

    def patch() -> Version:
        pool = _writable(account, pool_id, conditions)
        for key in PATCHED:
            if key in body:
                pool.spec[key] = copy.deepcopy(body[key])
        pool.spec_changed()
        pool.touch()
        return version(pool)
    return change(account, patch)


def update_properties(account: Account, pool_id: str, conditions: Conditions, raw: object) -> Version:
    """Replace the start task, metadata, application packages and communication mode: what the body omits
    is removed (an omitted startTask included), as the service did."""
    body = validate_pool_properties(raw)

    def update() -> Version:
        pool = _writable(account, pool_id, conditions)
        for key in REPLACED:
            pool.spec.pop(key, None)
            if body.get(key) is not None:
                pool.spec[key] = copy.deepcopy(body[key])
        pool.spec_changed()
        pool.touch()
        return version(pool)
    return change(account, update)


def enable_autoscale(account: Account, pool_id: str, conditions: Conditions, raw: object) -> Version:
    body = require_object(raw)
    check_autoscale(body)
    formula, interval = body.get("autoScaleFormula"), body.get("autoScaleEvaluationInterval")

    def enable() -> Version:
        pool = _writable(account, pool_id, conditions)
        if not pool.enable_auto_scale and not formula:
            raise missing_property("autoScaleFormula")
        if not formula and not interval:
            raise missing_property("autoScaleFormula")   # the docs: give the formula, the interval or both
        if not pool.enable_auto_scale and pool.allocation_state != AllocationState.STEADY:
            raise conflict("PoolBeingResized", "Autoscale cannot be enabled while the pool is resizing.")
        now = time.time()
        if autoscale.enable_too_soon(account, pool, now):
            # The status is the Batch error-code list's (ServiceUnavailable); creating a pool does not count.
            limit = autoscale.ENABLE_LIMIT_SECONDS
            raise service_error(503, "TooManyEnableAutoScaleRequests",
                                "Too many Enable Pool AutoScale requests are issued on the pool.",
                                Reason="Enable autoscale requests for the same pool must be separated by at least "
                                       f"{limit:g} seconds ({limit / account.time_scale:g} s at this emulator's "
                                       "time scale).")
        pool.enable_auto_scale = True
        pool.auto_scale_formula = formula or pool.auto_scale_formula
        pool.auto_scale_interval = interval or pool.auto_scale_interval
        pool.last_enable = now
        autoscale.start(account, pool, now)   # evaluated one interval from now, then every interval
        pool.touch()
        return version(pool)
    return change(account, enable)


def disable_autoscale(account: Account, pool_id: str, conditions: Conditions) -> Version:
    def disable() -> Version:
        pool = _writable(account, pool_id, conditions)
        pool.enable_auto_scale, pool.auto_scale_formula, pool.auto_scale_interval = False, None, None
        pool.auto_scale_run, pool.next_evaluation = None, None
        pool.touch()
        return version(pool)
    return change(account, disable)


def evaluate_autoscale(account: Account, pool_id: str, raw: object) -> tuple[str, dict[str, Any]]:
    """Evaluate a formula on the pool without applying it: (the pool's id, the AutoScaleRun). Changes nothing."""
    body = require_object(raw)
    if not body.get("autoScaleFormula"):
        raise missing_property("autoScaleFormula")
    check_autoscale(body, check_formula=False)   # formula problems go into the AutoScaleRun's error

    def evaluate() -> tuple[str, dict[str, Any]]:
        pool = get_pool(account, pool_id)
        if not pool.enable_auto_scale:
            # The docs only say the pool must have autoscale enabled; the exact 409 code is not documented.
            raise conflict("OperationInvalidForCurrentState",
                           "The pool must have auto scaling enabled in order to evaluate a formula.")
        _outcome, run = autoscale.evaluate(account, pool, body["autoScaleFormula"], time.time())
        return pool.id, run
    return read(account, evaluate)


def resize_pool(account: Account, pool_id: str, conditions: Conditions, raw: object) -> Version:
    body = validate_resize(raw)

    def resize() -> Version:
        pool = _writable(account, pool_id, conditions)
        if pool.enable_auto_scale:
            raise conflict("OperationInvalidForCurrentState", "An autoscale pool cannot be resized manually.")
        if pool.allocation_state != AllocationState.STEADY:
            raise conflict("PoolBeingResized")
        if body.get("targetDedicatedNodes") is not None:
            pool.target_dedicated = body["targetDedicatedNodes"]
        if body.get("targetLowPriorityNodes") is not None:
            pool.target_low_priority = body["targetLowPriorityNodes"]
        pool.resize_timeout = body.get("resizeTimeout") or pool.resize_timeout
        pool.begin_resize()   # its errors, if any, replace the last resize's resizeErrors
        pool.set_allocation_state(AllocationState.RESIZING)
        pool.touch()
        return version(pool)
    return change(account, resize)


def stop_resize(account: Account, pool_id: str, conditions: Conditions) -> Version:
    """The pool keeps the nodes it has: its targets become its current (not leaving) node counts."""
    def stop() -> Version:
        pool = _writable(account, pool_id, conditions)
        live = [n for n in pool.nodes.values() if n.state != NodeState.LEAVING_POOL]
        pool.target_dedicated = sum(1 for n in live if n.dedicated)
        pool.target_low_priority = sum(1 for n in live if not n.dedicated)
        pool.touch()
        return version(pool)
    return change(account, stop)
