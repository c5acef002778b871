"""A local stand-in for Azure: Azurite (blob only) and the Batch emulator.

    with start_stack(workdir) as stack:
        subprocess.run([sys.executable, "create_pool_job.py", ...], env=script_environment(stack))

`start_stack` starts both services on free loopback ports, creates the blob
container, signs a container SAS, writes the toolkit's settings to a throwaway
env file (`<workdir>/toolkit.env`) and returns a `LocalStack`. On leaving the
`with` block, normally, on an exception or on Ctrl-C, it stops both services
and every process they started.

Nothing here prints a key or a SAS signature: the fields that hold them are
left out of `repr()`, and errors quote the services' logs, not their settings.
Everything listens on 127.0.0.1 only.

`make local` (tools/local.py) runs the same stack in the foreground for your
own work.
"""

import contextlib
import ctypes
import dataclasses
import datetime
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from toolkit.redaction import redact  # also what tests and tools use as local_stack.redact

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_DIR = REPO_ROOT / "tools" / "azurite"
AZURITE_BLOB = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
SETUP_HINT = "run: make setup"

HOST = "127.0.0.1"
# Azurite's well-known development account and key, published in its documentation.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "mpi-outputs"
# What the toolkit's SAS allows: read, add, create, write, list.
TOOLKIT_SAS_PERMISSION = "racwl"
TOOLKIT_SAS_LIFETIME = datetime.timedelta(hours=4)
NB_NODES = 2
ENV_FILE_VARIABLE = "BATCH_TOOLKIT_ENV_FILE"

# Azurite's flags: blob only, loopback, a port the system picks (Azurite prints it),
# nothing on disk, no telemetry, any API version the SDK sends, no access log.
# Not --loose: SAS signatures, permissions and expiry are really checked.
AZURITE_FLAGS = ("--blobHost", HOST, "--blobPort", "0", "--inMemoryPersistence",
                 "--extentMemoryLimit", "512", "--disableTelemetry", "--skipApiVersionCheck", "--silent")
AZURITE_READY = re.compile(r"Azurite Blob service successfully listens on (https?)://\S+?:(\d+)")
EMULATOR_READY = re.compile(r"Batch emulator listening on (https?://\S+) \(account ([^)\s]+)\)")
# Keyless stack: Azurite checks Bearer tokens (only over HTTPS) and user delegation keys; the emulator
# accepts only Entra ID tokens, like an account with local authentication disabled.
AZURITE_OAUTH_FLAGS = ("--oauth", "basic")
KEYLESS_EMULATOR_OPTIONS = ("--allowed-auth", "aad")
IDENTITY_PATH = "/_emulator/identity/token"
START_TIMEOUT = 60.0
STOP_GRACE = 10.0

class LocalStackError(Exception):
    """The local stack could not start; the message is one line telling what to do."""


@dataclasses.dataclass(frozen=True)
class LocalStack:
    workdir: Path
    blob_endpoint: str          # http://127.0.0.1:PORT/devstoreaccount1
    container: str
    batch_endpoint: str         # http://127.0.0.1:PORT
    batch_account: str
    batch_key: str = dataclasses.field(repr=False)
    storage_account: str = AZURITE_ACCOUNT
    storage_key: str = dataclasses.field(default=AZURITE_KEY, repr=False)
    # The toolkit's variables (with BATCH_TOOLKIT_ENV_FILE): holds the Batch key and the SAS.
    env: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    ca_file: str = ""           # keyless stack: the certificate both services serve (trust it, nothing else)
    repository: str = str(REPO_ROOT)  # what the nodes clone (REPOSITORY_URL)

    @property
    def container_url(self) -> str:
        """The container's URL without a SAS."""
        return f"{self.blob_endpoint}/{self.container}"

    @property
    def env_file(self) -> Path:
        return self.workdir / "toolkit.env"


def container_sas_url(stack: LocalStack, permission: str = TOOLKIT_SAS_PERMISSION,
                      expiry: datetime.datetime | datetime.timedelta = TOOLKIT_SAS_LIFETIME) -> str:
    """The container URL with a SAS allowing `permission` (letters of 'racwdl') until `expiry`.

    `expiry` is a time or a delay from now; a negative delay gives an already-expired SAS.
    """
    from azure.storage.blob import generate_container_sas

    if isinstance(expiry, datetime.timedelta):
        expiry = datetime.datetime.now(datetime.timezone.utc) + expiry
    sas = generate_container_sas(stack.storage_account, stack.container, account_key=stack.storage_key,
                                 permission=permission, expiry=expiry)
    return f"{stack.container_url}?{sas}"


