"""One test per row of the README's "Error messages" table: the input, the message, the exit code.

Each case runs the script as a subprocess against the local stack, and the
README must show the same message and exit code, so the table cannot drift.
"""

import datetime
import re
import uuid
from pathlib import Path

import pytest
from azure.batch import models
from azure.batch.models._models import BatchJobTerminateOptions

from batch_emulator.faults import add_fault
from tests.e2e.conftest import batch_client
from tests.git_repos import NODE_FILES, make_repository, write_files
from tools import local_stack as stack_module

ERRORS_DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
WRONG_KEY = "A" * 86 + "=="


def create_pool_and_job(run_script, ids, *extra):
    result = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, *extra)
    assert result.returncode == 0, result.stderr


def completed_job(run_script, ids, stack):
    create_pool_and_job(run_script, ids)
    batch_client(stack).begin_terminate_job(  # without options, azure-batch 15.1.0 fails to build the request
        ids.job_id, BatchJobTerminateOptions(termination_reason="UserTerminate"), polling_interval=1).result()


def pool_without_mpi(run_script, ids, stack):
    client = batch_client(stack)
    client.create_pool(models.BatchPoolCreateOptions(
        id=ids.pool_id, vm_size="standard_d2s_v5", target_dedicated_nodes=0,
        virtual_machine_configuration=models.VirtualMachineConfiguration(
            image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
            node_agent_sku_id="batch.node.ubuntu 24.04")))
    client.create_job(models.BatchJobCreateOptions(id=ids.job_id, pool_info=models.BatchPoolInfo(pool_id=ids.pool_id)))


def task_already_sent(run_script, ids, stack):
    create_pool_and_job(run_script, ids)
    assert run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id).returncode == 0


def failing_preparation(run_script, ids, stack):
    env = {"CMD_PREP_TASK": "/bin/bash -c 'exit 7'"}
    assert run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, env=env).returncode == 0
    assert run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id).returncode == 0


def pool_quota_reached(run_script, ids, stack):
    add_fault(stack.batch_endpoint, stack.batch_account, stack.batch_key,
              kind="409", method="POST", path="/pools", code="PoolQuotaReached", count=1)


def repository_dir(stack, name, files=NODE_FILES, git=True):
    """A folder under the stack's directory holding `files`, a committed git repository if `git`."""
    path = stack.workdir / "repositories" / f"{name}-{uuid.uuid4().hex[:8]}"
    if git:
        return str(make_repository(path, files))
    path.mkdir(parents=True)
    write_files(path, files)
    return str(path)


def sas(stack, permission, expiry):
    return stack_module.container_sas_url(stack, permission=permission, expiry=expiry)


CREATE = ("create_pool_job.py", "--pool_id", "{pool}", "--job_id", "{job}")
SEND = ("send_task.py", "--job_id", "{job}", "--task_id", "{task}")
CHECK_WAIT = ("check_task.py", "--job_id", "{job}", "--wait", "--poll_seconds", "0.3")

