"""The local stack (tools/local_stack.py) itself.

With the services: Azurite checks SAS tokens like Azure does, and the Batch
emulator answers the real SDK; if these fail, every other e2e test would fail
for a reason that is not the toolkit's. Without them: the env file, the SAS,
the error messages and the cleanup of processes.
"""

import datetime
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient
from dotenv import dotenv_values

from tests.conftest import process_alive, wait_for
from toolkit.values import sas_token_permissions
from tools import local_stack as stack_module

# --- with Azurite and the Batch emulator -------------------------------------


def container(url):
    return ContainerClient.from_container_url(url)


def test_good_sas_uploads_and_downloads(local_stack):
    client = container(local_stack.env["BLOB_CONTAINER_URL"])
    client.upload_blob("sanity/round-trip.txt", b"pi ~= 3.14159\n", overwrite=True)

    assert client.download_blob("sanity/round-trip.txt").readall() == b"pi ~= 3.14159\n"
    assert "sanity/round-trip.txt" in [blob.name for blob in client.list_blobs(name_starts_with="sanity/")]


def test_read_only_sas_cannot_write(local_stack):
    container(local_stack.env["BLOB_CONTAINER_URL"]).upload_blob("sanity/read-only.txt", b"x", overwrite=True)
    read_only = container(stack_module.container_sas_url(local_stack, permission="rl"))

    with pytest.raises(HttpResponseError) as refused:
        read_only.upload_blob("sanity/written-with-read-only-sas.txt", b"x")
    assert refused.value.status_code == 403
    assert read_only.download_blob("sanity/read-only.txt").readall() == b"x"


def test_expired_sas_is_refused(local_stack):
    expired = container(stack_module.container_sas_url(local_stack, expiry=datetime.timedelta(minutes=-5)))

    with pytest.raises(HttpResponseError) as refused:
        expired.upload_blob("sanity/written-with-expired-sas.txt", b"x")
    assert refused.value.status_code == 403
    with pytest.raises(HttpResponseError) as refused:
        list(expired.list_blobs())
    assert refused.value.status_code == 403


def test_emulator_answers_the_batch_sdk(local_stack):
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    credential = AzureNamedKeyCredential(local_stack.batch_account, local_stack.batch_key)
    with BatchClient(local_stack.batch_endpoint, credential, retry_total=0) as client:
        assert isinstance(list(client.list_pools()), list)

    wrong_key = AzureNamedKeyCredential(local_stack.batch_account, "d3Jvbmcta2V5")
    with BatchClient(local_stack.batch_endpoint, wrong_key, retry_total=0) as client:
        with pytest.raises(HttpResponseError) as refused:
            list(client.list_pools())
    assert refused.value.status_code == 403


def test_tasks_get_none_of_the_emulators_python_settings(batch, ids):
    """A node has no PYTHONUNBUFFERED (with it, the ranks of an MPI program mix their lines mid-line)
    nor the emulator's PYTHONPATH: python3 in a task of the local stack sees no PYTHON* variable."""
    from azure.batch import models as m

    from tests.e2e.emulator_process import VM

    batch.create_pool(m.BatchPoolCreateOptions(id=ids.pool_id, vm_size="standard_d2s_v5",
                                               virtual_machine_configuration=VM, target_dedicated_nodes=1))
    try:
        batch.create_job(m.BatchJobCreateOptions(id=ids.job_id, pool_info=m.BatchPoolInfo(pool_id=ids.pool_id)))
        batch.create_task(ids.job_id, m.BatchTaskCreateOptions(
            id=ids.task_id, command_line="python3 -c \"import os; print(sorted(k for k in os.environ "
                                         "if k.startswith('PYTHON')))\""))
        task = wait_for(lambda: (t := batch.get_task(ids.job_id, ids.task_id)).state == "completed" and t,
                        timeout=60, what="the task")
        assert task.execution_info.exit_code == 0
        assert b"".join(batch.download_task_file(ids.job_id, ids.task_id, "stdout.txt")) == b"[]\n"
    finally:
        batch.begin_delete_job(ids.job_id, polling_interval=0).result()
        batch.begin_delete_pool(ids.pool_id, polling_interval=0).result()


def test_toolkit_reads_the_stack_from_its_env_file(local_stack):
    import config_resources

    env_file = local_stack.env["BATCH_TOOLKIT_ENV_FILE"]
    settings = config_resources.read_settings({config_resources.ENV_FILE_VARIABLE: env_file})

    assert settings.problems == {}
    assert settings.batch["url"] == local_stack.batch_endpoint
    assert settings.blob_container["url"] == local_stack.container_url
    assert sas_token_permissions(settings.blob_container["sas_token"]) == "racwl"
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600  # it holds the key and the SAS


