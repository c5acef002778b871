"""python3 config_resources.py: the effective settings, each with where it came from (environment, which env
file, default), secrets only as set, empty or not set, what each script still needs, and exit code 2 naming each
malformed or missing value."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEY = "c2VjcmV0LWtleS1mb3ItdGhlLXRlc3Qtb25seS0xMjM0NTY3ODkwYWJjZGVm"
COMPLETE = {"AZURE_BATCH_ENDPOINT": "https://acct.westeurope.batch.azure.com",
            "BLOB_CONTAINER_URL": "https://store.blob.core.windows.net/out", "REPOSITORY_URL": "https://example.org/r.git"}


def run(tmp_path, env_file_text=None, **env):
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env}
    if env_file_text is not None:
        (tmp_path / "my.env").write_text(env_file_text)
        environ["BATCH_TOOLKIT_ENV_FILE"] = str(tmp_path / "my.env")
    else:
        environ.setdefault("BATCH_TOOLKIT_ENV_FILE", "")
    return subprocess.run([sys.executable, "config_resources.py"], cwd=REPO, env=environ, capture_output=True,
                          text=True, timeout=60, check=False)


def line_of(output: str, name: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith(name + " "))


def test_each_setting_says_where_it_came_from(tmp_path):
    result = run(tmp_path, "AZURE_BATCH_ACCOUNT=fromfile\nNB_NODES=3\nAZURE_BATCH_ACCESS_KEY=" + KEY + "\n",
                 AZURE_BATCH_ACCOUNT="fromenv", **COMPLETE)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert line_of(out, "AZURE_BATCH_ACCOUNT") == "AZURE_BATCH_ACCOUNT          = fromenv  [environment]"
    assert line_of(out, "NB_NODES").endswith(f"= 3  [env file {tmp_path / 'my.env'}]")
    assert line_of(out, "MAX_NODES").endswith("= 5  [default]")
    assert line_of(out, "AZURE_STORAGE_KEY").endswith("not set")
    assert line_of(out, "START_COMMAND").endswith("[default, made from the other settings]")
    assert line_of(out, "BATCH_TOOLKIT_ENV_FILE").endswith(f"= {tmp_path / 'my.env'}  [environment]")
    assert "Not set" not in out


def test_what_each_script_still_needs_is_said_and_exits_2(tmp_path):
    result = run(tmp_path, "AZURE_BATCH_ACCOUNT=acct\nAZURE_BATCH_ACCESS_KEY=\nAZURE_STORAGE_SAS_TOKEN=\n")
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert "Not set, needed by create_pool_job.py: AZURE_BATCH_ENDPOINT, REPOSITORY_URL." in lines
    assert "Not set, needed by send_task.py: AZURE_BATCH_ENDPOINT, BLOB_CONTAINER_URL." in lines
    assert "Not set, needed by check_task.py: AZURE_BATCH_ENDPOINT." in lines
    # Empty in the file (as .env.example ships them): not "set", and an empty key means Entra ID.
    assert line_of(result.stdout, "AZURE_BATCH_ACCESS_KEY").startswith(
        "AZURE_BATCH_ACCESS_KEY       = empty (the scripts sign in with Microsoft Entra ID)")
    assert line_of(result.stdout, "AZURE_STORAGE_SAS_TOKEN").startswith("AZURE_STORAGE_SAS_TOKEN      = empty  [")


def test_no_env_file_says_how_to_make_one(tmp_path):
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}   # the default .env next to the scripts
    if (REPO / ".env").exists():
        pytest.skip("this checkout has its own .env: the hint is for checkouts without one (CI has none)")
    result = subprocess.run([sys.executable, "config_resources.py"], cwd=REPO, env=environ, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert f"No .env file was found ({REPO / '.env'}): cp .env.example .env next to the scripts and fill it in." \
        in result.stdout.splitlines()


def test_secrets_show_only_whether_they_are_set(tmp_path):
    sas = "sv=2022-11-02&sp=racwl&sig=c2VjcmV0c2lnbmF0dXJl"
    result = run(tmp_path, AZURE_BATCH_ACCESS_KEY=KEY, AZURE_STORAGE_SAS_TOKEN=sas, AZURE_BATCH_ACCOUNT="a", **COMPLETE)
    assert KEY not in result.stdout + result.stderr and "c2VjcmV0c2lnbmF0dXJl" not in result.stdout + result.stderr
    assert line_of(result.stdout, "AZURE_BATCH_ACCESS_KEY").endswith("= set  [environment]")
    assert line_of(result.stdout, "AZURE_STORAGE_SAS_TOKEN").endswith("= set  [environment]")


def test_a_malformed_value_is_named_and_exits_2(tmp_path):
    result = run(tmp_path, NB_PROCESSES="four")
    assert result.returncode == 2
    assert result.stderr.strip() == "Problem: NB_PROCESSES is 'four', not a whole number."
    assert line_of(result.stdout, "NB_PROCESSES").endswith("= four  [environment]")
