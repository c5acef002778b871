"""Pools, nodes, node counts and supported images."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from ..service import pools
from ..service.changes import Version, read, version
from ..service.state import get_node, get_pool
from . import wire
from .http import Request, Response, Server, by_id, conditions, element, entity, listing, route, written

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
    pool = pools.create_pool(server.account, req.json())
    return written(201, req, f"/pools/{pool.id}", pool.etag, pool.last_modified)


@route("GET", "pools")
def list_pools(server: Server, req: Request) -> Response:
    account = server.account
    # Sorted by id, case aside, as every recorded pool list (Azure/azure-sdk-assets python, js, java) shows them.
    items = read(account, lambda: [wire.pool_to_wire(p, req.base) for p in by_id(account.pools.values())])
    return listing(req, items, "pools", POOL_FILTER)


@route("GET", "pools/{poolId}")
def get_pool_route(server: Server, req: Request) -> Response:
    def render() -> tuple[Version, dict[str, Any]]:
        pool = get_pool(server.account, req.params["poolId"])
        return version(pool), wire.pool_to_wire(pool, req.base)
    pool, body = read(server.account, render)
    return element(req, body, "pools/@Element", pool.etag, pool.last_modified)


@route("HEAD", "pools/{poolId}")
def pool_exists(server: Server, req: Request) -> Response:
    pool = read(server.account, lambda: version(get_pool(server.account, req.params["poolId"])))
    return Response(200, None, {"ETag": pool.etag, "Last-Modified": wire.rfc1123(pool.last_modified)})


def _action(req: Request, pool: Version, status: int) -> Response:
    """An action's answer: DataServiceId is the action's URL (.../pools/x/resize), as on the service."""
    return written(status, req, f"/pools/{pool.id}/{req.segments[-1]}", pool.etag, pool.last_modified)


@route("DELETE", "pools/{poolId}")
def delete_pool(server: Server, req: Request) -> Response:
    pools.delete_pool(server.account, req.params["poolId"], conditions(req))
    return Response(202)


@route("PATCH", "pools/{poolId}")
def patch_pool(server: Server, req: Request) -> Response:
    pool = pools.patch_pool(server.account, req.params["poolId"], conditions(req), req.json())
    return written(200, req, f"/pools/{pool.id}", pool.etag, pool.last_modified)


@route("POST", "pools/{poolId}/updateproperties")
def update_properties(server: Server, req: Request) -> Response:
    return _action(req, pools.update_properties(server.account, req.params["poolId"], conditions(req), req.json()),
                   204)


@route("POST", "pools/{poolId}/enableautoscale")
def enable_autoscale(server: Server, req: Request) -> Response:
    return _action(req, pools.enable_autoscale(server.account, req.params["poolId"], conditions(req), req.json()),
                   200)


@route("POST", "pools/{poolId}/disableautoscale")
def disable_autoscale(server: Server, req: Request) -> Response:
    return _action(req, pools.disable_autoscale(server.account, req.params["poolId"], conditions(req)), 200)


@route("POST", "pools/{poolId}/evaluateautoscale")
def evaluate_autoscale(server: Server, req: Request) -> Response:
    pool_id, run = pools.evaluate_autoscale(server.account, req.params["poolId"], req.json())
    response = entity(run, metadata="Microsoft.Azure.Batch.Protocol.Entities.AutoScaleRun", base=req.base)
    response.headers["DataServiceId"] = f"{req.base}/pools/{pool_id}/evaluateautoscale"   # no ETag: nothing changed
    return response


@route("POST", "pools/{poolId}/resize")
def resize_pool(server: Server, req: Request) -> Response:
    return _action(req, pools.resize_pool(server.account, req.params["poolId"], conditions(req), req.json()), 202)


@route("POST", "pools/{poolId}/stopresize")
def stop_resize(server: Server, req: Request) -> Response:
    return _action(req, pools.stop_resize(server.account, req.params["poolId"], conditions(req)), 202)


@route("GET", "pools/{poolId}/nodes")
def list_nodes(server: Server, req: Request) -> Response:
    def render() -> list[dict[str, Any]]:
        pool = get_pool(server.account, req.params["poolId"])
        return [wire.node_to_wire(n, pool, req.base) for n in pool.nodes.values()]
    return listing(req, read(server.account, render), "nodes", NODE_FILTER)


@route("GET", "pools/{poolId}/nodes/{nodeId}")
def get_node_route(server: Server, req: Request) -> Response:
    def render() -> tuple[datetime, dict[str, Any]]:
        node = get_node(server.account, req.params["poolId"], req.params["nodeId"])
        pool = get_pool(server.account, req.params["poolId"])
        return node.state_time, wire.node_to_wire(node, pool, req.base)
    state_time, body = read(server.account, render)
    return element(req, body, "nodes/@Element", None, state_time)


@route("GET", "nodecounts")
def node_counts(server: Server, req: Request) -> Response:
    account = server.account
    items = read(account, lambda: [wire.node_counts_to_wire(p) for p in by_id(account.pools.values())])
    return listing(req, items, "poolnodecounts", ("poolId",))


@route("GET", "supportedimages")
def supported_images(server: Server, req: Request) -> Response:
    images = wire.SUPPORTED_IMAGES if server.account.supported_images is None else server.account.supported_images
    return listing(req, copy.deepcopy(images), "supportedimages", IMAGE_FILTER)
