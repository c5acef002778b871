"""tools/local_stack.py without Azurite or the emulator: env file, SAS, errors, process cleanup."""

import datetime
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from dotenv import dotenv_values

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import local_stack  # noqa: E402


def a_stack(tmp_path, **env):
    return local_stack.LocalStack(workdir=tmp_path, blob_endpoint="http://127.0.0.1:1/devstoreaccount1",
                                  container="mpi-outputs", batch_endpoint="http://127.0.0.1:2",
                                  batch_account="devbatchaccount1", batch_key="c2VjcmV0LWtleQ==", env=env)


def sas_fields(url):
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_container_sas_url_signs_the_toolkit_permissions_for_hours(tmp_path):
    url = local_stack.container_sas_url(a_stack(tmp_path))
    fields = sas_fields(url)

    assert url.startswith("http://127.0.0.1:1/devstoreaccount1/mpi-outputs?")
    assert fields["sp"] == "racwl" and fields["sr"] == "c" and fields["sig"]
    expiry = datetime.datetime.fromisoformat(fields["se"].replace("Z", "+00:00"))
    assert expiry > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)


def test_container_sas_url_can_be_read_only_or_expired(tmp_path):
    fields = sas_fields(local_stack.container_sas_url(a_stack(tmp_path), permission="rl",
                                                      expiry=datetime.timedelta(minutes=-5)))

    assert fields["sp"] == "rl"
    assert datetime.datetime.fromisoformat(fields["se"].replace("Z", "+00:00")) < datetime.datetime.now(datetime.timezone.utc)


def test_env_file_round_trips_through_dotenv_and_is_private(tmp_path):
    stack = a_stack(tmp_path)
    variables = local_stack.toolkit_environment(stack, local_stack.container_sas_url(stack))
    local_stack.write_env_file(stack.env_file, variables)

    assert dotenv_values(stack.env_file) == variables
    assert stat.S_IMODE(os.stat(stack.env_file).st_mode) == 0o600
    assert variables["NB_NODES"] == "2" and variables["NB_PROCESSES"] == "4"
    assert variables["REPOSITORY_URL"] == str(local_stack.REPO_ROOT)


def test_script_environment_keeps_the_users_azure_variables_out(tmp_path, monkeypatch):
    monkeypatch.setenv("AZURE_BATCH_ACCESS_KEY", "the-users-real-key")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    stack = a_stack(tmp_path, AZURE_BATCH_ENDPOINT="http://127.0.0.1:2", NB_NODES="2")

    env = local_stack.script_environment(stack, NB_NODES="1", AZURE_BATCH_ENDPOINT=None)

    assert "AZURE_BATCH_ACCESS_KEY" not in env and "HTTPS_PROXY" not in env and "AZURE_BATCH_ENDPOINT" not in env
    assert env["NB_NODES"] == "1" and env["PATH"]


def test_repr_and_redact_hide_secrets(tmp_path):
    stack = a_stack(tmp_path, BLOB_CONTAINER_URL="http://127.0.0.1:1/x?sp=r&sig=abc%2Bdef")

    assert "c2VjcmV0LWtleQ==" not in repr(stack) and local_stack.AZURITE_KEY not in repr(stack)
    assert local_stack.redact("url ...?sp=r&sig=abc%2Bdef&se=1") == "url ...?sp=r&sig=***&se=1"


def test_ready_lines_are_parsed():
    azurite = local_stack.AZURITE_READY.search("Azurite Blob service successfully listens on http://127.0.0.1:41234\n")
    emulator = local_stack.EMULATOR_READY.search(
        "Batch emulator listening on http://127.0.0.1:38555 (account devbatchaccount1)\n")

    assert azurite.group(2) == "41234"
    assert emulator.groups() == ("http://127.0.0.1:38555", "devbatchaccount1")


def test_missing_azurite_says_make_setup(tmp_path, monkeypatch):
    monkeypatch.setattr(local_stack, "AZURITE_BLOB", tmp_path / "no" / "azurite-blob")

    with pytest.raises(local_stack.LocalStackError, match="run: make setup"):
        with local_stack.start_stack(tmp_path):
            pass


def test_a_process_dying_at_start_gives_its_last_line(tmp_path):
    log_path = tmp_path / "service.log"
    proc = local_stack._spawn([sys.executable, "-c", "print('starting'); print('port in use'); raise SystemExit(3)"],
                              log_path, tmp_path, os.environ)

    with pytest.raises(local_stack.LocalStackError, match=r"Service exited during start \(exit 3\): port in use"):
        local_stack.wait_for_line(proc, "Service", log_path, local_stack.EMULATOR_READY, timeout=30)
    local_stack.stop_process(proc)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(") ")[-1].startswith("Z"))


def test_stop_process_kills_a_stubborn_process_and_its_children(tmp_path):
    program = ("import signal, subprocess, time\n"
               "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
               "child = subprocess.Popen(['sleep', '300'])\n"
               "print('child', child.pid, flush=True)\n"
               "time.sleep(300)\n")
    log_path = tmp_path / "stubborn.log"
    proc = local_stack._spawn([sys.executable, "-c", program], log_path, tmp_path, os.environ)
    child_pid = int(local_stack.wait_for_line(proc, "stubborn", log_path, re.compile(r"child (\d+)"), 30).group(1))

    started = time.monotonic()
    local_stack.stop_process(proc, grace=0.5)

    assert time.monotonic() - started < 10
    assert proc.returncode is not None
    deadline = time.monotonic() + 5
    while alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child_pid)
