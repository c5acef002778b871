"""The files on a node's disk that the file routes ask about: listed, described, read and deleted.

Paths come relative to a directory the service found (a task's directory, a node's root). Nothing
outside that directory is ever touched, and anything missing answers the service's 404 FileNotFound,
also when it disappears while we look at it: a node that leaves its pool takes its directory along
on a worker thread (executor.py), with no lock that would keep a file request out meanwhile.
"""

from __future__ import annotations

import os
import shutil
import stat
from datetime import datetime, timezone

from ..service.errors import conflict, not_found
from ..service.work import FileInfo


def resolve(directory: str, relative: str) -> str:
    """Absolute path of ``relative`` inside ``directory``; 404 for anything outside it or missing."""
    path = os.path.normpath(os.path.join(directory, relative.replace("\\", "/").lstrip("/")))
    if path != directory and not path.startswith(directory.rstrip(os.sep) + os.sep):
        raise not_found("FileNotFound")
    if not os.path.lexists(path):
        raise not_found("FileNotFound")
    return path


def _info(name: str, path: str) -> FileInfo:
    """What ``path`` is, named ``name``; FileNotFoundError once it is gone (a broken link is gone too)."""
    st = os.stat(path)
    return FileInfo(name=name, is_directory=stat.S_ISDIR(st.st_mode), size=st.st_size, mode=st.st_mode,
                    modified=datetime.fromtimestamp(st.st_mtime, timezone.utc),
                    created=datetime.fromtimestamp(st.st_ctime, timezone.utc))


def _paths(directory: str, recursive: bool) -> list[tuple[str, str]]:
    """(name relative to ``directory`` with "/", absolute path) of what it holds: each level's directories
    first, then its files, both sorted by name; none if ``directory`` is gone."""
    found: list[tuple[str, str]] = []
    if not recursive:
        try:
            names = sorted(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [(name, os.path.join(directory, name)) for name in names]
    for dirpath, dirnames, filenames in os.walk(directory):   # what vanishes while it walks is left out
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            path = os.path.join(dirpath, name)
            found.append((os.path.relpath(path, directory).replace(os.sep, "/"), path))
    return found


def list_files(directory: str, recursive: bool) -> list[FileInfo]:
    """What ``directory`` holds (everything below it if ``recursive``); nothing if it does not exist."""
    infos: list[FileInfo] = []
    for name, path in _paths(directory, recursive):
        try:
            infos.append(_info(name, path))
        except FileNotFoundError:   # deleted since it was listed
            continue
    return infos


def file_info(directory: str, relative: str) -> FileInfo:
    """The file or directory ``relative`` names inside ``directory``."""
    try:
        return _info(relative, resolve(directory, relative))
    except FileNotFoundError:
        raise not_found("FileNotFound") from None


def read_file(directory: str, relative: str) -> tuple[FileInfo, bytes]:
    """What ``file_info`` answers, with the file's bytes (none for a directory)."""
    path = resolve(directory, relative)
    try:
        info = _info(relative, path)
        if info.is_directory:
            return info, b""
        with open(path, "rb") as fh:
            return info, fh.read()
    except FileNotFoundError:
        raise not_found("FileNotFound") from None


def delete_file(directory: str, relative: str, recursive: bool) -> None:
    """Delete the file ``relative`` inside ``directory``; a directory only with ``recursive`` (else 409)."""
    path = resolve(directory, relative)
    if os.path.isdir(path):
        if not recursive:
            raise conflict("OperationInvalidForCurrentState", "The directory is not empty; use recursive=true.")
        # What another remover (the node leaving) takes meanwhile is gone all the same.
        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        raise not_found("FileNotFound") from None
