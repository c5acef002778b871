"""Pools, nodes, node counts and supported images."""

from __future__ import annotations

import copy
import time

from ..service import autoscale, jobs
from ..service.errors import conflict, missing_property, service_error
from ..service.state import Pool, get_node, get_pool
from ..service.states import AllocationState, NodeState, PoolState
from ..service.validation import (
    check_autoscale,
    require_object,
    validate_pool,
    validate_pool_properties,
    validate_resize,
)
from . import wire
from .http import Request, Response, Server, check_conditions, element, entity, listing, route, written

POOL_FILTER = ("id", "displayName", "state", "stateTransitionTime", "allocationState", "allocationStateTransitionTime",
               "creationTime", "lastModified", "vmSize", "enableAutoScale", "enableInterNodeCommunication",
               "currentDedicatedNodes", "currentLowPriorityNodes", "targetDedicatedNodes", "targetLowPriorityNodes",
               "taskSlotsPerNode", "virtualMachineConfiguration/nodeAgentSKUId")
NODE_FILTER = ("id", "state", "schedulingState", "stateTransitionTime", "lastBootTime", "allocationTime",
               "isDedicated", "ipAddress", "vmSize", "startTaskInfo/state", "startTaskInfo/result",
               "startTaskInfo/exitCode", "startTaskInfo/startTime", "startTaskInfo/endTime")
IMAGE_FILTER = ("osType", "verificationType", "nodeAgentSKUId")


@route("POST", "pools")
def create_pool(server: Server, req: Request) -> Response:
    body = validate_pool(req.json())
    account = server.account
    with account.lock:
        pool = jobs.add_pool(account, body)
    account.wake()
    return written(201, req, f"/pools/{pool.id}", pool.etag, pool.last_modified)


@route("GET", "pools")
def list_pools(server: Server, req: Request) -> Response:
    with server.account.lock:
        items = [wire.pool_to_wire(p, req.base) for p in server.account.pools.values()]
    return listing(req, items, "pools", POOL_FILTER)


@route("GET", "pools/{poolId}")
def get_pool_route(server: Server, req: Request) -> Response:
    with server.account.lock:
        pool = get_pool(server.account, req.params["poolId"])
        body = wire.pool_to_wire(pool, req.base)
    return element(req, body, "pools/@Element", pool.etag, pool.last_modified)


@route("HEAD", "pools/{poolId}")
def pool_exists(server: Server, req: Request) -> Response:
    with server.account.lock:
        pool = get_pool(server.account, req.params["poolId"])
        return Response(200, None, {"ETag": pool.etag, "Last-Modified": wire.rfc1123(pool.last_modified)})


def _writable(server: Server, req: Request) -> Pool:
    """The pool a write or action changes (account lock held): not being deleted, preconditions met."""
    pool = get_pool(server.account, req.params["poolId"], allow_deleting=False)
    check_conditions(req, pool.etag, pool.last_modified)
    return pool


def _action(req: Request, pool: Pool, status: int, body: dict | None = None) -> Response:
    """An action's answer: DataServiceId is the action's URL (.../pools/x/resize), as on the service."""
    return written(status, req, f"/pools/{pool.id}/{req.segments[-1]}", pool.etag, pool.last_modified, body)


@route("DELETE", "pools/{poolId}")
def delete_pool(server: Server, req: Request) -> Response:
    with server.account.lock:
        pool = _writable(server, req)
        pool.transition(PoolState.DELETING)
    server.account.wake()
    return Response(202)


@route("PATCH", "pools/{poolId}")
def patch_pool(server: Server, req: Request) -> Response:
    body = require_object(req.json())
    with server.account.lock:
        pool = _writable(server, req)
        for key in ("startTask", "metadata", "applicationPackageReferences", "targetNodeCommunicationMode",
                    "displayName", "vmSize", "taskSlotsPerNode", "taskSchedulingPolicy"):
            if key in body:
                pool.spec[key] = copy.deepcopy(body[key])
        pool.touch()
        return written(200, req, f"/pools/{pool.id}", pool.etag, pool.last_modified)


@route("POST", "pools/{poolId}/updateproperties")
def update_properties(server: Server, req: Request) -> Response:
    """Replace the start task, metadata, application packages and communication mode: what the body omits
    is removed (an omitted startTask included), as the service did (204)."""
    body = validate_pool_properties(req.json())
    with server.account.lock:
        pool = _writable(server, req)
        for key in ("startTask", "metadata", "applicationPackageReferences", "certificateReferences",
                    "targetNodeCommunicationMode"):
            pool.spec.pop(key, None)
            if body.get(key) is not None:
                pool.spec[key] = copy.deepcopy(body[key])
        pool.touch()
        return _action(req, pool, 204)


