"""The settings are read once per run (none at import), and every script checks them through the same
toolkit.settings.load_settings: its warnings come also, and above all, when a variable is missing."""

import subprocess
import sys

import pytest

import check_task
import create_pool_job
import delete_pool_job
import send_task
import toolkit.cli
from tests.conftest import REPO_ROOT


@pytest.fixture
def reads(monkeypatch):
    """The number of times the settings were read, counted from now."""
    count = [0]
    read_settings = toolkit.cli.read_settings

    def counting(*args, **kwargs):
        count[0] += 1
        return read_settings(*args, **kwargs)
    monkeypatch.setattr(toolkit.cli, "read_settings", counting)
    return count


@pytest.mark.parametrize("main, args", [
    (create_pool_job.main, ["--pool_id", "p", "--job_id", "j"]),
    (send_task.main, ["--job_id", "j", "--task_id", "t"]),
    (check_task.main, ["--job_id", "j"]),
    (delete_pool_job.main, ["--job_id", "j", "--yes"]),
])
def test_a_run_that_fails_reads_the_settings_once(toolkit_env, capsys, reads, main, args):
    # Nothing configured: the check fails, and the error line's redaction and hints use the same settings.
    assert main(args) == 2
    assert "Configuration error: AZURE_BATCH_ACCOUNT is not set" in capsys.readouterr().err
    assert reads[0] == 1


def test_importing_config_resources_reads_no_settings():
    program = ("import toolkit.settings as s\n"
               "calls = []\n"
               "read = s.read_settings\n"
               "s.read_settings = lambda *a: calls.append(a) or read(*a)\n"
               "import config_resources\n"
               "print(len(calls), config_resources.batch['name'] == '', len(calls))\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                            cwd=REPO_ROOT, env={"PATH": "/usr/bin:/bin", "BATCH_TOOLKIT_ENV_FILE": ""})
    # None at import; the tutorial's names read them on first access.
    assert result.stdout.split() == ["0", "True", "1"], result.stderr


@pytest.mark.parametrize("main, args", [
    (check_task.main, ["--job_id", "j"]),
    (send_task.main, ["--job_id", "j", "--task_id", "t"]),
    (delete_pool_job.main, ["--job_id", "j", "--yes"]),
])
def test_a_typo_in_the_env_file_is_named_when_a_variable_is_missing(toolkit_env, tmp_path, capsys, main, args):
    env_file = tmp_path / "toolkit.env"
    env_file.write_text("AZURE_BATCH_ACOUNT=mybatchaccount\n")
    env_file.chmod(0o644)
    toolkit_env(BATCH_TOOLKIT_ENV_FILE=str(env_file))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "sets AZURE_BATCH_ACOUNT, which the toolkit does not read: did you mean AZURE_BATCH_ACCOUNT?" in err
    assert f"other users can read it: chmod 600 {env_file}" in err
    assert "Configuration error: AZURE_BATCH_ACCOUNT is not set" in err
