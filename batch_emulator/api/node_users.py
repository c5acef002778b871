"""Node users and remote login settings: add (201), replace (200) and delete (200) a user, and the node's remote
login settings (200), answered as Microsoft's recording shows (Azure/azure-sdk-assets, python/sdk/batch/azure-batch/
tests/recordings/test_batch.pyTestBatchtest_batch_compute_node_user[sync].json): no body, DataServiceId naming the
user (and Location on the add), no ETag or Last-Modified; the delete answers without DataServiceId.
"""

from __future__ import annotations

from ..service import node_users
from .http import Request, Response, Server, entity, route

LOGIN_METADATA = "Microsoft.Azure.Batch.Protocol.Entities.RemoteLoginSettings"


def _node_path(req: Request) -> str:
    return f"{req.base}/pools/{req.params['poolId']}/nodes/{req.params['nodeId']}"


@route("POST", "pools/{poolId}/nodes/{nodeId}/users")
def create_node_user(server: Server, req: Request) -> Response:
    name = node_users.create_node_user(server.account, server.runtime, req.params["poolId"], req.params["nodeId"],
                                       req.json())
    url = f"{_node_path(req)}/users/{name}"
    return Response(201, None, {"DataServiceId": url, "Location": url})


@route("PUT", "pools/{poolId}/nodes/{nodeId}/users/{userName}")
def replace_node_user(server: Server, req: Request) -> Response:
    node_users.replace_node_user(server.account, server.runtime, req.params["poolId"], req.params["nodeId"],
                                 req.params["userName"], req.json())
    return Response(200, None, {"DataServiceId": f"{_node_path(req)}/users/{req.params['userName']}"})


@route("DELETE", "pools/{poolId}/nodes/{nodeId}/users/{userName}")
def delete_node_user(server: Server, req: Request) -> Response:
    node_users.delete_node_user(server.account, server.runtime, req.params["poolId"], req.params["nodeId"],
                                req.params["userName"])
    return Response(200)


@route("GET", "pools/{poolId}/nodes/{nodeId}/remoteloginsettings")
def get_remote_login_settings(server: Server, req: Request) -> Response:
    settings = node_users.remote_login_settings(server.account, server.runtime, req.params["poolId"],
                                                req.params["nodeId"])
    answer = entity(settings, metadata=LOGIN_METADATA, base=req.base)
    answer.headers["DataServiceId"] = f"{_node_path(req)}/remoteloginsettings"
    return answer