# (message as in the README, exit code, command, environment overrides, what to set up first)
CASES = [
    ("AZURE_BATCH_ACCOUNT is not set", 2, CREATE, {"AZURE_BATCH_ACCOUNT": None, "BATCH_TOOLKIT_ENV_FILE": ""}, None),
    ("AZURE_BATCH_ACCESS_KEY is not a base64 account key", 2, CREATE, {"AZURE_BATCH_ACCESS_KEY": "secret!"}, None),
    ("AZURE_BATCH_ENDPOINT is '127.0.0.1:80', not a URL with a scheme", 2, CREATE,
     {"AZURE_BATCH_ENDPOINT": "127.0.0.1:80"}, None),
    ("NB_PROCESSES is 'four', not a whole number", 2, SEND, {"NB_PROCESSES": "four"}, None),
    ("MAX_NODES is 0, outside 1..100", 2, CREATE, {"MAX_NODES": "0"}, None),
    ("unrecognized arguments: --pool-id (did you mean --pool_id?) (see python3 create_pool_job.py --help)", 2,
     ("create_pool_job.py", "--pool-id", "{pool}", "--job_id", "{job}"), {}, None),
    ("--vm_size is 'x y', not a VM size name: give one like standard_d2s_v5", 2, CREATE + ("--vm_size", "x y"), {},
     None),
    ("--task_id 'run.1' contains '.'", 2, ("send_task.py", "--job_id", "{job}", "--task_id", "run.1"), {}, None),
    ("BLOB_CONTAINER_URL holds a SAS with no signature field", 2, SEND,
     {"BLOB_CONTAINER_URL": "http://127.0.0.1:1/devstoreaccount1/c?sv=2025-01-05&sp=racwl"}, None),
    ("The container SAS expired", 2, SEND,
     {"BLOB_CONTAINER_URL": lambda s: sas(s, "racwl", datetime.timedelta(minutes=-5))},
     None),
    ("but the task's uploads need write (w)", 2, SEND,
     {"BLOB_CONTAINER_URL": lambda s: sas(s, "rl", datetime.timedelta(hours=2))}, None),
    ("but downloads need read (r)", 2, ("check_task.py",),
     {"BLOB_CONTAINER_URL": lambda s: sas(s, "cw", datetime.timedelta(hours=2))}, None),
    ("AuthenticationFailed: Batch rejected the credentials", 1, CREATE, {"AZURE_BATCH_ACCESS_KEY": WRONG_KEY}, None),
    ("sign in with Microsoft Entra ID, which needs an https:// endpoint", 2, ("check_task.py",),
     {"AZURE_BATCH_ACCESS_KEY": ""}, None),
    ("The storage service refused the SAS signed with AZURE_STORAGE_KEY", 2, SEND,
     {"BLOB_CONTAINER_URL": lambda s: s.container_url, "AZURE_STORAGE_KEY": WRONG_KEY},
     lambda r, i, s: create_pool_and_job(r, i)),
    ("Cannot reach the service", 1, CREATE, {"AZURE_BATCH_ENDPOINT": "http://127.0.0.1:9"}, None),
    ("is not supported by this Batch account", 2, CREATE,
     {"IMAGE_OFFER": "UbuntuServer", "IMAGE_SKU": "18.04-LTS", "NODE_AGENT_SKU_ID": "batch.node.ubuntu 18.04"}, None),
    ("does not exist: create it with python3 create_pool_job.py", 1, SEND, {}, None),
    ("is completed, so it takes no new tasks", 1, SEND, {}, completed_job),
    ("cannot run MPI tasks: inter-node communication is off", 1, SEND, {}, pool_without_mpi),
    ("6 nodes (--nodes or NB_NODES) is more than pool", 2, SEND + ("--nodes", "6"), {},
     lambda r, i, s: create_pool_and_job(r, i)),
    ("already exists in job", 1, SEND, {}, task_already_sent),
    ("the job preparation task failed", 3, CHECK_WAIT, {}, failing_preparation),
    ("PoolQuotaReached: the account's pool quota is reached", 1, CREATE, {}, pool_quota_reached),
    ("does not exist: set it to the path of a git clone of your repository, or to its git URL.", 2, CREATE,
     {"REPOSITORY_URL": lambda s: str(s.workdir / "no-such-repo")}, None),
    ("has no demo_azure_batch/install.sh: add it (the README's Run your own program shows the layout).", 2, CREATE,
     {"REPOSITORY_URL": lambda s: repository_dir(s, "no-install", {"src/x.py": "print(1)\n",
                                                                   "demo_azure_batch/requirements_node.txt": "x\n"},
                                                 git=False)},
     None),
    ("REPOSITORY_URL http://127.0.0.1:9/me/repo.git: 127.0.0.1 refused the connection on port 9", 2, CREATE,
     {"REPOSITORY_URL": "http://127.0.0.1:9/me/repo.git"}, None),
    ("that the repository is public or the URL holds credentials the nodes can use.", 2, CREATE,
     {"REPOSITORY_URL": lambda s: f"file://{s.workdir}/no-such-repo.git"}, None),
]


def case_id(case):
    return re.sub(r"[^a-z0-9]+", "-", case[0].lower()).strip("-")[:40]


def readme_rows() -> list:
    """The rows of the "Error messages" table of docs/errors.md (the README links it)."""
    section = ERRORS_DOC.read_text().split("\n## Error messages\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_readme_shows_the_message_and_exit_code(case):
    message, exit_code = case[0], case[1]
    rows = [row for row in readme_rows() if message in row]
    assert rows, f"no row of docs/errors.md shows {message!r}"
    assert any(row.rstrip().endswith(f"| {exit_code} |") for row in rows), rows


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_script_says_it(case, run_script, ids, local_stack):
    message, exit_code, command, env, prepare = case
    if prepare:
        prepare(run_script, ids, local_stack)
    values = {name: value(local_stack) if callable(value) else value for name, value in env.items()}
    args = [arg.format(pool=ids.pool_id, job=ids.job_id, task=ids.task_id) for arg in command[1:]]
    result = run_script(command[0], *args, env=values)
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
