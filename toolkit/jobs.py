"""Jobs for the scripts: the exact clean-up commands they print, and the check of an existing job
before create_pool_job.py creates anything (another pool, a finished job, another preparation task).

The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from config_resources import PoolSettings
from toolkit.batch import wire_value
from toolkit.cli import ToolkitError

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
_CLONED = re.compile(r'git clone --quiet "([^"]*)" repo')


def shown_url(url: str) -> str:
    """A repository URL without the credentials it may hold."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    return parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else "")).geturl()


def preparation_difference(existing: str, wanted: str) -> str:
    """What differs between the existing job's preparation command and this run's, in the user's terms."""
    old_repo, new_repo = _CLONED.search(existing), _CLONED.search(wanted)
    if old_repo and new_repo and old_repo.group(1) != new_repo.group(1) and \
            existing.replace(old_repo.group(1), "") == wanted.replace(new_repo.group(1), ""):
        return (f"its preparation task clones {shown_url(old_repo.group(1))}, "
                f"not {shown_url(new_repo.group(1))} (REPOSITORY_URL)")
    return "its preparation command is not this run's (CMD_PREP_TASK, or REPOSITORY_URL in the default one)"


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
    existing = job.job_preparation_task.command_line if job.job_preparation_task else ""
    if existing != settings.cmd_prep_task:
        difference = preparation_difference(existing, settings.cmd_prep_task)
        raise ToolkitError(f"Job [{job_id}] already exists but {difference}: its tasks would not run what you "
                           f"asked for. Delete it ({delete_job_command(job_id)}) "
                           "and run this again, or use another --job_id.")
    return job
