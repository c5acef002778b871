"""Node operations: reboot, reimage, deallocate, start, disable and enable scheduling; node extensions.

The actions answer as the recordings show (Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/
test_batch.pyTestBatchtest_batch_compute_nodes[sync].json): reboot 202, disable and enable scheduling 200, no body,
DataServiceId naming the action and no ETag or Last-Modified (a node has none). Reimage, deallocate and start are
202 like reboot (the REST reference, 2025-06-01).
"""

from __future__ import annotations

from ..service import nodes
from .http import Request, Response, Server, element, listing, route


def _action(req: Request, status: int) -> Response:
    """An action's answer: DataServiceId is the action's URL (.../nodes/x/reboot)."""
    path = "/".join(["pools", req.params["poolId"], "nodes", req.params["nodeId"], req.segments[-1]])
    return Response(status, None, {"DataServiceId": f"{req.base}/{path}"})


@route("POST", "pools/{poolId}/nodes/{nodeId}/reboot")
def reboot_node(server: Server, req: Request) -> Response:
    nodes.reboot_node(server.account, server.runtime, req.params["poolId"], req.params["nodeId"], req.json())
    return _action(req, 202)


@route("POST", "pools/{poolId}/nodes/{nodeId}/reimage")
def reimage_node(server: Server, req: Request) -> Response:
    nodes.reimage_node(server.account, server.runtime, req.params["poolId"], req.params["nodeId"], req.json())
    return _action(req, 202)


@route("POST", "pools/{poolId}/nodes/{nodeId}/deallocate")
def deallocate_node(server: Server, req: Request) -> Response:
    nodes.deallocate_node(server.account, server.runtime, req.params["poolId"], req.params["nodeId"], req.json())
    return _action(req, 202)


@route("POST", "pools/{poolId}/nodes/{nodeId}/start")
def start_node(server: Server, req: Request) -> Response:
    nodes.start_node(server.account, server.runtime, req.params["poolId"], req.params["nodeId"])
    return _action(req, 202)


@route("POST", "pools/{poolId}/nodes/{nodeId}/disablescheduling")
def disable_node_scheduling(server: Server, req: Request) -> Response:
    nodes.disable_node_scheduling(server.account, req.params["poolId"], req.params["nodeId"], req.json())
    return _action(req, 200)


@route("POST", "pools/{poolId}/nodes/{nodeId}/enablescheduling")
def enable_node_scheduling(server: Server, req: Request) -> Response:
    nodes.enable_node_scheduling(server.account, req.params["poolId"], req.params["nodeId"])
    return _action(req, 200)


@route("GET", "pools/{poolId}/nodes/{nodeId}/extensions")
def list_node_extensions(server: Server, req: Request) -> Response:
    items = nodes.node_extensions(server.account, req.params["poolId"], req.params["nodeId"])
    return listing(req, items, "extensions", ())


@route("GET", "pools/{poolId}/nodes/{nodeId}/extensions/{extensionName}")
def get_node_extension(server: Server, req: Request) -> Response:
    extension = nodes.node_extension(server.account, req.params["poolId"], req.params["nodeId"],
                                     req.params["extensionName"])
    return element(req, extension, "extensions/@Element", None, None)
