"""Task and node files: list (optionally recursive), properties (HEAD), download, delete.

Task file paths are relative to the task directory (stdout.txt, wd/out.txt); node file
paths are relative to the node root (workitems/..., shared/..., startup/...). Which files
a request may see, and when they are gone with their node, is the service's (service/files.py);
the bytes are the runtime's. Here requests are parsed and answers written as the service writes them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..service import files
from ..service.errors import service_error
from ..service.files import FilesOf, NodeFilesOf, Place, TaskFilesOf
from ..service.state import iso
from ..service.work import FileInfo
from . import wire
from .http import Request, Response, Server, listing, route

OCTET = "application/octet-stream"
TEXT = "text/plain"


def _content_type(name: str) -> str:
    """What the service serves a file as: stdout.txt and stderr.txt came back text/plain (Azure/azure-sdk-assets,
    python/sdk/batch/azure-batch/tests/recordings/test_batch.pyTestBatchtest_batch_files[sync].json); other .txt
    files the same ([inferred]), anything else as bytes."""
    return TEXT if name.lower().endswith(".txt") else OCTET


def _task_files(req: Request) -> TaskFilesOf:
    return TaskFilesOf(req.params["jobId"], req.params["taskId"])


def _node_files(req: Request) -> NodeFilesOf:
    return NodeFilesOf(req.params["poolId"], req.params["nodeId"])


def _url(req: Request, place: Place) -> str:
    """The URL the service lists the files of ``place`` under."""
    owner = place.owner
    if isinstance(owner, TaskFilesOf):
        return f"{req.base}/jobs/{quote(owner.job_id, safe='')}/tasks/{quote(owner.task_id, safe='')}/files"
    return f"{req.base}/pools/{owner.pool_id}/nodes/{owner.node_id}/files"


def _mode(info: FileInfo) -> str:
    return format(info.mode, "o").zfill(7)


def _entry(info: FileInfo, url_base: str) -> dict[str, Any]:
    """One item of a file listing, as the service writes it."""
    item: dict[str, Any] = {"name": info.name, "url": f"{url_base}/{quote(info.name, safe='')}",
                            "isDirectory": info.is_directory}
    if not info.is_directory:
        # contentLength is a string on the service; creationTime is not returned for Linux nodes.
        item["properties"] = {"lastModified": iso(info.modified), "contentLength": str(info.size),
                              "contentType": _content_type(info.name), "fileMode": _mode(info)}
    return item


def _list(server: Server, req: Request, of: FilesOf) -> Response:
    place, infos = files.list_files(server.account, server.runtime, of, req.flag("recursive"))
    url_base = _url(req, place)
    return listing(req, [_entry(info, url_base) for info in infos], "files", ("name",))


def _headers(req: Request, place: Place, info: FileInfo) -> dict[str, str]:
    """A file's properties as the service writes them (the recording above): isdirectory "False"/"True", the
    file's whole URL percent-encoded ("https%3A%2F%2F...%2Fstdout.txt"), and no ETag."""
    return {"Last-Modified": wire.rfc1123(info.modified), "ocp-creation-time": wire.rfc1123(info.created),
            "ocp-batch-file-isdirectory": "True" if info.is_directory else "False",
            "ocp-batch-file-url": quote(f"{_url(req, place)}/{quote(req.params['filePath'], safe='/')}", safe=""),
            "ocp-batch-file-mode": _mode(info)}


def _content_type_of(req: Request, info: FileInfo) -> str:
    return OCTET if info.is_directory else _content_type(req.params["filePath"])


def _properties(server: Server, req: Request, of: FilesOf) -> Response:
    """A file's properties as headers (HEAD); a directory has none."""
    place, info = files.file_info(server.account, server.runtime, of, req.params["filePath"])
    headers = _headers(req, place, info)
    headers["Content-Length"] = str(0 if info.is_directory else info.size)
    return Response(200, None, headers, _content_type_of(req, info))


def _download(server: Server, req: Request, of: FilesOf) -> Response:
    """A file's properties as headers with its bytes (a directory: none)."""
    place, info, data = files.read_file(server.account, server.runtime, of, req.params["filePath"])
    if not info.is_directory:
        data = _apply_range(req.headers.get("ocp-range"), data)
    return Response(200, data, _headers(req, place, info), _content_type_of(req, info))


def _apply_range(header: str | None, data: bytes) -> bytes:
    """ocp-range 'bytes=a-b' answered with 200 and the slice (the SDK accepts only 200)."""
    if not header:
        return data
    spec = header.strip().lower()
    if not spec.startswith("bytes="):
        raise service_error(400, "InvalidHeaderValue", HeaderName="ocp-range", HeaderValue=header)
    first, _, last = spec[6:].partition("-")
    try:
        if first == "":
            return data[-int(last):] if last else data
        start = int(first)
        end = int(last) if last else len(data) - 1
    except ValueError:
        raise service_error(400, "InvalidHeaderValue", HeaderName="ocp-range", HeaderValue=header) from None
    if start > end or (start >= len(data) and data):
        raise service_error(416, "InvalidRange")
    return data[start:end + 1]


def _delete(server: Server, req: Request, of: FilesOf) -> Response:
    files.delete_file(server.account, server.runtime, of, req.params["filePath"], req.flag("recursive"))
    return Response(200)


@route("GET", "jobs/{jobId}/tasks/{taskId}/files")
def list_task_files(server: Server, req: Request) -> Response:
    return _list(server, req, _task_files(req))


@route("GET", "jobs/{jobId}/tasks/{taskId}/files/{filePath*}")
def download_task_file(server: Server, req: Request) -> Response:
    return _download(server, req, _task_files(req))


@route("HEAD", "jobs/{jobId}/tasks/{taskId}/files/{filePath*}")
def task_file_properties(server: Server, req: Request) -> Response:
    return _properties(server, req, _task_files(req))


@route("DELETE", "jobs/{jobId}/tasks/{taskId}/files/{filePath*}")
def delete_task_file(server: Server, req: Request) -> Response:
    return _delete(server, req, _task_files(req))


@route("GET", "pools/{poolId}/nodes/{nodeId}/files")
def list_node_files(server: Server, req: Request) -> Response:
    return _list(server, req, _node_files(req))


@route("GET", "pools/{poolId}/nodes/{nodeId}/files/{filePath*}")
def download_node_file(server: Server, req: Request) -> Response:
    return _download(server, req, _node_files(req))


@route("HEAD", "pools/{poolId}/nodes/{nodeId}/files/{filePath*}")
def node_file_properties(server: Server, req: Request) -> Response:
    return _properties(server, req, _node_files(req))


@route("DELETE", "pools/{poolId}/nodes/{nodeId}/files/{filePath*}")
def delete_node_file(server: Server, req: Request) -> Response:
    return _delete(server, req, _node_files(req))