def toolkit_environment(stack: LocalStack, blob_container_url: str) -> dict[str, str]:
    """The variables create_pool_job.py, send_task.py and check_task.py read, for this stack."""
    return {
        "AZURE_BATCH_ACCOUNT": stack.batch_account,
        "AZURE_BATCH_ACCESS_KEY": stack.batch_key,
        "AZURE_BATCH_ENDPOINT": stack.batch_endpoint,
        "BLOB_CONTAINER_URL": blob_container_url,
        "REPOSITORY_URL": stack.repository,
        "NB_NODES": str(NB_NODES),
        # NB_PROCESSES stays unset: its default (4) on the demo's size, one per core on an InfiniBand one.
    }


def write_env_file(path: Path, variables: Mapping[str, str]) -> None:
    """Write `variables` as a dotenv file readable only by the user (it holds secrets)."""
    lines = []
    for name, value in variables.items():
        if "'" in value or "\n" in value:
            raise ValueError(f"{name} holds a quote or a newline; it cannot go into an env file")
        lines.append(f"{name}='{value}'\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when an earlier run's file was there
    with os.fdopen(fd, "w") as out:
        out.write("# Written by tools/local_stack.py for one run of the local stack; safe to delete.\n")
        out.writelines(lines)


def script_environment(stack: LocalStack, **overrides: str | None) -> dict[str, str]:
    """A minimal environment for running the toolkit's scripts against the stack.

    Only PATH, HOME and LANG come from the user's environment, so their own
    AZURE_* variables and proxies never reach the scripts. An override of None
    removes that variable.
    """
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(stack.env)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


# --- processes ---------------------------------------------------------------

def _linux_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


_PRCTL = _linux_prctl()  # looked up here, not in the forked child
_PR_SET_PDEATHSIG = 1


def _stop_with_parent() -> None:
    """In the child before exec: Linux sends it SIGTERM when the process that started it dies, even by
    SIGKILL, so a killed `make local` or test run leaves no service running (SIGTERM stops each cleanly)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def pid_file(log_path: Path) -> Path:
    """Where _spawn writes the pid of the process whose output goes to `log_path` (<workdir>/azurite.pid,
    <workdir>/batch_emulator.pid): how `make local` watches its services, and tests find them."""
    return log_path.with_suffix(".pid")


def _spawn(argv: list[str], log_path: Path, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start `argv` in its own process group, its output going to `log_path` and its pid to pid_file(log_path);
    it stops when we die."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_stop_with_parent)
    pid_file(log_path).write_text(f"{proc.pid}\n")
    return proc


def last_line(log_path: Path) -> str:
    """The last line of a service's log that is not blank, without Azurite's key ('' when there is none)."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return redact(lines[-1], secrets=(AZURITE_KEY,)) if lines else ""


def wait_for_line(proc: subprocess.Popen[bytes], name: str, log_path: Path, pattern: re.Pattern[str],
                  timeout: float = START_TIMEOUT) -> re.Match[str]:
    """Wait until `pattern` shows in the process's log; fail if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        match = pattern.search(log_path.read_text(errors="replace"))
        if match:
            return match
        if proc.poll() is not None:
            raise LocalStackError(f"{name} exited during start (exit {proc.returncode}): "
                                  f"{last_line(log_path) or 'no output'} "
                                  f"(log: {log_path}; {SETUP_HINT} if the install is incomplete)")
        if time.monotonic() > deadline:
            raise LocalStackError(f"{name} did not get ready within {timeout:.0f} s (log: {log_path})")
        time.sleep(0.05)


def wait_until_answering(url: str, name: str, timeout: float = START_TIMEOUT, ca_file: str = "") -> None:
    """Wait until `url` answers HTTP at all (any status; an error status still means it is up)."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]  # loopback: never a proxy
    if ca_file:
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_file)))
    opener = urllib.request.build_opener(*handlers)
    deadline = time.monotonic() + timeout
    while True:
        try:
            opener.open(url, timeout=5).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError as error:
            if time.monotonic() > deadline:
                raise LocalStackError(f"{name} does not answer at {url}: {error}") from None
            time.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL whatever is left of its process group."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(grace)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):  # a second Ctrl-C skips the grace period
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the process if still there, and any child it left behind
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def start_azurite(workdir: Path, stack: contextlib.ExitStack, tls: tuple[Path, Path] | None = None) -> str:
    """Start Azurite's blob service; returns its account endpoint. `stack` stops it later.
    With `tls` (certificate, key): HTTPS and OAuth (Bearer tokens, user delegation keys)."""
    if not AZURITE_BLOB.exists():
        raise LocalStackError(f"Azurite is not installed in {AZURITE_DIR}; {SETUP_HINT}")
    if shutil.which("node") is None:
        raise LocalStackError(f"node is not on PATH: install Node.js 20 or newer, then {SETUP_HINT}")
    location = workdir / "azurite"
    location.mkdir(parents=True, exist_ok=True)
    env = {name: value for name, value in os.environ.items() if name != "AZURITE_ACCOUNTS"}  # only the dev account
    log_path = workdir / "azurite.log"
    flags = [*AZURITE_FLAGS, *(AZURITE_OAUTH_FLAGS + ("--cert", str(tls[0]), "--key", str(tls[1])) if tls else ())]
    proc = _spawn([str(AZURITE_BLOB), *flags], log_path, location, env)  # its cwd: nothing lands in the repo
    stack.callback(stop_process, proc)
    match = wait_for_line(proc, "Azurite", log_path, AZURITE_READY)
    endpoint = f"{match.group(1)}://{HOST}:{match.group(2)}/{AZURITE_ACCOUNT}"
    wait_until_answering(endpoint, "Azurite", ca_file=str(tls[0]) if tls else "")
    return endpoint


