"""What the scripts say about the settings themselves: typos in the env file, every missing variable at
once, and no .env at all (pointing to .env.example)."""

import pytest

import config_resources
from tests.conftest import REPO_ROOT

TOOLKIT = ("AZURE_BATCH_ACCOUNT", "AZURE_BATCH_ACCESS_KEY", "AZURE_BATCH_ENDPOINT", "BLOB_CONTAINER_URL",
           "REPOSITORY_URL", "NB_NODES", "NB_PROCESSES")


def test_typos_in_the_env_file_are_warned_about_and_the_script_goes_on(run_script, ids, local_stack, tmp_path):
    env_file = tmp_path / "typos.env"
    env_file.write_text(local_stack.env_file.read_text() + "NB_NODE=3\nSTRAT_COMMAND=x\nAZURE_BATCH_ACOUNT=y\n")
    env_file.chmod(0o600)
    result = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--dry_run",
                        env={"BATCH_TOOLKIT_ENV_FILE": str(env_file)})
    assert result.returncode == 0, result.stderr
    for typo, intended in (("NB_NODE", "NB_NODES"), ("STRAT_COMMAND", "START_COMMAND"),
                           ("AZURE_BATCH_ACOUNT", "AZURE_BATCH_ACCOUNT")):
        assert (f"Warning: {env_file} sets {typo}, which the toolkit does not read: did you mean {intended}?"
                in result.stderr)


def test_every_missing_variable_is_named_in_one_line(run_script, tmp_path):
    env_file = tmp_path / "partial.env"
    env_file.write_text("AZURE_BATCH_ENDPOINT=http://127.0.0.1:9\nNB_NODES=two\n")
    env_file.chmod(0o600)
    result = run_script("send_task.py", "--job_id", "j", "--task_id", "t",
                        env={name: None for name in TOOLKIT} | {"BATCH_TOOLKIT_ENV_FILE": str(env_file)})
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: Configuration error: AZURE_BATCH_ACCOUNT is not set.")
    # No AZURE_BATCH_ACCESS_KEY is no problem: the scripts then sign in with Microsoft Entra ID.
    for variable in ("BLOB_CONTAINER_URL is not set", "NB_NODES is 'two'"):
        assert variable in result.stderr
    assert ".env.example" not in result.stderr  # a file was given: it was found


@pytest.mark.skipif(config_resources.DEFAULT_ENV_FILE.exists(), reason=f"{REPO_ROOT}/.env exists in this checkout")
def test_no_env_file_points_to_env_example(run_script):
    result = run_script("create_pool_job.py", "--pool_id", "p", "--job_id", "j",
                        env={name: None for name in TOOLKIT} | {"BATCH_TOOLKIT_ENV_FILE": None})
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "AZURE_BATCH_ACCOUNT is not set" in result.stderr and "REPOSITORY_URL is not set" in result.stderr
    assert f"No .env file was found ({REPO_ROOT}/.env): cp .env.example .env next to the scripts" in result.stderr


# The "Error messages" rows of docs/errors.md added with these checks; each message is asserted by a test of
# test_settings_messages.py, test_lifecycle.py or test_delete_pool_job.py.
README_ROWS = [
    ("No .env file was found (...): cp .env.example .env next to the scripts and fill it in.", 2),
    ("--processes sets mpirun -np of the default START_COMMAND, but START_COMMAND is set", 2),
    ("PROGRAM is '/etc/passwd', not a relative path inside the repository", 2),
    ("does not exist: the task's outputs could not be uploaded. Create it (az storage container create", 2),
    ("already exists on pool [other-pool], not [mpi-pool]; nothing was created", 1),
    ("Delete it (python3 delete_pool_job.py --job_id mpi-job --yes) and run this again", 1),
    ("Refusing to delete without confirmation: there is no terminal to ask in. Add --yes", 2),
    ("is used by other active job(s): other-job. Delete them first (python3 delete_pool_job.py --job_id", 2),
]


@pytest.mark.parametrize("message, exit_code", README_ROWS)
def test_readme_error_table_shows_it(message, exit_code):
    section = (REPO_ROOT / "docs" / "errors.md").read_text().split("\n## Error messages\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if message in line]
    assert rows and rows[0].rstrip().endswith(f"| {exit_code} |"), message
