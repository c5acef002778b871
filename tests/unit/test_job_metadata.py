"""What a job records about its preparation task, and how a re-run compares it (toolkit/jobs.py)."""

from azure.batch import models

from config_resources import ENV_FILE_VARIABLE, pool_settings, read_settings
from tests.conftest import VALID_ENV
from toolkit.jobs import (
    DIFFERENT_COMMAND,
    PREPARATION_METADATA,
    REPOSITORY_METADATA,
    preparation_metadata,
    preparation_problem,
)


def settings(**values):
    return pool_settings(read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV, **values}))


def job_made_with(made_with, recorded=True):
    """The job a run with `made_with` settings made; recorded=False: one made before the metadata was."""
    metadata = [models.BatchMetadataItem(name=name, value=value)
                for name, value in preparation_metadata(made_with).items()] if recorded else None
    return models.BatchJob(metadata=metadata,
                           job_preparation_task=models.BatchJobPreparationTask(command_line=made_with.cmd_prep_task))


def test_the_repository_is_recorded_without_its_credentials():
    recorded = preparation_metadata(settings(REPOSITORY_URL="https://me:s3cret@example.org/me/repo.git"))
    assert recorded[REPOSITORY_METADATA] == "https://example.org/me/repo.git"
    assert "s3cret" not in "".join(recorded.values())
    assert REPOSITORY_METADATA not in preparation_metadata(settings(CMD_PREP_TASK="/bin/true"))


def test_the_same_settings_reuse_the_job():
    assert preparation_problem(job_made_with(settings()), settings()) is None
    assert preparation_problem(job_made_with(settings(), recorded=False), settings()) is None


def test_another_repository_is_named_from_the_metadata():
    old = job_made_with(settings(REPOSITORY_URL="https://example.org/me/old.git"))
    assert preparation_problem(old, settings()) == (
        f"its preparation task clones https://example.org/me/old.git, not {VALID_ENV['REPOSITORY_URL']} "
        "(REPOSITORY_URL)")
    # The command line is not read when there is metadata: the hash tells the difference.
    old.job_preparation_task.command_line = settings().cmd_prep_task
    assert preparation_problem(old, settings()) is not None


def test_other_credentials_or_another_command_are_a_different_command():
    with_token = job_made_with(settings(REPOSITORY_URL="https://me:token@example.org/me/mpi-demo.git"))
    assert preparation_problem(with_token, settings()) == DIFFERENT_COMMAND
    assert preparation_problem(job_made_with(settings()), settings(CMD_PREP_TASK="/bin/true")) == DIFFERENT_COMMAND


def test_a_job_made_before_the_metadata_is_compared_by_its_command_line():
    old = job_made_with(settings(REPOSITORY_URL="https://example.org/me/old.git"), recorded=False)
    assert PREPARATION_METADATA not in {item.name for item in old.metadata or []}
    assert preparation_problem(old, settings()) == (
        f"its preparation task clones https://example.org/me/old.git, not {VALID_ENV['REPOSITORY_URL']} "
        "(REPOSITORY_URL)")