def test_stack_repr_shows_no_secret(local_stack):
    shown = repr(local_stack)
    assert local_stack.batch_key not in shown and local_stack.storage_key not in shown and "sig=" not in shown


# --- without them ---------------------------------------------------------------
def a_stack(tmp_path, **env):
    return stack_module.LocalStack(workdir=tmp_path, blob_endpoint="http://127.0.0.1:1/devstoreaccount1",
                                  container="mpi-outputs", batch_endpoint="http://127.0.0.1:2",
                                  batch_account="devbatchaccount1", batch_key="c2VjcmV0LWtleQ==", env=env)


def sas_fields(url):
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_container_sas_url_signs_the_toolkit_permissions_for_hours(tmp_path):
    url = stack_module.container_sas_url(a_stack(tmp_path))
    fields = sas_fields(url)

    assert url.startswith("http://127.0.0.1:1/devstoreaccount1/mpi-outputs?")
    assert fields["sp"] == "racwl" and fields["sr"] == "c" and fields["sig"]
    expiry = datetime.datetime.fromisoformat(fields["se"].replace("Z", "+00:00"))
    assert expiry > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)


def test_container_sas_url_can_be_read_only_or_expired(tmp_path):
    fields = sas_fields(stack_module.container_sas_url(a_stack(tmp_path), permission="rl",
                                                      expiry=datetime.timedelta(minutes=-5)))

    assert fields["sp"] == "rl"
    expiry = datetime.datetime.fromisoformat(fields["se"].replace("Z", "+00:00"))
    assert expiry < datetime.datetime.now(datetime.timezone.utc)


def test_env_file_round_trips_through_dotenv_and_is_private(tmp_path):
    stack = a_stack(tmp_path)
    variables = stack_module.toolkit_environment(stack, stack_module.container_sas_url(stack))
    stack_module.write_env_file(stack.env_file, variables)

    assert dotenv_values(stack.env_file) == variables
    assert stat.S_IMODE(os.stat(stack.env_file).st_mode) == 0o600
    assert variables["NB_NODES"] == "2" and "NB_PROCESSES" not in variables   # its default: 4, or a core each
    assert variables["REPOSITORY_URL"] == str(stack_module.REPO_ROOT)


def test_script_environment_keeps_the_users_azure_variables_out(tmp_path, monkeypatch):
    monkeypatch.setenv("AZURE_BATCH_ACCESS_KEY", "the-users-real-key")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    stack = a_stack(tmp_path, AZURE_BATCH_ENDPOINT="http://127.0.0.1:2", NB_NODES="2")

    env = stack_module.script_environment(stack, NB_NODES="1", AZURE_BATCH_ENDPOINT=None)

    assert "AZURE_BATCH_ACCESS_KEY" not in env and "HTTPS_PROXY" not in env and "AZURE_BATCH_ENDPOINT" not in env
    assert env["NB_NODES"] == "1" and env["PATH"]


def test_repr_and_redact_hide_secrets(tmp_path):
    stack = a_stack(tmp_path, BLOB_CONTAINER_URL="http://127.0.0.1:1/x?sp=r&sig=abc%2Bdef")

    assert "c2VjcmV0LWtleQ==" not in repr(stack) and stack_module.AZURITE_KEY not in repr(stack)
    assert stack_module.redact("url ...?sp=r&sig=abc%2Bdef&se=1") == "url ...?sp=r&sig=REDACTED&se=1"


def test_ready_lines_are_parsed():
    azurite = stack_module.AZURITE_READY.search("Azurite Blob service successfully listens on http://127.0.0.1:41234\n")
    emulator = stack_module.EMULATOR_READY.search(
        "Batch emulator listening on http://127.0.0.1:38555 (account devbatchaccount1)\n")

    assert azurite.group(2) == "41234"
    assert emulator.groups() == ("http://127.0.0.1:38555", "devbatchaccount1")


def test_missing_azurite_says_make_setup(tmp_path, monkeypatch):
    monkeypatch.setattr(stack_module, "AZURITE_BLOB", tmp_path / "no" / "azurite-blob")

    with pytest.raises(stack_module.LocalStackError, match="run: make setup"):
        with stack_module.start_stack(tmp_path):
            pass


