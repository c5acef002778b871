"""Fixtures of the end-to-end tests: the scripts as subprocesses against Azurite and the Batch emulator.

- `local_stack` (session): one Azurite + Batch emulator for the whole session,
  so one per pytest-xdist worker (tools/local_stack.py: free ports, its own
  directory). If it cannot start, the tests fail with a line saying what to
  run (`make setup`): nothing is skipped.
- `run_script`: runs create_pool_job.py, send_task.py or check_task.py with
  the stack's settings and a minimal environment, in the test's own temporary
  directory (so check_task.py's `outputs/` lands there).
- `ids`: pool, job and task ids unique to the test, so tests on the shared
  stack never see each other's pools and jobs.
- `batch`: a BatchClient for the stack's emulator (no retries); `fault`:
  the emulator's fault injection for one test.
"""

import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from tests.e2e.recorded_client import Raw, make_node_pool, running_emulator
from toolkit.redaction import redact
from tools import local_stack as stack_module

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPTS = ("create_pool_job.py", "send_task.py", "check_task.py", "delete_pool_job.py")
SCRIPT_TIMEOUT = 120


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    try:
        with stack_module.start_stack(tmp_path_factory.mktemp("local-stack")) as stack:
            yield stack
    except stack_module.LocalStackError as error:
        pytest.fail(str(error), pytrace=False)


def secrets_in(environment) -> list:
    """What no script may ever print: account keys and SAS signatures among its settings."""
    keys = [environment.get(name, "") for name in ("AZURE_BATCH_ACCESS_KEY", "AZURE_STORAGE_KEY")]
    signatures = re.findall(r"sig=([^&\s]+)", " ".join(environment.values()))
    decoded = [urllib.parse.unquote(signature) for signature in signatures]
    return [secret for secret in {*keys, *signatures, *decoded} if len(secret) >= 8]


# What must never show in a script's output, whatever its settings: a JWT (an Entra ID access token's
# header starts with base64url '{"', i.e. "eyJ"), a Bearer token, or an unredacted SAS signature.
LEAKED_TOKEN = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+|\bBearer\s+(?!REDACTED)[A-Za-z0-9._~+/=-]{8,}|"
                          r"\bsig=(?!REDACTED)[^&\s'\"]{8,}", re.IGNORECASE)


class ScriptRunner:
    """run_script("send_task.py", "--job_id", job, env={"NB_NODES": "1"}) -> CompletedProcess (text).

    `env` overrides the stack's variables for this run (None removes one);
    `cwd` is the test's temporary directory unless given. Every run's output
    is scanned for tracebacks, for the keys and SAS signatures it was
    given, and for any access token or SAS signature (LEAKED_TOKEN): printing
    one fails the test, whichever test it is.
    """

    def __init__(self, stack, cwd: Path):
        self.stack = stack
        self.cwd = cwd

    def __call__(self, script: str, *args: str, env=None, cwd=None, timeout: float = SCRIPT_TIMEOUT):
        if not script.endswith(".py"):
            script += ".py"
        if script not in SCRIPTS:
            raise ValueError(f"run_script runs one of {', '.join(SCRIPTS)}, not {script!r}")
        environment = stack_module.script_environment(self.stack, **(env or {}))
        result = subprocess.run([sys.executable, str(REPO_ROOT / script), *map(str, args)],
                                cwd=cwd or self.cwd, env=environment,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        printed = result.stdout + result.stderr
        secrets = secrets_in(environment)
        assert "Traceback" not in printed, f"{script} printed a traceback:\n{redact(printed, secrets=secrets)}"
        for secret in secrets:
            assert secret not in printed, f"{script} printed a key or SAS signature"
        assert not LEAKED_TOKEN.search(printed), f"{script} printed an access token or a SAS signature"
        return result


@pytest.fixture
def run_script(local_stack, tmp_path):
    return ScriptRunner(local_stack, tmp_path)


def batch_client(stack):
    """A BatchClient for the stack's emulator, without retries, so a test sees every answer."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    return BatchClient(stack.batch_endpoint, AzureNamedKeyCredential(stack.batch_account, stack.batch_key),
                       retry_total=0)


@pytest.fixture
def batch(local_stack):
    return batch_client(local_stack)


def keep_nodes(client, pool_id: str, nodes: int = 2) -> None:
    """Hold an autoscale pool at `nodes` nodes, so they stay after its tasks: a node that leaves the pool
    takes its files with it (as on Azure), and some tests read a finished task's files from its node."""
    from azure.batch import models

    client.disable_pool_auto_scale(pool_id)
    client.begin_resize_pool(pool_id, models.BatchPoolResizeOptions(target_dedicated_nodes=nodes),
                             polling_interval=0).result()


@pytest.fixture
def fault(local_stack):
    """fault(kind, method, path, **options) injects an emulator fault for this test (cleared after it);
    fault.fired() counts the faults given so far."""
    from batch_emulator.faults import add_fault, clear_faults, list_faults

    credentials = (local_stack.batch_endpoint, local_stack.batch_account, local_stack.batch_key)

    def inject(kind, method, path, **options):
        add_fault(*credentials, kind=kind, method=method, path=path, **options)

    inject.fired = lambda: sum(rule["fired"] for rule in list_faults(*credentials))
    yield inject
    clear_faults(*credentials)


@pytest.fixture
def ids(request):
    """pool_id, job_id and task_id made of the test's name and a random suffix (at most 64 characters)."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-").lower()[:40] or "test"
    suffix = uuid.uuid4().hex[:8]
    return SimpleNamespace(pool_id=f"pool-{name}-{suffix}", job_id=f"job-{name}-{suffix}",
                           task_id=f"task-{name}-{suffix}")


@pytest.fixture(scope="session")
def az_executable():
    """Path of the Azure CLI's `az`, installed once per machine and Python version (tests/e2e/azure_cli.py)."""
    from tests.e2e.azure_cli import installed_az

    return installed_az()


# ---- the emulator's own API: one emulator per test module (tests/e2e/recorded_client.py) ----

@pytest.fixture(scope="module")
def emulator(request, tmp_path_factory):
    """A Batch emulator of the module's own (--isolation none), named after the module; a module that needs
    other options defines its own."""
    yield from running_emulator(tmp_path_factory, request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))


@pytest.fixture(scope="module")
def raw(emulator):
    """A SharedKey-signed raw client of the module's emulator: any method, path and body."""
    return Raw(emulator)


@pytest.fixture(scope="module")
def sdk(emulator):
    """The SDK's client of the module's emulator, without retries (a refusal shows at once)."""
    return BatchClient(emulator, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY), retry_total=0)


@pytest.fixture(scope="module")
def node_pool(raw):
    """A pool of the module's emulator whose nodes run tasks."""
    return make_node_pool(raw)


# ---- isolated nodes (--isolation netns): root, the node image ----

def require_isolation(reason: "str | None") -> None:
    """Skip, saying why, when isolated nodes cannot run here (``reason``); under CI=true fail instead."""
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"isolated-node tests must run in CI: {reason}", pytrace=False)
        pytest.skip(f"isolated nodes cannot run here: {reason}")


def isolated_stack(name: str):
    """Azurite and an emulator with isolated nodes, with the toolkit's settings (tools/local_stack.py), in a
    work directory of its own; a generator for a module fixture to yield from."""
    workdir = stack_module.isolated_workdir(f"{name}-{uuid.uuid4().hex[:8]}")
    try:
        with stack_module.start_stack(workdir, isolation="netns") as stack:
            yield stack
    except stack_module.LocalStackError as error:
        pytest.fail(str(error), pytrace=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
