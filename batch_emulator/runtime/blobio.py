"""Resource-file downloads and output-file uploads, as a node agent does them.

Failures become the service's task failureInfo codes (Batch TaskFailureInformationCodes):
resource files -> BlobNotFound / BlobAccessDenied / BlobDownloadMiscError /
ResourceContainerAccessDenied / ResourceContainerListMiscError; output files ->
FileUploadContainerNotFound / FileUploadAccessDenied / FileUploadMiscError.
SAS tokens never reach a log: every URL or error text goes through ``redact`` (toolkit/redaction.py).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ExponentialRetry

from toolkit.redaction import redact

from ..service.states import ErrorCategory

DOWNLOAD_TIMEOUT = 60


class TaskFailure(Exception):
    """A pre-processing or upload failure, carrying the failureInfo the service would show."""

    def __init__(self, code: str, message: str, **details: object) -> None:
        super().__init__(f"{code}: {message}")
        self.info: dict[str, Any] = {"category": ErrorCategory.USER_ERROR, "code": code, "message": message,
                                     "details": [{"name": k, "value": redact(str(v))} for k, v in details.items()]}


def _status(exc: Exception) -> int | None:
    """The HTTP status an SDK error carries, on itself or on its response (None: it has none)."""
    status: int | None = (getattr(exc, "status_code", None)
                          or getattr(getattr(exc, "response", None), "status_code", None))
    return status


def _container(url: str) -> ContainerClient:
    # The storage SDK's default retry waits 15 s, 45 s, ... (+-3 s jitter); keep failures quick on a laptop.
    return ContainerClient.from_container_url(
        # The storage SDK annotates these two as int; it computes with them as seconds, fractions work.
        url, retry_policy=ExponentialRetry(initial_backoff=0.3, increment_base=1, retry_total=1,  # type: ignore[arg-type]
                                           random_jitter_range=0.2),  # type: ignore[arg-type]
        connection_timeout=10, read_timeout=DOWNLOAD_TIMEOUT)


def _inside(base: str, relative: str) -> str:
    target = os.path.normpath(os.path.join(base, relative))
    if os.path.commonpath([os.path.abspath(base), os.path.abspath(target)]) != os.path.abspath(base):
        raise TaskFailure("ResourceFileCreateFailed", "The resource file path is outside the task directory.",
                          FilePath=relative)
    return target


def _set_mode(path: str, mode: str | None) -> None:
    try:
        os.chmod(path, int(str(mode or "0770"), 8))
    except ValueError:
        pass


def download_resource_files(files: Sequence[dict[str, Any]] | None, directory: str) -> None:
    """Fetch each ResourceFile into ``directory`` (the task's wd, or the shared dir for common files)."""
    for rf in files or []:
        if rf.get("httpUrl"):
            _download_http(rf["httpUrl"], _inside(directory, rf["filePath"]), rf.get("fileMode"))
        elif rf.get("storageContainerUrl"):
            _download_container(rf, directory)
        else:
            raise TaskFailure("ResourceContainerListMiscError",
                              "Miscellaneous error encountered while listing one of the specified Azure Blob "
                              "container(s)", Reason="autoStorageContainerName is not supported by the emulator "
                                                     "(the account has no auto-storage account)")


def _tls_context() -> ssl.SSLContext | None:
    """The certificates an https:// resource file is checked against: those of REQUESTS_CA_BUNDLE when set,
    as for every other blob request of the emulator (the storage SDK uses requests), else the system's.
    It is how a node reaches the local stack's HTTPS Azurite, whose certificate is made for the run."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE")
    return ssl.create_default_context(cafile=bundle) if bundle else None


def _download_http(url: str, target: str, mode: str | None) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT, context=_tls_context()) as response, \
                open(target, "wb") as out:
            shutil.copyfileobj(response, out)
    except urllib.error.HTTPError as exc:
        code = {404: "BlobNotFound", 403: "BlobAccessDenied", 401: "BlobAccessDenied"}.get(exc.code,
                                                                                       "BlobDownloadMiscError")
        messages = {"BlobNotFound": "One of the specified Azure Blob(s) is not found",
                    "BlobAccessDenied": "Access for one of the specified Azure Blob(s) is denied"}
        raise TaskFailure(code, messages.get(code, "Miscellaneous error encountered while downloading one of "
                                                   "the specified Azure Blob(s)"),
                          BlobSource=redact(url), FilePath=target, HttpStatus=exc.code) from None
    except (OSError, ValueError) as exc:
        raise TaskFailure("BlobDownloadMiscError", "Miscellaneous error encountered while downloading one of the "
                                                   "specified Azure Blob(s)",
                          BlobSource=redact(url), FilePath=target, Reason=redact(exc)) from None
    _set_mode(target, mode)


def _download_container(rf: dict[str, Any], directory: str) -> None:
    url = rf["storageContainerUrl"]
    base = _inside(directory, rf.get("filePath") or ".")
    try:
        container = _container(url)
        names = [b.name for b in container.list_blobs(name_starts_with=rf.get("blobPrefix") or None)]
    except (ClientAuthenticationError, HttpResponseError) as exc:
        if _status(exc) in (401, 403):
            raise TaskFailure("ResourceContainerAccessDenied", "Access for one of the specified Azure Blob "
                                                               "container(s) is denied",
                              ContainerUrl=redact(url)) from None
        raise TaskFailure("ResourceContainerListMiscError", "Miscellaneous error encountered while listing one of "
                                                            "the specified Azure Blob container(s)",
                          ContainerUrl=redact(url), Reason=redact(exc)) from None
    except (AzureError, ValueError) as exc:
        raise TaskFailure("ResourceContainerListMiscError", "Miscellaneous error encountered while listing one of "
                                                            "the specified Azure Blob container(s)",
                          ContainerUrl=redact(url), Reason=redact(exc)) from None
    for name in names:
        target = _inside(base, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            with open(target, "wb") as out:
                container.download_blob(name).readinto(out)
        except (AzureError, OSError) as exc:
            raise TaskFailure("BlobDownloadMiscError", "Miscellaneous error encountered while downloading one of "
                                                       "the specified Azure Blob(s)",
                              BlobName=name, Reason=redact(exc)) from None
        _set_mode(target, rf.get("fileMode"))


# ---- output files ----

def _has_wildcard(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _segments_match(pattern_parts: list[str], path_parts: list[str]) -> bool:
    if not pattern_parts:
        return not path_parts
    head, rest = pattern_parts[0], pattern_parts[1:]
    if head == "**":
        return any(_segments_match(rest, path_parts[i:]) for i in range(len(path_parts) + 1))
    if not path_parts:
        return False
    name = path_parts[0]
    if name.startswith(".") and not head.startswith("."):
        return False   # dot-files only when the pattern names them explicitly
    return fnmatch.fnmatchcase(name, head) and _segments_match(rest, path_parts[1:])


def match_output_files(pattern: str, wd: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """Files selected by an OutputFile filePattern: list of (absolute path, blob-relative name).

    No wildcard: the one file, whose blob name is then the destination path itself.
    Wildcards: files under the pattern's fixed leading directory, named relative to it.
    """
    pattern = _expand(pattern, env)   # $VAR is expanded on Linux nodes, from the task's environment
    full = os.path.normpath(os.path.join(wd, pattern))
    if not _has_wildcard(full):
        return [(full, os.path.basename(full))] if os.path.isfile(full) else []
    parts = full.split(os.sep)
    fixed = next(i for i, part in enumerate(parts) if _has_wildcard(part))
    base = os.sep.join(parts[:fixed]) or os.sep
    wanted = parts[fixed:]
    found: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for filename in sorted(filenames):
            path = os.path.join(dirpath, filename)
            relative = os.path.relpath(path, base)
            if _segments_match(wanted, relative.split(os.sep)):
                found.append((path, relative.replace(os.sep, "/")))
    return found


def _expand(pattern: str, env: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: env.get(m.group(1) or m.group(2), m.group(0)), pattern)


def condition_met(condition: str | None, exit_code: int | None) -> bool:
    condition = str(condition or "taskcompletion").lower()
    if condition == "tasksuccess":
        return exit_code == 0
    if condition == "taskfailure":
        return exit_code != 0
    return True


def upload_output_files(output_files: list[dict[str, Any]] | None, wd: str, exit_code: int | None, env: dict[str, str],
                        log_dir: str) -> None:
    """Upload what the patterns select; write fileuploadout.txt/fileuploaderr.txt; raise TaskFailure on error."""
    if not output_files:
        return
    out_lines: list[str] = []
    err_lines: list[str] = []
    failure: TaskFailure | None = None
    for spec in output_files or []:
        if not condition_met((spec.get("uploadOptions") or {}).get("uploadCondition"), exit_code):
            continue
        dest = spec["destination"]["container"]
        prefix = (dest.get("path") or "").strip("/")
        headers = {h["name"]: h.get("value", "") for h in dest.get("uploadHeaders") or [] if h.get("name")}
        matches = match_output_files(spec["filePattern"], wd, env)
        if not matches:
            out_lines.append(f"{_now()} No files matched pattern {spec['filePattern']}")
        for path, relative in matches:
            if _has_wildcard(spec["filePattern"]):
                blob = f"{prefix}/{relative}" if prefix else relative
            else:
                blob = prefix or relative
            try:
                with open(path, "rb") as data:
                    _container(dest["containerUrl"]).upload_blob(blob, data, overwrite=True, headers=headers)
                out_lines.append(f"{_now()} Uploaded {path} to {redact(dest['containerUrl'].split('?')[0])}/{blob}")
            except (AzureError, OSError, ValueError) as exc:
                err_lines.append(f"{_now()} Failed to upload {path} as {blob}: {redact(exc)}")
                failure = failure or _upload_failure(exc, spec["filePattern"])
                break   # the destination refuses; the task fails anyway, do not wait on every file
    _write_log(os.path.join(log_dir, "fileuploadout.txt"), out_lines)
    _write_log(os.path.join(log_dir, "fileuploaderr.txt"), err_lines)
    if failure:
        raise failure


def _upload_failure(exc: Exception, pattern: str) -> TaskFailure:
    status = _status(exc)
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return TaskFailure("FileUploadContainerNotFound", "One of the specified Azure container(s) was not found "
                                                          "while attempting to upload an output file",
                           FilePattern=pattern)
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        return TaskFailure("FileUploadAccessDenied", "Access to the Azure Storage container for uploading output "
                                                     "files was denied", FilePattern=pattern)
    return TaskFailure("FileUploadMiscError", "The compute node hit an unexpected error when uploading output files",
                       FilePattern=pattern, Reason=redact(exc))


def _write_log(path: str, lines: list[str]) -> None:
    if lines or not os.path.exists(path):
        with open(path, "a", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