# What azure-identity and requests read from the process environment, not from the toolkit's env file.
PROCESS_VARIABLES = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_TOKEN_CREDENTIALS", "REQUESTS_CA_BUNDLE",
                     "NO_PROXY")


def _identity_header() -> str:
    from batch_emulator import DEFAULT_IDENTITY_HEADER

    return DEFAULT_IDENTITY_HEADER


def _emulator_key(account: str) -> str:
    """The emulator's account key, from the batch_emulator package (the repository root is on sys.path:
    pytest's pythonpath, or python -m from the root as make demo runs it)."""
    try:
        from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
    except ImportError as error:
        raise LocalStackError(f"cannot import the Batch emulator from {REPO_ROOT} ({error})") from None
    if account != DEFAULT_ACCOUNT_NAME:
        raise LocalStackError(f"the Batch emulator runs account {account!r}, not {DEFAULT_ACCOUNT_NAME!r}")
    return DEFAULT_ACCOUNT_KEY


def start_batch_emulator(workdir: Path, stack: contextlib.ExitStack, options: tuple[str, ...] = (),
                         tls: tuple[Path, Path] | None = None, isolation: str = "none") -> tuple[str, str, str]:
    """Start the Batch emulator with its nodes under `<workdir>/batch`; returns (endpoint, account, key).

    `options` go to its command line; with `tls` it serves HTTPS and trusts that certificate (its nodes
    upload to the HTTPS Azurite). `isolation` is the emulator's --isolation: "none" (the default here, also
    as root: fast, the venv's MPICH) or "netns" (isolated nodes, root; tests/e2e/test_isolated_nodes.py,
    make demo-nodes)."""
    root = workdir / "batch"
    shutil.rmtree(root, ignore_errors=True)  # a fresh emulator, not the leftovers of an earlier run
    root.mkdir(parents=True)
    env = dict(os.environ)  # the emulator line-buffers its log itself
    # The nodes run `python3` and `mpirun`: those of this interpreter's environment (the venv).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    log_path = workdir / "batch_emulator.log"
    argv = [sys.executable, "-m", "batch_emulator", "--host", HOST, "--port", "0", "--root", str(root),
            "--isolation", isolation, *options]
    if tls:
        argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        env["REQUESTS_CA_BUNDLE"] = str(tls[0])
    proc = _spawn(argv, log_path, REPO_ROOT, env)
    stack.callback(stop_process, proc)
    match = wait_for_line(proc, "The Batch emulator", log_path, EMULATOR_READY)
    endpoint, account = match.group(1).rstrip("/"), match.group(2)
    wait_until_answering(endpoint, "The Batch emulator", ca_file=str(tls[0]) if tls else "")
    return endpoint, account, _emulator_key(account)


def create_container(blob_endpoint: str, container: str = CONTAINER, ca_file: str = "") -> None:
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    verify: dict[str, Any] = {"connection_verify": ca_file} if ca_file else {}
    service = BlobServiceClient(blob_endpoint, credential={"account_name": AZURITE_ACCOUNT,
                                                           "account_key": AZURITE_KEY}, **verify)
    with service:
        try:
            service.create_container(container)
        except ResourceExistsError:
            pass


