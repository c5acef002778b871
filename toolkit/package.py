"""A local folder as the program: create_pool_job.py packs REPOSITORY_URL when it names a folder, uploads
the archive once to the blob container, and gives it to the job preparation task as a resource file.

Why not let the nodes clone the path: they cannot see this machine's disk, and for private code the
alternative is a token in REPOSITORY_URL, which lands in the job's command line that anyone with read
access to the Batch account can read. The archive is read through a read-only SAS of that one blob.

- What is packed: toolkit/repository.py's local_program (a git work tree's tracked and
  untracked-but-not-ignored files as they are now; a bare repository's HEAD, through `git archive`; a
  plain folder's every file but .git).
- The archive is deterministic: names sorted, times, owners and modes fixed (0644, or 0755 for a file
  with an executable bit), gzip without a name or time. Its identity is the sha256 of the uncompressed
  tar, so the same content gives the same blob name and the same preparation command line (and a
  changed folder a new one, which the job's drift check tells apart, toolkit/jobs.py).
- The blob is content-addressed, programs/<sha256>.tar.gz: uploaded only when it is not there yet
  (never overwritten), so the same content again reuses it.
- The nodes' link lasts as long as nodes may join the job, within what the credential allows:
  with AZURE_STORAGE_KEY a service SAS of KEY_LINK_LIFETIME; keyless (Microsoft Entra ID) a
  user-delegation SAS, at most 7 days (the service's limit on the delegation key); a configured SAS
  as long as it lasts. A job's preparation task cannot be changed once made: after the link expires,
  nodes that join fail their preparation, and a new job is needed. The scripts say so.

The azure packages are imported inside functions so that `--help` stays fast.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import hashlib
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.checked import Storage
from toolkit.commands import program_archive_name
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.repository import PROBE_SECONDS, LocalProgram, run_git, usage_error
from toolkit.storage import (
    BLOB_CONNECT_SECONDS,
    BLOB_READ_SECONDS,
    BLOB_RETRIES,
    SAS_CLOCK_SKEW,
    check_container_sas,
    user_delegation_key,
)
from toolkit.values import container_parts, sas_token_expiry

if TYPE_CHECKING:
    from azure.batch import models
    from azure.storage.blob import UserDelegationKey

# Where the archives go in the blob container.
PROGRAMS_PREFIX = "programs/"
# 1980-01-01 UTC, the time of every file in the archive: the same bytes whenever the content is the same.
FIXED_MTIME = 315532800
# How long the nodes' read link lasts with AZURE_STORAGE_KEY (a job may take nodes for a long time).
KEY_LINK_LIFETIME = datetime.timedelta(days=365)
# Keyless: a user delegation key, and every SAS it signs, lasts at most 7 days from now (the service's limit).
KEYLESS_LINK_LIFETIME = datetime.timedelta(days=7) - datetime.timedelta(minutes=1)
# How long the upload's own SAS (read, create, write) lasts.
UPLOAD_SAS_LIFETIME = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class ProgramPackage:
    """A packed local folder on this machine, ready to upload to `storage`."""
    folder: str                 # REPOSITORY_URL: shown to the user, never to a node
    content_sha256: str         # of the uncompressed tar: the content's identity
    archive: Path               # the tar.gz, in `workspace`
    files: int
    storage: Storage            # the blob container it goes to (BLOB_CONTAINER_URL)
    # Removed with this object (or at exit): the archive lives as long as the run needs it.
    workspace: tempfile.TemporaryDirectory[str] = field(repr=False, compare=False)

    @property
    def blob_name(self) -> str:
        return f"{PROGRAMS_PREFIX}{self.content_sha256}.tar.gz"


@dataclass(frozen=True)
class ProgramLink:
    """The uploaded archive's URL with a read SAS, for the preparation task's resource file."""
    url: str
    expiry: datetime.datetime | None    # None: a configured SAS that does not say


def pack_program(program: LocalProgram, storage: Storage, timeout: float = PROBE_SECONDS) -> ProgramPackage:
    """Pack `program`'s files into a temporary program.tar.gz (deterministic: see the module's docstring)."""
    workspace = tempfile.TemporaryDirectory(prefix="mpi-program-")
    directory = Path(workspace.name)
    with tempfile.TemporaryDirectory(prefix="head-", dir=directory) as exported:
        root = export_head(program.folder, Path(exported), timeout) if program.from_head else Path(program.folder)
        tar_path, archive = directory / "program.tar", directory / "program.tar.gz"
        files = write_tar(root, program.names, tar_path)
    digest = hashlib.sha256()
    with open(tar_path, "rb") as tar, open(archive, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
        for block in iter(lambda: tar.read(1 << 20), b""):
            digest.update(block)
            zipped.write(block)
    tar_path.unlink()
    return ProgramPackage(folder=program.folder, content_sha256=digest.hexdigest(), archive=archive, files=files,
                          storage=storage, workspace=workspace)


def export_head(folder: str, target: Path, timeout: float) -> Path:
    """The files of a bare repository's HEAD, written under `target` by `git archive` (it has no work tree)."""
    tar_path = target / "head.tar"
    done = run_git(["-C", folder, "archive", "--format=tar", "-o", str(tar_path), "HEAD"], timeout)
    if done is None or done.returncode != 0:
        reason = done.reason if done else f"no answer within {timeout:g} s"
        raise usage_error(f"REPOSITORY_URL {folder}: git cannot export its HEAD ({reason}).")
    tree = target / "tree"
    with tarfile.open(tar_path) as archive:
        archive.extractall(tree, filter="tar")  # refuses absolute and escaping names
    tar_path.unlink()
    return tree


