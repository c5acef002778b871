"""Route: upload a node's Batch service logs to a blob container (service/node_logs.py says what goes, and when).

The answer is the recorded one (Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/
test_batch.pyTestBatchtest_batch_compute_nodes[sync].json): 200, odata.metadata naming the
UploadBatchServiceLogsResult entity, virtualDirectoryName and numberOfFilesUploaded. There the unique last part of
virtualDirectoryName was the answer's request-id; here it is a GUID of its own (the request-id is the server's).
"""

from __future__ import annotations

from ..service import node_logs
from .http import Request, Response, Server, route

METADATA = "Microsoft.Azure.Batch.Protocol.Entities.UploadBatchServiceLogsResult"


@route("POST", "pools/{poolId}/nodes/{nodeId}/uploadbatchservicelogs")
def upload_node_logs(server: Server, req: Request) -> Response:
    uploaded = node_logs.upload_node_logs(server.account, server.runtime, req.params["poolId"],
                                          req.params["nodeId"], req.json())
    return Response(200, {"odata.metadata": f"{req.base}/$metadata#{METADATA}",
                          "virtualDirectoryName": uploaded.virtual_directory,
                          "numberOfFilesUploaded": uploaded.files})
