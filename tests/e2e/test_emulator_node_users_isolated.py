"""Node users on isolated nodes (`python -m batch_emulator --isolation netns`): each user the service adds is a real
Unix account in its node, reached from this machine over the node's remote login settings (127.0.0.1 and a port the
emulator forwards to the node's own sshd, as the pool's load balancer forwards a frontend port to port 22). A key
user logs in with its key, an admin one has sudo, a password user logs in with its password, a replaced user keeps
only what the replace gave it, an expired or deleted one cannot log in. Then check_task.py --login end to end: the
ssh command it prints logs in, the removal command it prints (az batch node user delete) ends that.

Needs root and the node image (tools/build_node_image.sh); elsewhere these tests skip saying why, under CI=true
they fail instead. The check_task.py test also needs the Azure CLI (tests/e2e/azure_cli.py installs it once).
"""

import datetime
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from azure.batch import models as m

from batch_emulator.runtime.isolation import check_available
from tests.conftest import wait_for
from tests.e2e.conftest import ScriptRunner, batch_client, isolated_stack, require_isolation
from tests.e2e.emulator_process import VM, start_emulator
from tests.e2e.recorded_client import Raw, add_pool

pytestmark = pytest.mark.e2e
NODE_SECONDS = 120   # an isolated node's start-up (namespaces, overlay, sshd) takes about a second
SSH_SECONDS = 30
# The options that make ssh non-interactive: no host key prompt (each run meets a new node), no password prompt.
NON_INTERACTIVE = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes")
PASSWORD = "Not-a-real-password-1!"



@pytest.fixture(scope="module")
def workdir():
    require_isolation(check_available())
    root = tempfile.mkdtemp(prefix="node-users-", dir="/var/tmp")   # not /tmp: each node has its own
    os.chmod(root, 0o755)
    yield Path(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def raw(workdir):
    with open(workdir / "emulator-stderr.log", "w") as log:
        proc, url = start_emulator(workdir / "batch", log, "--isolation", "netns")
        try:
            yield Raw(url)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def node(raw):
    """(pool id, node id) of an idle isolated node."""
    pool_id = add_pool(raw, targetDedicatedNodes=1)
    nodes = wait_for(lambda: [n for n in raw("GET", f"/pools/{pool_id}/nodes").json["value"] if n["state"] == "idle"],
                     timeout=NODE_SECONDS, what="an idle isolated node")
    return pool_id, nodes[0]["id"]


def new_key(directory: Path, name: str) -> tuple[Path, str]:
    """A fresh ed25519 key pair: (private key file, public key text)."""
    private = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(private)], check=True)
    return private, (directory / f"{name}.pub").read_text().strip()


def login_settings(raw, pool_id, node_id):
    settings = raw("GET", f"/pools/{pool_id}/nodes/{node_id}/remoteloginsettings").json
    return settings["remoteLoginIPAddress"], settings["remoteLoginPort"]


def ssh(raw, node, user, key, command):
    """(exit code, stdout, stderr) of COMMAND run over SSH as USER with KEY, at the node's remote login settings."""
    address, port = login_settings(raw, *node)
    done = subprocess.run(["ssh", *NON_INTERACTIVE, "-i", str(key), "-p", str(port), f"{user}@{address}", command],
                          capture_output=True, text=True, timeout=SSH_SECONDS, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout, done.stderr


def ssh_with_password(raw, node, user, password, workdir, command="id -un"):
    """The same with a password (ssh reads it from SSH_ASKPASS: no terminal, no sshpass needed)."""
    askpass = workdir / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\nprintf '%s\\n' {shlex.quote(password)}\n")
    askpass.chmod(0o700)
    address, port = login_settings(raw, *node)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY="none")
    done = subprocess.run(["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1", "-p", str(port),
                           f"{user}@{address}", command], capture_output=True, text=True, timeout=SSH_SECONDS,
                          env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    askpass.unlink()
    return done.returncode, done.stdout, done.stderr


def add_user(raw, node, **body):
    pool_id, node_id = node
    answer = raw("POST", f"/pools/{pool_id}/nodes/{node_id}/users", body)
    assert answer.status == 201, answer


def test_key_users_log_in_admins_have_sudo_and_deleted_ones_cannot(raw, node, workdir):
    pool_id, node_id = node
    key, public = new_key(workdir, "key-user")
    add_user(raw, node, name="Reader", sshPublicKey=public)             # upper case, as the recorded user
    add_user(raw, node, name="boss", sshPublicKey=public, isAdmin=True)
    assert ssh(raw, node, "Reader", key, "id -un")[:2] == (0, "Reader\n")
    code, _, err = ssh(raw, node, "Reader", key, "sudo -n true")
    assert code != 0 and "password is required" in err                   # not an admin: no sudo
    assert ssh(raw, node, "boss", key, "id -un && sudo -n id -un")[:2] == (0, "boss\nroot\n")

    # The login settings name the port that answers (the node shows no endpointConfiguration: its pool declares
    # no inboundNATPools).
    address, port = login_settings(raw, *node)
    assert address == "127.0.0.1" and ssh(raw, node, "boss", key, "true")[0] == 0
    assert "endpointConfiguration" not in raw("GET", f"/pools/{pool_id}/nodes/{node_id}").json

    assert raw("DELETE", f"/pools/{pool_id}/nodes/{node_id}/users/Reader").status == 200
    code, _, err = ssh(raw, node, "Reader", key, "id -un")
    assert code == 255 and "Permission denied" in err
    assert ssh(raw, node, "boss", key, "id -un")[:2] == (0, "boss\n")   # the other user stays


def test_a_password_user_and_what_a_replace_leaves(raw, node, workdir):
    pool_id, node_id = node
    key, public = new_key(workdir, "replaced")
    add_user(raw, node, name="pw-user", password=PASSWORD)
    assert ssh_with_password(raw, node, "pw-user", PASSWORD, workdir)[:2] == (0, "pw-user\n")
    assert ssh_with_password(raw, node, "pw-user", "wrong-password", workdir)[0] == 255
    # A replace replaces every property: the key it gives works, the password it omits is gone.
    assert raw("PUT", f"/pools/{pool_id}/nodes/{node_id}/users/pw-user", {"sshPublicKey": public}).status == 200
    assert ssh(raw, node, "pw-user", key, "id -un")[:2] == (0, "pw-user\n")
    assert ssh_with_password(raw, node, "pw-user", PASSWORD, workdir)[0] == 255
    assert PASSWORD not in (workdir / "emulator-stderr.log").read_text()


def test_an_expired_user_cannot_log_in(raw, node, workdir):
    key, public = new_key(workdir, "expiring")
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)
    add_user(raw, node, name="short-lived", sshPublicKey=public, expiryTime=soon.isoformat())
    assert ssh(raw, node, "short-lived", key, "id -un")[:2] == (0, "short-lived\n")
    wait_for(lambda: ssh(raw, node, "short-lived", key, "id -un")[0] == 255, timeout=30,
             what="the expired user refused")


