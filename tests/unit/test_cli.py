"""The three scripts' command lines: help, missing configuration, bad ids and options (no network)."""

import datetime
import subprocess
import sys

import pytest

import check_task
import create_pool_job
import delete_pool_job
import send_task
from config_resources import ENV_FILE_VARIABLE, read_settings, task_settings
from tests.conftest import REPO_ROOT, VALID_ENV

SCRIPTS = {"create_pool_job.py": ["--pool_id", "--job_id", "--vm_size", "--max_nodes", "--check_formula"],
           "send_task.py": ["--job_id", "--task_id", "--nodes"],
           "check_task.py": ["--job_id", "--output_dir", "--wait"]}


def run_script(script, *args, env=None):
    return subprocess.run([sys.executable, str(REPO_ROOT / script), *args], capture_output=True, text=True,
                          timeout=60, env=env, cwd=REPO_ROOT)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_lists_the_options(script):
    result = run_script(script, "--help", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0
    for option in SCRIPTS[script]:
        assert option in result.stdout


@pytest.mark.parametrize("script, args", [("create_pool_job.py", ["--pool_id", "p", "--job_id", "j"]),
                                          ("send_task.py", ["--job_id", "j", "--task_id", "t"]),
                                          ("check_task.py", [])])
def test_without_configuration_one_line_and_exit_2(script, args):
    result = run_script(script, *args, env={"PATH": "/usr/bin:/bin", ENV_FILE_VARIABLE: ""})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "AZURE_BATCH_ACCOUNT is not set" in result.stderr


@pytest.mark.parametrize("main, args, words", [
    (create_pool_job.main, ["--pool_id", "my pool", "--job_id", "j"], "--pool_id 'my pool' contains ' '"),
    (create_pool_job.main, ["--pool_id", "p" * 65, "--job_id", "j"], "65 characters long; ids have at most 64"),
    (create_pool_job.main, ["--pool_id", "p", "--job_id", "j/1"], "--job_id 'j/1' contains '/'"),
    (create_pool_job.main, ["--pool_id", "p", "--job_id", ""], "--job_id is empty"),
    (create_pool_job.main, ["--pool_id", "p", "--job_id", "j", "--max_nodes", "0"], "--max_nodes is 0"),
    (create_pool_job.main, ["--pool_id", "p", "--job_id", "j", "--max_nodes", "101"], "--max_nodes is 101"),
    # Both were sent: '' fell back to the default only after a request, 'x y' made a pool.
    (create_pool_job.main, ["--pool_id", "p", "--job_id", "j", "--vm_size", ""], "--vm_size is '', not a VM size"),
    (create_pool_job.main, ["--pool_id", "p", "--job_id", "j", "--vm_size", "x y"], "--vm_size is 'x y', not a VM"),
    (send_task.main, ["--job_id", "j", "--task_id", "t.1"], "--task_id 't.1' contains '.'"),
    (send_task.main, ["--job_id", "j", "--task_id", "t", "--nodes", "0"], "--nodes is 0"),
    (check_task.main, ["--job_id", "a;b"], "--job_id 'a;b' contains ';'"),
    (check_task.main, ["--poll_seconds", "0"], "--poll_seconds must be a number of seconds more than 0"),
    (check_task.main, ["--poll_seconds", "nan"], "--poll_seconds must be a number of seconds more than 0"),
    (check_task.main, ["--output_dir", "/dev/null/x"],
     "--output_dir /dev/null/x cannot be created: /dev/null is not a directory"),
])
def test_bad_option_is_refused_before_any_request(valid_env, capsys, main, args, words):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


@pytest.mark.parametrize("main, args, line", [
    (create_pool_job.main, [], "Error: the following arguments are required: --pool_id, --job_id "
                               "(see python3 create_pool_job.py --help)"),
    # The Azure CLI's spelling: argparse alone would say --pool_id is missing, not that --pool-id is a typo.
    (create_pool_job.main, ["--pool-id", "p", "--job_id", "j"],
     "Error: unrecognized arguments: --pool-id (did you mean --pool_id?) (see python3 create_pool_job.py --help)"),
    (send_task.main, ["--job_id", "j", "--task_id", "t", "--nodes", "two"],
     "Error: argument --nodes: invalid int value: 'two' (see python3 send_task.py --help)"),
    (check_task.main, ["--output-dir=x", "--wiat"], "Error: unrecognized arguments: --output-dir (did you mean "
                                                    "--output_dir?), --wiat (did you mean --wait?) "
                                                    "(see python3 check_task.py --help)"),
    (check_task.main, ["--bogus"], "Error: unrecognized arguments: --bogus (see python3 check_task.py --help)"),
    (delete_pool_job.main, ["--job_id"], "Error: argument --job_id: expected one argument "
                                         "(see python3 delete_pool_job.py --help)"),
])
def test_usage_errors_are_one_line_naming_the_help_and_exit_2(capsys, main, args, line):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.err == line + "\n" and captured.out == ""


def test_an_abbreviated_option_is_not_taken_for_a_typo(capsys):
    assert check_task.build_parser().parse_args(["--job", "j1"]).job_id == "j1"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("script", [*SCRIPTS, "delete_pool_job.py"])
def test_help_says_where_the_settings_come_from(script):
    result = run_script(script, "--help", env={"PATH": "/usr/bin:/bin"})
    assert "from .env\nnext to the scripts, or from the file BATCH_TOOLKIT_ENV_FILE names" in result.stdout


def test_help_never_breaks_a_command_at_a_hyphen():
    result = run_script("check_task.py", "--help", env={"PATH": "/usr/bin:/bin", "COLUMNS": "60"})
    assert "az batch task subtask list --job-id JOB --task-id TASK\n" in result.stdout
    assert "--file-path TASK_ROOT_DIRECTORY/stdout.txt --destination ./sub-stdout.txt" in result.stdout
    assert not [line for line in result.stdout.splitlines() if line.endswith("-") and not line.endswith(" -")]


def sas_env(permissions, expiry):
    url = ("https://mystorage.blob.core.windows.net/outputs?sv=2025-01-05&sr=c"
           f"&se={expiry:%Y-%m-%dT%H:%M:%SZ}&sp={permissions}&sig=SECRETSIGNATURE")
    return task_settings(read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV, "BLOB_CONTAINER_URL": url}))


def test_read_only_sas_is_refused_for_uploads():
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    with pytest.raises(send_task.ToolkitError, match="allows 'rl' but the task's uploads need write") as caught:
        send_task.check_sas_for_upload(sas_env("rl", later))
    assert caught.value.exit_code == 2


def test_expired_sas_is_refused():
    earlier = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    with pytest.raises(send_task.ToolkitError, match="The container SAS expired") as caught:
        send_task.check_sas_for_upload(sas_env("racwl", earlier))
    assert caught.value.exit_code == 2


def test_sas_expiring_before_the_task_limit_warns(capsys):
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=30)
    send_task.check_sas_for_upload(sas_env("racwl", soon))
    out = capsys.readouterr().out
    assert "Warning: the container SAS expires" in out and "SECRETSIGNATURE" not in out


def test_send_task_refuses_expired_sas_without_printing_it(toolkit_env, capsys):
    toolkit_env(**{**VALID_ENV, "BLOB_CONTAINER_URL": VALID_ENV["BLOB_CONTAINER_URL"].replace("2099", "2001")})
    assert send_task.main(["--job_id", "j", "--task_id", "t"]) == 2
    captured = capsys.readouterr()
    assert "expired" in captured.err and "SECRETSIGNATURE" not in captured.err + captured.out


@pytest.mark.parametrize("expiry, refused", [("2001-01-01", True), ("2099-01-01", False)])
def test_date_only_sas_expiry_is_checked_without_crashing(expiry, refused):
    url = ("https://mystorage.blob.core.windows.net/outputs?sv=2025-01-05&sr=c"
           f"&se={expiry}&sp=racwl&sig=SECRETSIGNATURE")
    settings = task_settings(read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV, "BLOB_CONTAINER_URL": url}))
    if refused:
        with pytest.raises(send_task.ToolkitError, match="The container SAS expired on 2001-01-01"):
            send_task.check_sas_for_upload(settings)
    else:
        send_task.check_sas_for_upload(settings)


def test_missing_packages_are_one_line_and_exit_2():
    # -S leaves out site-packages: neither azure nor python-dotenv can be imported.
    result = subprocess.run([sys.executable, "-S", str(REPO_ROOT / "check_task.py")], capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", ENV_FILE_VARIABLE: "", **VALID_ENV},
                            cwd=REPO_ROOT)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: The Python package azure")
    assert result.stderr.endswith("is missing: use .venv/bin/python (make setup makes it) or pip install -r "
                                  "requirements.txt\n")
    assert result.stderr.count("\n") == 1
