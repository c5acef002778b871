"""create_pool_job.py checks REPOSITORY_URL before any request, real runs and --dry_run alike: a repository
the nodes could not clone or use, or a local folder that could not be packed for them, is refused (exit 2,
one line), and nothing exists afterwards (no pool, no job, no uploaded program)."""

import pytest
from azure.storage.blob import ContainerClient

from tests.git_repos import NODE_FILES, free_port, make_repository, write_files
from tools import local_stack as stack_module

NO_INSTALL = {name: text for name, text in NODE_FILES.items() if name != "demo_azure_batch/install.sh"}


def missing_path(tmp_path):
    return str(tmp_path / "no-such-repo"), "does not exist: set it to the path of a git clone"


def a_file(tmp_path):
    (tmp_path / "program.tar.gz").write_bytes(b"")
    return str(tmp_path / "program.tar.gz"), "is a file, not a folder: set it to the folder of your program"


def plain_folder_without_install_sh(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    write_files(folder, NO_INSTALL)
    return str(folder), "has no demo_azure_batch/install.sh: add it"


def without_install_sh(tmp_path):
    return str(make_repository(tmp_path / "no-install", NO_INSTALL)), "has no demo_azure_batch/install.sh: add it"


def missing_file_url(tmp_path):
    return f"file://{tmp_path}/no-such-repo.git", "cannot be cloned (git: "


def refused_url(tmp_path):
    return f"http://me:SECRET-TOKEN-1@127.0.0.1:{free_port()}/me/repo.git", "refused the connection on port"


BAD_REPOSITORIES = [missing_path, a_file, plain_folder_without_install_sh, without_install_sh, missing_file_url,
                    refused_url]


def program_blobs(stack) -> list[str]:
    container = ContainerClient.from_container_url(stack_module.container_sas_url(stack))
    return [blob.name for blob in container.list_blobs(name_starts_with="programs/")]


def create(run_script, ids, repository, *extra, **env):
    return run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, *extra,
                      env={"REPOSITORY_URL": repository, **env})


@pytest.mark.parametrize("dry_run", [(), ("--dry_run",)], ids=["run", "dry-run"])
@pytest.mark.parametrize("bad", BAD_REPOSITORIES, ids=lambda bad: bad.__name__)
def test_a_bad_repository_is_refused_and_nothing_is_created(run_script, ids, batch, local_stack, tmp_path, bad,
                                                            dry_run):
    repository, message = bad(tmp_path)
    programs = program_blobs(local_stack)
    result = create(run_script, ids, repository, *dry_run)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("Error: REPOSITORY_URL ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert "SECRET-TOKEN-1" not in result.stderr
    assert ids.pool_id not in {pool.id for pool in batch.list_pools(select=["id"])}
    assert ids.job_id not in {job.id for job in batch.list_jobs(select=["id"])}
    assert program_blobs(local_stack) == programs  # nothing uploaded


def test_the_check_comes_before_any_request(run_script, ids, tmp_path):
    # Nothing listens at this endpoint: a request would fail with exit code 1 (Cannot reach the service).
    result = create(run_script, ids, str(tmp_path / "no-such-repo"), AZURE_BATCH_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2 and "does not exist" in result.stderr, result.stderr


def test_uncommitted_changes_are_a_warning_and_the_run_goes_on(run_script, ids, tmp_path):
    repo = make_repository(tmp_path / "changed")
    write_files(repo, {"notes.txt": "not committed\n"})
    result = create(run_script, ids, str(repo), "--dry_run")
    assert result.returncode == 0, result.stderr
    assert (f"Warning: REPOSITORY_URL {repo} has uncommitted changes (notes.txt): the nodes get them, packed as "
            "they are now; commit them to keep a record of what ran.\n") in result.stdout
    assert result.stderr == ""


def test_a_custom_preparation_command_skips_the_check(run_script, ids, tmp_path):
    result = create(run_script, ids, str(tmp_path / "no-such-repo"), "--dry_run", CMD_PREP_TASK="/bin/true")
    assert result.returncode == 0, result.stderr
    assert "REPOSITORY_URL" not in result.stdout + result.stderr