def tar_entry(root: Path, name: str) -> tarfile.TarInfo | None:
    """The archive's entry for root/name with fixed time, owner and mode; None for what is neither a file
    nor a symbolic link (a git submodule's folder)."""
    status = os.lstat(root / name)
    entry = tarfile.TarInfo(name)
    entry.mtime, entry.uid, entry.gid, entry.uname, entry.gname = FIXED_MTIME, 0, 0, "", ""
    if stat.S_ISLNK(status.st_mode):
        entry.type, entry.linkname, entry.mode = tarfile.SYMTYPE, os.readlink(root / name), 0o777
    elif stat.S_ISREG(status.st_mode):
        entry.size, entry.mode = status.st_size, 0o755 if status.st_mode & 0o111 else 0o644
    else:
        return None
    return entry


def write_tar(root: Path, names: tuple[str, ...], tar_path: Path) -> int:
    """Write the (sorted) `names` under `root` as an uncompressed tar; returns how many went in."""
    count = 0
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(names):
            entry = tar_entry(root, name)
            if entry is None:
                continue
            if entry.isfile():
                with open(root / name, "rb") as data:
                    archive.addfile(entry, data)
            else:
                archive.addfile(entry)
            count += 1
    return count


def describe_package(package: ProgramPackage) -> str:
    size = package.archive.stat().st_size
    shown = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
    return (f"Packed REPOSITORY_URL {package.folder} for the nodes: {package.files} files, {shown} "
            f"(content sha256 {package.content_sha256[:12]}).")


def blob_url(package: ProgramPackage) -> str:
    return f"{package.storage.container_url}/{package.blob_name}"


def sign_blob(package: ProgramPackage, permission: str, expiry: datetime.datetime,
              delegation: UserDelegationKey | None) -> str:
    """A SAS for the package's blob only: signed with AZURE_STORAGE_KEY, or with a user delegation key;
    the configured container SAS when there is neither."""
    from azure.storage.blob import generate_blob_sas

    storage = package.storage
    parts = container_parts(storage.container_url)
    if parts is None:  # storage() has checked the URL: cannot happen
        raise ToolkitError(f"{storage.container_url} is not a container URL.", ExitStatus.USAGE)
    account, container = parts
    start = datetime.datetime.now(datetime.timezone.utc) - SAS_CLOCK_SKEW
    if storage.key:
        return generate_blob_sas(account, container, package.blob_name, account_key=storage.key,
                                 permission=permission, start=start, expiry=expiry)
    if delegation is not None:
        return generate_blob_sas(account, container, package.blob_name, user_delegation_key=delegation,
                                 permission=permission, start=start, expiry=expiry)
    return storage.sas_token