def test_a_process_dying_at_start_gives_its_last_line(tmp_path):
    log_path = tmp_path / "service.log"
    proc = stack_module._spawn([sys.executable, "-c", "print('starting'); print('port in use'); raise SystemExit(3)"],
                              log_path, tmp_path, os.environ)

    with pytest.raises(stack_module.LocalStackError, match=r"Service exited during start \(exit 3\): port in use"):
        stack_module.wait_for_line(proc, "Service", log_path, stack_module.EMULATOR_READY, timeout=30)
    stack_module.stop_process(proc)


def test_stop_process_kills_a_stubborn_process_and_its_children(tmp_path):
    program = ("import signal, subprocess, time\n"
               "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
               "child = subprocess.Popen(['sleep', '300'])\n"
               "print('child', child.pid, flush=True)\n"
               "time.sleep(300)\n")
    log_path = tmp_path / "stubborn.log"
    proc = stack_module._spawn([sys.executable, "-c", program], log_path, tmp_path, os.environ)
    child_pid = int(stack_module.wait_for_line(proc, "stubborn", log_path, re.compile(r"child (\d+)"), 30).group(1))

    started = time.monotonic()
    stack_module.stop_process(proc, grace=0.5)

    assert time.monotonic() - started < 10
    assert proc.returncode is not None
    wait_for(lambda: not process_alive(child_pid), timeout=5, what=f"the stubborn process's child {child_pid} to go")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def make_local(tmp_path, output=subprocess.DEVNULL):
    """`python -m tools.local` (make local) with its env file and workdir under `tmp_path`."""
    return subprocess.Popen([sys.executable, "-m", "tools.local", "--env_file", str(tmp_path / "local.env"),
                             "--workdir", str(tmp_path / "stack")], cwd=stack_module.REPO_ROOT,
                            stdin=subprocess.DEVNULL, stdout=output, stderr=output, text=True)


def test_services_stop_when_make_local_is_killed(tmp_path):
    """Azurite and the emulator run in sessions of their own; SIGKILL of `make local` must not orphan them."""
    proc = make_local(tmp_path)
    try:
        wait_for(lambda: (tmp_path / "local.env").exists(), timeout=90, what="make local to write its env file")
        services = _children(proc.pid)
        assert len(services) == 2, services  # Azurite and the Batch emulator
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: not any(process_alive(pid) for pid in services), timeout=30,
             what="Azurite and the emulator to stop after make local was killed")


LOGS = {"Azurite": "azurite.log", "the Batch emulator": "batch_emulator.log"}


@pytest.mark.parametrize("killed, other", [("the Batch emulator", "Azurite"), ("Azurite", "the Batch emulator")])
def test_make_local_stops_when_a_service_dies_and_the_scripts_say_it_is_not_running(tmp_path, killed, other):
    """make local names the service that died and its log's last line, stops the other, removes the env file
    and exits 3; a script given that env file then says the local stack is not running and how to start it."""
    env_file, workdir = tmp_path / "local.env", tmp_path / "stack"
    proc = make_local(tmp_path, output=subprocess.PIPE)
    try:
        wait_for(lambda: env_file.exists() or proc.poll() is not None, timeout=90,
                 what="make local to write its env file")
        assert proc.poll() is None, proc.communicate()
        pids = {name: int(stack_module.pid_file(workdir / log).read_text()) for name, log in LOGS.items()}
        assert sorted(pids.values()) == sorted(_children(proc.pid))  # the pid files name make local's services
        os.kill(pids[killed], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    log = workdir / LOGS[killed]
    last_line = stack_module.last_line(log)
    assert last_line  # the line that said it was ready, at least
    assert proc.returncode == 3, err
    assert err.splitlines() == [
        f"make local: {killed} stopped (killed by SIGKILL); the last line of its log ({log}): {last_line}",
        f"make local: stopped {other} and removed {env_file}; run make local again to restart the stack.",
    ]
    assert not process_alive(pids[other])
    assert not env_file.exists()

    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "BATCH_TOOLKIT_ENV_FILE": str(env_file)}
    script = subprocess.run([sys.executable, "check_task.py", "--job_id", "local-job"], cwd=stack_module.REPO_ROOT,
                            env=environment, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert script.returncode == 2, script.stderr
    assert script.stderr == (
        f"Error: Configuration error: BATCH_TOOLKIT_ENV_FILE names {str(env_file)!r}, which is not a file. "
        "The local stack is not running (make local writes that file while Azurite and the Batch emulator run, "
        f"and removes it when they stop): start it with make local in another shell, in {stack_module.REPO_ROOT}.\n")
