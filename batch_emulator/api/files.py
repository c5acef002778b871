"""Task and node files: list (optionally recursive), properties (HEAD), download, delete.

Task file paths are relative to the task directory (stdout.txt, wd/out.txt); node file
paths are relative to the node root (workitems/..., shared/..., startup/...).
Files go with their node, as on the service: once the node a task ran on has left its pool
(shrink or pool delete), the task's files answer 404 NodeNotFound, and the node's own files
404 NodeNotFound (PoolNotFound once its pool is gone).
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from ..service import tasks
from ..service.errors import conflict, not_found, service_error
from ..service.state import iso
from . import wire
from .http import Request, Response, Server, listing, route

OCTET = "application/octet-stream"
TEXT = "text/plain"


@dataclass(frozen=True)
class _Files:
    """Where a request's files are: the directory on the node, and the URL the service lists them under."""
    directory: str
    url: str


def _content_type(name: str) -> str:
    """What the service serves a file as: stdout.txt and stderr.txt came back text/plain (Azure/azure-sdk-assets,
    python/sdk/batch/azure-batch/tests/recordings/test_batch.pyTestBatchtest_batch_files[sync].json); other .txt
    files the same ([inferred]), anything else as bytes."""
    return TEXT if name.lower().endswith(".txt") else OCTET


def _task_files(server: Server, req: Request) -> _Files:
    files = tasks.task_files(server.account, req.params["jobId"], req.params["taskId"])
    url = f"{req.base}/jobs/{quote(files.job_id, safe='')}/tasks/{quote(files.task_id, safe='')}/files"
    return _Files(files.directory, url)


def _node_files(server: Server, req: Request) -> _Files:
    node_id, root = tasks.node_root(server.account, req.params["poolId"], req.params["nodeId"])
    return _Files(root, f"{req.base}/pools/{req.params['poolId']}/nodes/{node_id}/files")


def _resolve(base: str, relative: str) -> str:
    """Absolute path of ``relative`` inside ``base``; 404 for anything outside or missing."""
    path = os.path.normpath(os.path.join(base, relative.replace("\\", "/").lstrip("/")))
    if path != base and not path.startswith(base.rstrip(os.sep) + os.sep):
        raise not_found("FileNotFound")
    if not os.path.lexists(path):
        raise not_found("FileNotFound")
    return path


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, timezone.utc)


def _entry(name: str, path: str, url_base: str) -> dict[str, Any]:
    """One item of a file listing, as the service writes it."""
    st = os.stat(path)
    is_dir = stat.S_ISDIR(st.st_mode)
    item: dict[str, Any] = {"name": name, "url": f"{url_base}/{quote(name, safe='')}", "isDirectory": is_dir}
    if not is_dir:
        # contentLength is a string on the service; creationTime is not returned for Linux nodes.
        item["properties"] = {"lastModified": iso(_mtime(st)), "contentLength": str(st.st_size),
                              "contentType": _content_type(name), "fileMode": format(st.st_mode, "o").zfill(7)}
    return item


def _list(req: Request, files: _Files) -> Response:
    base, url_base = files.directory, files.url
    entries: list[dict[str, Any]] = []
    if os.path.isdir(base):
        if req.flag("recursive"):
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames.sort()
                for name in dirnames + sorted(filenames):
                    path = os.path.join(dirpath, name)
                    entries.append(_entry(os.path.relpath(path, base).replace(os.sep, "/"), path, url_base))
        else:
            for name in sorted(os.listdir(base)):
                entries.append(_entry(name, os.path.join(base, name), url_base))
    return listing(req, entries, "files", ("name",))


def _properties(req: Request, files: _Files, with_body: bool) -> Response:
    """A file's properties as headers (HEAD), with its bytes too (GET); a directory has none."""
    path = _resolve(files.directory, req.params["filePath"])
    st = os.stat(path)
    is_dir = stat.S_ISDIR(st.st_mode)
    # As the service writes them (the recording above): isdirectory "False"/"True", the file's whole URL
    # percent-encoded ("https%3A%2F%2F...%2Fstdout.txt"), and no ETag.
    content_type = OCTET if is_dir else _content_type(req.params["filePath"])
    headers: dict[str, str] = {"Last-Modified": wire.rfc1123(_mtime(st)),
               "ocp-creation-time": wire.rfc1123(datetime.fromtimestamp(st.st_ctime, timezone.utc)),
               "ocp-batch-file-isdirectory": "True" if is_dir else "False",
               "ocp-batch-file-url": quote(f"{files.url}/{quote(req.params['filePath'], safe='/')}", safe=""),
               "ocp-batch-file-mode": format(st.st_mode, "o").zfill(7)}
    if not with_body:
        headers["Content-Length"] = str(0 if is_dir else st.st_size)
        return Response(200, None, headers, content_type)
    data = b""
    if not is_dir:
        with open(path, "rb") as fh:
            data = fh.read()
        data = _apply_range(req.headers.get("ocp-range"), data)
    return Response(200, data, headers, content_type)


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


def _delete(req: Request, base: str) -> Response:
    path = _resolve(base, req.params["filePath"])
    if os.path.isdir(path):
        if not req.flag("recursive"):
            raise conflict("OperationInvalidForCurrentState", "The directory is not empty; use recursive=true.")
        shutil.rmtree(path, ignore_errors=True)
    else:
        os.unlink(path)
    return Response(200)


@route("GET", "jobs/{jobId}/tasks/{taskId}/files")
def list_task_files(server: Server, req: Request) -> Response:
    return _list(req, _task_files(server, req))


@route("GET", "jobs/{jobId}/tasks/{taskId}/files/{filePath*}")
def download_task_file(server: Server, req: Request) -> Response:
    return _properties(req, _task_files(server, req), with_body=True)


@route("HEAD", "jobs/{jobId}/tasks/{taskId}/files/{filePath*}")
def task_file_properties(server: Server, req: Request) -> Response:
    return _properties(req, _task_files(server, req), with_body=False)


@route("DELETE", "jobs/{jobId}/tasks/{taskId}/files/{filePath*}")
def delete_task_file(server: Server, req: Request) -> Response:
    return _delete(req, _task_files(server, req).directory)


@route("GET", "pools/{poolId}/nodes/{nodeId}/files")
def list_node_files(server: Server, req: Request) -> Response:
    return _list(req, _node_files(server, req))


@route("GET", "pools/{poolId}/nodes/{nodeId}/files/{filePath*}")
def download_node_file(server: Server, req: Request) -> Response:
    return _properties(req, _node_files(server, req), with_body=True)


@route("HEAD", "pools/{poolId}/nodes/{nodeId}/files/{filePath*}")
def node_file_properties(server: Server, req: Request) -> Response:
    return _properties(req, _node_files(server, req), with_body=False)


@route("DELETE", "pools/{poolId}/nodes/{nodeId}/files/{filePath*}")
def delete_node_file(server: Server, req: Request) -> Response:
    return _delete(req, _node_files(server, req).directory)