# ---- check_task.py --login, end to end ----

@pytest.fixture(scope="module")
def netns_stack():
    """Azurite and an emulator with isolated nodes, with the toolkit's settings (tools/local_stack.py)."""
    require_isolation(check_available())
    yield from isolated_stack("test-node-users-login")


def az_environment(stack, home: Path) -> dict[str, str]:
    """What the printed az command needs besides itself: the key in AZURE_BATCH_ACCESS_KEY, as it says (the account
    and endpoint are on its command line: the toolkit's .env file, where they often are, is nothing to az), an
    isolated configuration, and no route off this machine (HTTP(S)_PROXY at a dead loopback port)."""
    env = {name: os.environ[name] for name in ("PATH", "LANG") if name in os.environ}
    env["AZURE_BATCH_ACCESS_KEY"] = stack.env["AZURE_BATCH_ACCESS_KEY"]
    env.update({"HOME": str(home), "AZURE_CONFIG_DIR": str(home / "azure-config"),
                "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
                "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                "NO_PROXY": "127.0.0.1,localhost"})
    return env


def test_check_task_login_prints_an_ssh_command_that_logs_in_and_a_removal_that_ends_it(netns_stack, az_executable,
                                                                                         tmp_path):
    client = batch_client(netns_stack)
    suffix = os.urandom(4).hex()
    pool_id, job_id, task_id = f"login-pool-{suffix}", f"login-job-{suffix}", "ran"
    client.create_pool(m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v3",
                                                virtual_machine_configuration=VM, target_dedicated_nodes=1))
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    client.create_task(job_id, m.BatchTaskCreateOptions(id=task_id, command_line="/bin/true"))
    wait_for(lambda: client.get_task(job_id, task_id).state == m.BatchTaskState.COMPLETED, timeout=NODE_SECONDS,
             what="the task completed")
    key, _ = new_key(tmp_path, "id_login")

    run_script = ScriptRunner(netns_stack, tmp_path)
    done = run_script("check_task.py", "--job_id", job_id, "--login", task_id, "--ssh_key", f"{key}.pub")
    assert done.returncode == 0, done.stdout + done.stderr
    login = re.search(r"^Log in with: (ssh .+)$", done.stdout, re.MULTILINE)
    removal = re.search(r"Remove it sooner with: (az batch node user delete .+ --yes) \(with AZURE_BATCH_ACCESS_KEY",
                        done.stdout, re.MULTILINE)
    assert login and removal, done.stdout
    user = re.search(r"(\S+)@\S+$", login.group(1)).group(1)

    # The ssh command as printed, with the options that keep it from prompting and a command to run.
    printed = shlex.split(login.group(1))
    assert printed[:3] == ["ssh", "-i", str(key)]
    logged_in = subprocess.run([printed[0], *NON_INTERACTIVE, *printed[1:], "id -un; sudo -n id -un"],
                               capture_output=True, text=True, timeout=SSH_SECONDS, stdin=subprocess.DEVNULL)
    assert (logged_in.returncode, logged_in.stdout) == (0, f"{user}\nroot\n"), logged_in.stderr

    # The removal command exactly as printed, with the key in the environment.
    removed = subprocess.run([str(az_executable), *shlex.split(removal.group(1))[1:]], capture_output=True,
                             text=True, timeout=120, stdin=subprocess.DEVNULL,
                             env=az_environment(netns_stack, tmp_path))
    assert removed.returncode == 0, removed.stderr
    refused = subprocess.run([printed[0], *NON_INTERACTIVE, *printed[1:], "id -un"], capture_output=True, text=True,
                             timeout=SSH_SECONDS, stdin=subprocess.DEVNULL)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr
