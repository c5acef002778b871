"""python3 config_resources.py: the effective settings, each with where it came from (environment, which env
file, default), secrets only as set or not set, and exit code 2 naming each malformed value."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEY = "c2VjcmV0LWtleS1mb3ItdGhlLXRlc3Qtb25seS0xMjM0NTY3ODkwYWJjZGVm"


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
                 AZURE_BATCH_ACCOUNT="fromenv")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert line_of(out, "AZURE_BATCH_ACCOUNT") == "AZURE_BATCH_ACCOUNT          = fromenv  [environment]"
    assert line_of(out, "NB_NODES").endswith(f"= 3  [env file {tmp_path / 'my.env'}]")
    assert line_of(out, "MAX_NODES").endswith("= 5  [default]")
    assert line_of(out, "AZURE_STORAGE_KEY").endswith("not set")
    assert line_of(out, "START_COMMAND").endswith("[default, made from the other settings]")
    assert line_of(out, "BATCH_TOOLKIT_ENV_FILE").endswith(f"= {tmp_path / 'my.env'}  [environment]")


def test_secrets_show_only_whether_they_are_set(tmp_path):
    sas = "sv=2022-11-02&sp=racwl&sig=c2VjcmV0c2lnbmF0dXJl"
    result = run(tmp_path, AZURE_BATCH_ACCESS_KEY=KEY, AZURE_STORAGE_SAS_TOKEN=sas)
    assert KEY not in result.stdout + result.stderr and "c2VjcmV0c2lnbmF0dXJl" not in result.stdout + result.stderr
    assert line_of(result.stdout, "AZURE_BATCH_ACCESS_KEY").endswith("= set  [environment]")
    assert line_of(result.stdout, "AZURE_STORAGE_SAS_TOKEN").endswith("= set  [environment]")


def test_a_malformed_value_is_named_and_exits_2(tmp_path):
    result = run(tmp_path, NB_PROCESSES="four")
    assert result.returncode == 2
    assert result.stderr.strip() == "Problem: NB_PROCESSES is 'four', not a whole number."
    assert line_of(result.stdout, "NB_PROCESSES").endswith("= four  [environment]")
