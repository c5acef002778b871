"""Jobs for the scripts: the exact clean-up commands they print, the metadata a job records about its
preparation task, and the check of an existing job before create_pool_job.py creates anything (another
pool, a finished job, another preparation task).

A job records in its metadata the repository its default preparation task clones (without credentials:
anyone with read access to the account reads metadata), the content hash of a packed local folder it
unpacks instead, and a hash of the whole preparation command line (any difference, credentials included,
changes it; a packed folder's command names its archive by content hash). A later run compares those,
not the bash text; a job made before they were recorded is compared by its command line.

The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from toolkit.batch import wire_value
from toolkit.checked import PoolSettings
from toolkit.commands import default_cmd_prep_task, unpack_cmd_prep_task
from toolkit.errors import ToolkitError

if TYPE_CHECKING:
    from azure.batch import BatchClient, models

Resource = TypeVar("Resource")


def get_or_none(getter: Callable[..., Resource], resource_id: str, fields: list[str]) -> Resource | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return getter(resource_id, select=fields)
    except ResourceNotFoundError:
        return None


def delete_pool_command(pool_id: str) -> str:
    """The exact command that deletes a pool (the same as the README's)."""
    return f"python3 delete_pool_job.py --pool_id {pool_id} --yes"


def delete_job_command(job_id: str) -> str:
    """The exact command that deletes a job (the same as the README's)."""
    return f"python3 delete_pool_job.py --job_id {job_id} --yes"


JOB_FIELDS = ["id", "state", "poolInfo", "metadata", "jobPreparationTask"]
# Metadata of a job made by create_pool_job.py: what its preparation task does.
REPOSITORY_METADATA = "mpi-toolkit-repository"              # REPOSITORY_URL without credentials
PROGRAM_METADATA = "mpi-toolkit-program-sha256"             # a packed local folder's content (toolkit/package.py)
PREPARATION_METADATA = "mpi-toolkit-preparation-sha256"     # of the whole preparation command line
# Jobs made before the metadata was recorded: the repository read from the default command line.
_CLONED = re.compile(r'git clone --quiet "([^"]*)" repo')


def shown_url(url: str) -> str:
    """A repository URL without the credentials it may hold."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    return parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else "")).geturl()


def clones_repository(settings: PoolSettings) -> bool:
    """Whether the preparation task is the default one, which clones REPOSITORY_URL (or unpacks it, a packed
    local folder) and runs its install.sh (a CMD_PREP_TASK of the user's may clone anything, or nothing)."""
    return settings.cmd_prep_task == default_cmd_prep_task(settings.repository) or unpacks_folder(settings)


def unpacks_folder(settings: PoolSettings) -> bool:
    """Whether the preparation task unpacks a local folder that create_pool_job.py packed (toolkit/package.py)."""
    return bool(settings.program_sha256) and settings.cmd_prep_task == unpack_cmd_prep_task(settings.program_sha256)


def preparation_hash(command_line: str) -> str:
    return hashlib.sha256(command_line.encode()).hexdigest()


def preparation_metadata(settings: PoolSettings) -> dict[str, str]:
    """The metadata a new job records about its preparation task (create_pool_job.build_job)."""
    recorded = {PREPARATION_METADATA: preparation_hash(settings.cmd_prep_task)}
    if clones_repository(settings):
        recorded[REPOSITORY_METADATA] = shown_url(settings.repository)
    if unpacks_folder(settings):
        recorded[PROGRAM_METADATA] = settings.program_sha256
    return recorded


def preparation_problem(job: models.BatchJob, settings: PoolSettings) -> str | None:
    """What differs between the existing job's preparation task and this run's, in the user's terms, or
    None when they are the same: by the job's metadata, or by its command line for a job made before
    the metadata was recorded."""
    recorded = {item.name: item.value for item in job.metadata or []}
    if PREPARATION_METADATA not in recorded:
        existing = job.job_preparation_task.command_line if job.job_preparation_task else ""
        return None if existing == settings.cmd_prep_task else preparation_difference(existing, settings.cmd_prep_task)
    if recorded[PREPARATION_METADATA] == preparation_hash(settings.cmd_prep_task):
        return None
    old_repository = recorded.get(REPOSITORY_METADATA)
    new_repository = shown_url(settings.repository) if clones_repository(settings) else None
    if old_repository and new_repository and old_repository != new_repository:
        return f"its preparation task clones {old_repository}, not {new_repository} (REPOSITORY_URL)"
    old_program = recorded.get(PROGRAM_METADATA)
    if old_program and unpacks_folder(settings) and old_program != settings.program_sha256:
        return (f"its preparation task unpacks {new_repository} with content sha256 {old_program[:12]}, not "
                f"{settings.program_sha256[:12]} (the folder changed since the job was made)")
    return DIFFERENT_COMMAND


DIFFERENT_COMMAND = "its preparation command is not this run's (CMD_PREP_TASK, or REPOSITORY_URL in the default one)"


def preparation_difference(existing: str, wanted: str) -> str:
    """What differs between the command line of a job made before the metadata was recorded and this
    run's, in the user's terms."""
    old_repo, new_repo = _CLONED.search(existing), _CLONED.search(wanted)
    if old_repo and new_repo and old_repo.group(1) != new_repo.group(1) and \
            existing.replace(old_repo.group(1), "") == wanted.replace(new_repo.group(1), ""):
        return (f"its preparation task clones {shown_url(old_repo.group(1))}, "
                f"not {shown_url(new_repo.group(1))} (REPOSITORY_URL)")
    return DIFFERENT_COMMAND


def check_existing_job(client: BatchClient, settings: PoolSettings, job_id: str,
                       pool_id: str) -> models.BatchJob | None:
    """The existing job when this run may reuse it, None when there is none; refuses, before anything is
    created, a job on another pool, one that takes no tasks, or one whose preparation task differs."""
    job = get_or_none(client.get_job, job_id, JOB_FIELDS)
    if job is None:
        return None
    job_pool = job.pool_info.pool_id if job.pool_info else None
    if (job_pool or "").lower() != pool_id.lower():
        raise ToolkitError(f"Job [{job_id}] already exists on pool [{job_pool}], not [{pool_id}]; nothing was "
                           f"created. Use another --job_id, or the job's own pool (--pool_id {job_pool}).")
    if wire_value(job.state) != "active":
        raise ToolkitError(f"Job [{job_id}] already exists and is {wire_value(job.state)}: it takes no new tasks. "
                           f"Use another --job_id, or delete it: {delete_job_command(job_id)}")
    difference = preparation_problem(job, settings)
    if difference is not None:
        raise ToolkitError(f"Job [{job_id}] already exists but {difference}: its tasks would not run what you "
                           f"asked for. Delete it ({delete_job_command(job_id)}) "
                           "and run this again, or use another --job_id.")
    return job