@route("POST", "pools/{poolId}/enableautoscale")
def enable_autoscale(server: Server, req: Request) -> Response:
    body = require_object(req.json())
    check_autoscale(body)
    account = server.account
    with account.lock:
        pool = _writable(server, req)
        if not pool.enable_auto_scale and not body.get("autoScaleFormula"):
            raise missing_property("autoScaleFormula")
        if not body.get("autoScaleFormula") and not body.get("autoScaleEvaluationInterval"):
            raise missing_property("autoScaleFormula")   # the docs: give the formula, the interval or both
        if not pool.enable_auto_scale and pool.allocation_state != AllocationState.STEADY:
            raise conflict("PoolBeingResized", "Autoscale cannot be enabled while the pool is resizing.")
        now = time.time()
        if autoscale.enable_too_soon(account, pool, now):
            # The status is the Batch error-code list's (ServiceUnavailable); creating a pool does not count.
            raise service_error(503, "TooManyEnableAutoScaleRequests",
                                "Too many Enable Pool AutoScale requests are issued on the pool.",
                                Reason="Enable autoscale requests for the same pool must be separated by at least "
                                       f"30 seconds ({30 / account.time_scale:g} s at this emulator's time scale).")
        pool.enable_auto_scale = True
        pool.auto_scale_formula = body.get("autoScaleFormula") or pool.auto_scale_formula
        pool.auto_scale_interval = body.get("autoScaleEvaluationInterval") or pool.auto_scale_interval
        pool.last_enable = now
        autoscale.start(account, pool, now)   # evaluated one interval from now, then every interval
        pool.touch()
    account.wake()
    return _action(req, pool, 200)


@route("POST", "pools/{poolId}/disableautoscale")
def disable_autoscale(server: Server, req: Request) -> Response:
    with server.account.lock:
        pool = _writable(server, req)
        pool.enable_auto_scale, pool.auto_scale_formula, pool.auto_scale_interval = False, None, None
        pool.auto_scale_run, pool.next_evaluation = None, None
        pool.touch()
    return _action(req, pool, 200)


@route("POST", "pools/{poolId}/evaluateautoscale")
def evaluate_autoscale(server: Server, req: Request) -> Response:
    body = require_object(req.json())
    if not body.get("autoScaleFormula"):
        raise missing_property("autoScaleFormula")
    check_autoscale(body, check_formula=False)   # formula problems go into the AutoScaleRun's error
    account = server.account
    with account.lock:
        pool = get_pool(account, req.params["poolId"])
        if not pool.enable_auto_scale:
            # The docs only say the pool must have autoscale enabled; the exact 409 code is not documented.
            raise conflict("OperationInvalidForCurrentState",
                           "The pool must have auto scaling enabled in order to evaluate a formula.")
        _outcome, run = autoscale.evaluate(account, pool, body["autoScaleFormula"], time.time())
    response = entity(run, metadata="Microsoft.Azure.Batch.Protocol.Entities.AutoScaleRun", base=req.base)
    response.headers["DataServiceId"] = f"{req.base}/pools/{pool.id}/evaluateautoscale"   # no ETag: nothing changed
    return response


@route("POST", "pools/{poolId}/resize")
def resize_pool(server: Server, req: Request) -> Response:
    body = validate_resize(req.json())
    with server.account.lock:
        pool = _writable(server, req)
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
    server.account.wake()
    return _action(req, pool, 202)


@route("POST", "pools/{poolId}/stopresize")
def stop_resize(server: Server, req: Request) -> Response:
    with server.account.lock:
        pool = _writable(server, req)
        live = [n for n in pool.nodes.values() if n.state != NodeState.LEAVING_POOL]
        pool.target_dedicated = sum(1 for n in live if n.dedicated)
        pool.target_low_priority = sum(1 for n in live if not n.dedicated)
        pool.touch()
    server.account.wake()
    return _action(req, pool, 202)


@route("GET", "pools/{poolId}/nodes")
def list_nodes(server: Server, req: Request) -> Response:
    with server.account.lock:
        pool = get_pool(server.account, req.params["poolId"])
        items = [wire.node_to_wire(n, pool, req.base) for n in pool.nodes.values()]
    return listing(req, items, "nodes", NODE_FILTER)


@route("GET", "pools/{poolId}/nodes/{nodeId}")
def get_node_route(server: Server, req: Request) -> Response:
    with server.account.lock:
        node = get_node(server.account, req.params["poolId"], req.params["nodeId"])
        pool = get_pool(server.account, req.params["poolId"])
        body = wire.node_to_wire(node, pool, req.base)
    return element(req, body, "nodes/@Element", None, node.state_time)


@route("GET", "nodecounts")
def node_counts(server: Server, req: Request) -> Response:
    with server.account.lock:
        items = [wire.node_counts_to_wire(p) for p in server.account.pools.values()]
    return listing(req, items, "poolnodecounts", ("poolId",))


@route("GET", "supportedimages")
def supported_images(server: Server, req: Request) -> Response:
    images = wire.SUPPORTED_IMAGES if server.account.supported_images is None else server.account.supported_images
    return listing(req, copy.deepcopy(images), "supportedimages", IMAGE_FILTER)