def upload_program(package: ProgramPackage) -> ProgramLink:
    """Upload the archive unless the container has it already (same name, same content); returns the
    nodes' read link."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobClient, ExponentialRetry

    storage = package.storage
    check_container_sas(storage, "rcw", "the program's upload and the nodes' download of it")
    now = datetime.datetime.now(datetime.timezone.utc)
    expiry = now + (KEY_LINK_LIFETIME if storage.key else KEYLESS_LINK_LIFETIME)
    delegation = None if storage.key or storage.sas_token else \
        user_delegation_key(storage, now - SAS_CLOCK_SKEW, expiry)  # one key signs both SAS
    upload_sas = sign_blob(package, "rcw", min(expiry, now + UPLOAD_SAS_LIFETIME), delegation)
    retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=BLOB_RETRIES, random_jitter_range=1)
    blob = BlobClient.from_blob_url(f"{blob_url(package)}?{upload_sas}", retry_policy=retry,
                                    connection_timeout=BLOB_CONNECT_SECONDS, read_timeout=BLOB_READ_SECONDS)
    with blob, refused_upload(package):
        if blob.exists():
            print(f"The program is already in the container as {package.blob_name} (same content); reusing it.")
        else:
            try:
                with open(package.archive, "rb") as data:
                    blob.upload_blob(data, overwrite=False)  # never replaces what another run uploaded
                print(f"Uploaded the program to the container as {package.blob_name}.")
            except ResourceExistsError:
                print(f"The program was just uploaded as {package.blob_name} by another run; reusing it.")
    if not (storage.key or delegation):
        return ProgramLink(f"{blob_url(package)}?{storage.sas_token}", sas_token_expiry(storage.sas_token))
    return ProgramLink(f"{blob_url(package)}?{sign_blob(package, 'r', expiry, delegation)}", expiry)


@contextlib.contextmanager
def refused_upload(package: ProgramPackage) -> Iterator[None]:
    """A storage service that refuses the credential (403) is one line naming it, exit 2, before anything
    is created (the upload comes before the pool and the job)."""
    from azure.core.exceptions import HttpResponseError

    try:
        yield
    except HttpResponseError as err:
        if err.status_code != 403:
            raise
        code = getattr(err, "error_code", None) or 403  # set by azure-storage-blob from x-ms-error-code
        raise ToolkitError(f"The storage service refused the upload of the program to {package.storage.container_url} "
                           f"({code}): check BLOB_CONTAINER_URL's SAS (it needs racw) or AZURE_STORAGE_KEY; "
                           "nothing was created.", ExitStatus.USAGE) from None


def link_note(storage: Storage, link: ProgramLink) -> str:
    """The line that says how long nodes can download the program, and what then."""
    until = f"until {link.expiry:%Y-%m-%d %H:%M} UTC" if link.expiry else "as long as the configured SAS lasts"
    then = ("nodes that join the pool after that fail their preparation task: then make a new job "
            "(create_pool_job.py with another --job_id).")
    if storage.key:
        return f"Note: the nodes download the program with a read-only link of its blob {until}; {then}"
    if storage.sas_token:
        return f"Note: the nodes download the program with the configured container SAS, {until}; {then}"
    return (f"Note: keyless (Microsoft Entra ID), the nodes download the program with a user-delegation SAS, "
            f"which lasts at most 7 days: {until}; {then} Set AZURE_STORAGE_KEY for a link that lasts "
            f"{KEY_LINK_LIFETIME.days} days.")


def share_program(package: ProgramPackage, dry_run: bool) -> str:
    """Upload the archive (unless the container has it) and say how long the nodes can download it; returns
    the URL for the preparation task's resource file. A dry run uploads nothing and shows a placeholder SAS."""
    if dry_run:
        print(f"Dry run: would upload the program as {package.blob_name} unless the container has it already.")
        return f"{blob_url(package)}?<read SAS, made when the job is created>"
    link = upload_program(package)
    print(link_note(package.storage, link))
    return link.url


def program_resource_file(content_sha256: str, url: str) -> models.ResourceFile:
    """The preparation task's resource file: the archive, in its working directory, where `repo` is unpacked."""
    from azure.batch import models

    return models.ResourceFile(http_url=url, file_path=program_archive_name(content_sha256))