def keyless_environment(stack: LocalStack, identity_header: str) -> dict[str, str]:
    """The keyless stack's variables: no key, no SAS; Entra ID from the emulator's managed-identity endpoint.

    AZURE_TOKEN_CREDENTIALS narrows DefaultAzureCredential to ManagedIdentityCredential, which with
    IDENTITY_ENDPOINT set asks that endpoint (never the instance metadata address). REQUESTS_CA_BUNDLE
    makes these processes, and only these, trust the stack's certificate.
    """
    variables = toolkit_environment(stack, stack.container_url)
    del variables["AZURE_BATCH_ACCESS_KEY"]
    return {**variables, "IDENTITY_ENDPOINT": stack.batch_endpoint + IDENTITY_PATH, "IDENTITY_HEADER": identity_header,
            "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential", "REQUESTS_CA_BUNDLE": stack.ca_file,
            "NO_PROXY": f"{HOST},localhost"}


@contextlib.contextmanager
def start_stack(workdir: str | Path | None = None, keyless: bool = False,
                isolation: str = "none", emulator_options: tuple[str, ...] = ()) -> Iterator[LocalStack]:
    """Run Azurite and the Batch emulator for the `with` block; see the module's docstring.

    `workdir` keeps the services' logs, the emulator's nodes and toolkit.env;
    without one, a temporary directory is used and removed afterwards.
    `keyless`: both services over HTTPS with a certificate made here, the emulator refusing keys, and
    settings with no key and no SAS (keyless_environment): the scripts sign in with Entra ID.
    `emulator_options`: more options of `python -m batch_emulator` (e.g. a core quota).
    """
    try:
        import azure.batch  # noqa: F401  (the emulator and the scripts need both)
        import azure.storage.blob  # noqa: F401
    except ImportError as error:
        raise LocalStackError(f"{error.name} is missing from {sys.executable}: {SETUP_HINT}, "
                              f"then use .venv/bin/python") from None
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="mpi-batch-local-"))
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        from tools.certs import make_self_signed  # the repository root is on sys.path (see _emulator_key)

        tls = make_self_signed(workdir / "tls") if keyless else None
        ca_file = str(tls[0]) if tls else ""
        blob_endpoint = start_azurite(workdir, stack, tls)
        create_container(blob_endpoint, ca_file=ca_file)
        # Isolated nodes see only what they are given: a bare clone of this checkout, shown read-only.
        repository = mirror_repository(workdir) if isolation == "netns" else str(REPO_ROOT)
        shares = ("--node-share", repository) if isolation == "netns" else ()
        batch_endpoint, batch_account, batch_key = start_batch_emulator(
            workdir, stack, (*(KEYLESS_EMULATOR_OPTIONS if keyless else ()), *shares, *emulator_options), tls,
            isolation)
        local = LocalStack(workdir=workdir, blob_endpoint=blob_endpoint, container=CONTAINER,
                           batch_endpoint=batch_endpoint, batch_account=batch_account, batch_key=batch_key,
                           ca_file=ca_file, repository=repository)
        if keyless:
            variables = keyless_environment(local, _identity_header())
            write_env_file(local.env_file, {name: value for name, value in variables.items()
                                            if name not in PROCESS_VARIABLES})
        else:
            variables = toolkit_environment(local, container_sas_url(local))
            write_env_file(local.env_file, variables)
        variables[ENV_FILE_VARIABLE] = str(local.env_file)
        yield dataclasses.replace(local, env=MappingProxyType(variables))


# --- isolated nodes: paths they can see -------------------------------------------

# Isolated nodes (--isolation netns) each have a private /tmp, and their tasks run as _azbatch: their
# files cannot live under /tmp, nor under a checkout in a directory other users cannot enter (/root).
ISOLATED_WORK_ROOT = Path("/var/tmp/mpi-batch-toolkit")


def isolated_workdir(name: str) -> Path:
    """Where a stack with isolated nodes keeps its files (root's: isolated nodes need root anyway)."""
    return ISOLATED_WORK_ROOT / name


def mirror_repository(workdir: Path) -> str:
    """A bare clone of this checkout's HEAD under `workdir`, for the nodes to clone: wherever the checkout
    is (under /tmp, or /root), they can read this one."""
    mirror = workdir / "repository.git"
    shutil.rmtree(mirror, ignore_errors=True)
    done = subprocess.run(["git", "clone", "--bare", "--quiet", str(REPO_ROOT), str(mirror)], capture_output=True,
                          text=True, check=False, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise LocalStackError(f"cannot clone {REPO_ROOT} for the nodes: {done.stderr.strip() or done.returncode}")
    return str(mirror)
