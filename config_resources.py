"""Settings shared by create_pool_job.py, send_task.py and check_task.py.

The names are the tutorial's (resource_gpe_name, batch, blob_container,
repository, cmd_prep_task, nb_processes, coordination_command, start_command)
plus the pool settings. Values come from the environment and from a `.env`
file next to this module; the real environment wins over `.env`. Set
BATCH_TOOLKIT_ENV_FILE to read another file instead (the local demo uses a
throwaway one), or to an empty string to read no file at all.

Importing this module never fails, so `--help` and the tests work without any
configuration. A script asks `read_settings()` for the values and turns them
into the checked settings it needs (`pool_settings`, `task_settings`,
`batch_access`, `storage`: frozen dataclasses whose fields are all set), which
call `require(settings, ...)`: a missing or malformed variable raises
ConfigError with one line naming the variable and how to fix it.
Every variable is documented in `.env.example` and in the README. Reading the
env file is toolkit/envfile.py; the checks of single values are toolkit/values.py.
"""

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolkit.envfile import load_environment
from toolkit.values import (
    check_endpoint,
    check_key,
    check_program,
    is_vm_size_name,
    split_container,
)

ENV_FILE_VARIABLE = "BATCH_TOOLKIT_ENV_FILE"
DEFAULT_ENV_FILE = Path(__file__).resolve().with_name(".env")

# Inter-node communication caps a pool's size; 100 is the documented limit for such pools.
INTER_NODE_POOL_CAP = 100
# The service accepts autoscale evaluation intervals from 5 minutes to 168 hours.
MIN_EVALUATION_MINUTES, MAX_EVALUATION_MINUTES = 5, 168 * 60

DEFAULTS = {
    "NB_NODES": "2",
    "NB_PROCESSES": "4",
    "MAX_NODES": "5",
    # A current general-purpose size that runs the Gen2 Ubuntu 24.04 image.
    "VM_SIZE": "standard_d2s_v5",
    # Ubuntu 18.04 and 20.04 are retired on Batch; 24.04 LTS is current.
    "IMAGE_PUBLISHER": "canonical",
    "IMAGE_OFFER": "ubuntu-24_04-lts",
    "IMAGE_SKU": "server",
    "IMAGE_VERSION": "latest",
    "NODE_AGENT_SKU_ID": "batch.node.ubuntu 24.04",
    "AUTOSCALE_EVALUATION_MINUTES": "5",
    "TASK_MAX_WALL_CLOCK_MINUTES": "60",
    # The MPI program the default START_COMMAND runs: a path inside the repository.
    "PROGRAM": "demo_azure_batch/script.py",
}
# What the preparation task needs in the repository (the README's "Run your own program" layout).
INSTALL_SCRIPT = "demo_azure_batch/install.sh"
NODE_REQUIREMENTS = "demo_azure_batch/requirements_node.txt"
EXAMPLE_ENV_FILE = Path(__file__).resolve().with_name(".env.example")

# What to tell the user for each variable when it is missing or wrong.
HOW_TO_SET = {
    "AZURE_BATCH_ACCOUNT": "the Batch account name, e.g. mybatchaccount (az batch account list)",
    "AZURE_BATCH_ACCESS_KEY": "the account's primary key "
                              "(az batch account keys list --name ACCOUNT --resource-group GROUP), "
                              "or leave it empty to sign in with Microsoft Entra ID (az login)",
    "AZURE_BATCH_ENDPOINT": "the account URL with its scheme, e.g. https://mybatchaccount.westeurope.batch.azure.com",
    "BLOB_CONTAINER_URL": "the container URL, e.g. https://mystorage.blob.core.windows.net/outputs, "
                          "with a SAS in its query or in AZURE_STORAGE_SAS_TOKEN, or without (see AZURE_STORAGE_KEY)",
    "AZURE_STORAGE_SAS_TOKEN": "a container SAS "
                               "(az storage container generate-sas ... --permissions racwl --expiry DATE)",
    "AZURE_STORAGE_KEY": "the storage account's key (az storage account keys list --account-name ACCOUNT), "
                         "or leave it empty and give a SAS, or neither (Microsoft Entra ID: user delegation SAS)",
    "REPOSITORY_URL": "the git URL or local path of the repository the nodes clone (it holds demo_azure_batch/)",
    "NB_NODES": f"a whole number of nodes from 1 to {INTER_NODE_POOL_CAP}",
    "NB_PROCESSES": "a whole number of MPI processes, 1 or more",
    "MAX_NODES": f"a whole number of nodes from 1 to {INTER_NODE_POOL_CAP}",
    "AUTOSCALE_EVALUATION_MINUTES": f"a whole number of minutes from {MIN_EVALUATION_MINUTES} "
                                    f"to {MAX_EVALUATION_MINUTES}",
    "TASK_MAX_WALL_CLOCK_MINUTES": "a whole number of minutes from 1 to 259200 (180 days)",
    "VM_SIZE": "a VM size name, e.g. standard_d2s_v5",
    "PROGRAM": "a relative path inside the repository, e.g. demo_azure_batch/script.py or src/app.py",
    "PROGRAM_ARGS": "the program's arguments, without single quotes or newlines, e.g. --intervals 1000",
    ENV_FILE_VARIABLE: "the path of a readable NAME=value file, or to an empty string to read none",
}

# Every variable the toolkit reads; each is documented in .env.example and the README.
VARIABLES = ("AZURE_RESOURCE_GROUP", "AZURE_BATCH_ACCOUNT", "AZURE_BATCH_ACCESS_KEY", "AZURE_BATCH_ENDPOINT",
             "BLOB_CONTAINER_URL", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_KEY", "REPOSITORY_URL", "CMD_PREP_TASK",
             "COORDINATION_COMMAND", "START_COMMAND", "PROGRAM_ARGS", *DEFAULTS, ENV_FILE_VARIABLE)
# How close an unknown name in the env file must be to one of VARIABLES to be reported as a likely typo.
TYPO_CUTOFF = 0.8

_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
# A task may run at most 180 days on Batch.
MAX_WALL_CLOCK_MINUTES = 180 * 24 * 60


class ConfigError(Exception):
    """Missing or malformed settings; its message is one line for the user naming every one of them.

    `variable` is the first one named, `variables` all of them; `where` says where to set them (the env
    file read and the environment); `hint` ends the line (e.g. that no .env file was found)."""

    def __init__(self, variable: str, problem: str, more: Sequence[tuple[str, str]] = (), hint: str = "",
                 where: str = "the environment"):
        how = HOW_TO_SET.get(variable, "a valid value")
        if variable == ENV_FILE_VARIABLE:  # it names the env file, so only the environment can set it
            message = f"{variable} {problem}. Set it in the environment to {how}."
        else:
            message = f"{variable} {problem}. Set it to {how} in {where}."
        if more:
            message += " Also: " + "; ".join(
                f"{name} {what} (set it to {HOW_TO_SET.get(name, 'a valid value')})" for name, what in more) + "."
        super().__init__(message + (f" {hint}" if hint else ""))
        self.variable = variable
        self.variables = (variable, *(name for name, _ in more))


@dataclass(frozen=True)
class Settings:
    resource_gpe_name: str
    batch: Mapping[str, str]            # name, key, url
    blob_container: Mapping[str, str]   # url (without query), sas_token (without '?')
    storage_key: str                    # optional: with it (or with neither it nor a SAS), a SAS per use
    repository: str
    cmd_prep_task: str
    nb_nodes: int | None            # None when malformed (see problems), like the other numbers
    nb_processes: int | None
    coordination_command: str
    start_command: str
    vm_size: str
    max_nodes: int | None
    image_reference: Mapping[str, str]  # publisher, offer, sku, version
    node_agent_sku_id: str
    autoscale_evaluation_minutes: int | None
    task_max_wall_clock_minutes: int | None
    problems: Mapping[str, str]         # variable -> what is wrong with its value
    env_file: str | None = None         # the env file read, if any
    program: str = DEFAULTS["PROGRAM"]  # PROGRAM: what the default START_COMMAND runs
    program_args: str = ""              # PROGRAM_ARGS
    start_command_is_default: bool = True  # False when START_COMMAND is set
    warnings: tuple[str, ...] = ()      # e.g. a name in the env file that looks like a typo of one of ours
    no_env_file_hint: str = ""          # set when no env file was looked for in vain: says to copy .env.example


def default_cmd_prep_task(repository: str) -> str:
    """The tutorial's preparation: clone the repository, enter demo_azure_batch, run install.sh.

    It installs git first when the node has none (it runs as root, the pool's admin auto-user): git on
    the Batch Ubuntu image is likely but not documented (batch-facts §26). It clones into `repo` under
    the job preparation task's working directory (replacing an earlier clone, so a re-run after a node
    reboot works). A repository without demo_azure_batch/install.sh fails with exit code 3 and one line
    on stderr naming the file.
    """
    return ("/bin/bash -c 'set -e; "
            "command -v git >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install "
            "-y -q git; }; rm -rf repo; "
            f'git clone --quiet "{repository}" repo; '
            f'if [ ! -f repo/{INSTALL_SCRIPT} ]; then echo "{INSTALL_SCRIPT} not found in REPOSITORY_URL '
            f'{repository}: add it (see the README, Run your own program)" >&2; exit 3; fi; '
            "cd repo/demo_azure_batch; chmod +x install.sh; ./install.sh'")


def default_coordination_command() -> str:
    """Runs on every node of the MPI task before mpirun starts: fails early if MPI is missing."""
    return "/bin/bash -c 'command -v mpirun >/dev/null && echo \"Node $AZ_BATCH_NODE_ID ready for MPI\"'"


def default_start_command(nb_processes: int, program: str = DEFAULTS["PROGRAM"], program_args: str = "") -> str:
    """mpirun of PROGRAM (a path inside the repository) over the task's nodes, run by the pool's non-admin
    auto-user: the ONE place that builds the default START_COMMAND.

    It works with Open MPI 4.1 (the nodes' apt package) and with MPICH's hydra (the local emulator's
    --isolation none mode). Open MPI's settings are exported as OMPI_* variables, which MPICH
    ignores and Open MPI passes to its daemons on the other nodes:
    - OMPI_MCA_rmaps_base_oversubscribe=1: `--host a,b` gives one slot per node, so more processes
      than nodes would fail with "not enough slots" (Open MPI 4.1's --oversubscribe).
    - OMPI_MCA_btl_tcp_if_include / oob_tcp_if_include=eth0: use only the node's own interface; a
      docker0-like bridge with one address on every node makes mpirun hang.
    - OMPI_MCA_mca_base_env_list: the AZ_BATCH_* variables the ranks on other nodes get (Open MPI's
      -x); only the primary's environment has them otherwise.
    `cd "$AZ_BATCH_TASK_SHARED_DIR"`: mpirun's directory is the ranks' directory on every node, and
    this one exists on all of them and is writable by the task's user (the primary's wd is not on
    the others; the preparation task's clone is root's, read-only to the task). The program is
    addressed by its absolute path in that clone, the same on every node; a .py file runs with
    `python3 -m mpi4py` from PATH (the system's on a node, the venv's in the emulator's none mode),
    anything else is executed. `-m mpi4py`: an uncaught exception on one rank calls MPI_Abort, which
    ends every rank in seconds with the traceback on stderr; with plain `python3`, the crashing rank
    waits in MPI_Finalize at exit for ranks that wait for it, until the task's wall clock (N billed
    nodes for TASK_MAX_WALL_CLOCK_MINUTES).
    """
    forwarded = ";".join(("AZ_BATCH_HOST_LIST", "AZ_BATCH_NODE_LIST", "AZ_BATCH_TASK_SHARED_DIR",
                          "AZ_BATCH_JOB_ID", "AZ_BATCH_TASK_ID"))
    path = f'"$AZ_BATCH_JOB_PREP_WORKING_DIR/repo/{program}"'
    runner = f"python3 -m mpi4py {path}" if program.endswith(".py") else path
    return ("/bin/bash -c 'export OMPI_MCA_rmaps_base_oversubscribe=1 "
            "OMPI_MCA_btl_tcp_if_include=eth0 OMPI_MCA_oob_tcp_if_include=eth0 "
            f'OMPI_MCA_mca_base_env_list=\"{forwarded}\"; '
            'cd "$AZ_BATCH_TASK_SHARED_DIR" && '
            f'exec mpirun -np {nb_processes} --host "$AZ_BATCH_HOST_LIST" {runner}'
            + (f" {program_args}" if program_args else "") + "'")


def likely_typos(names: Sequence[str]) -> dict[str, str]:
    """Unknown names that look like one of the toolkit's variables (NB_NODE -> NB_NODES), each with that variable."""
    typos = {}
    for name in names:
        if name in VARIABLES:
            continue
        match = difflib.get_close_matches(name.upper(), VARIABLES, n=1, cutoff=TYPO_CUTOFF)
        if match:
            typos[name] = match[0]
    return typos


def _positive_int(values: Mapping[str, str], name: str, problems: dict[str, str], low: int = 1,
                  high: int | None = None) -> int | None:
    raw = values.get(name, DEFAULTS.get(name, "")).strip()
    try:
        number = int(raw)
    except ValueError:
        problems[name] = f"is {raw!r}, not a whole number"
        return None
    if number < low or (high is not None and number > high):
        problems[name] = f"is {number}, outside {low}..{high}" if high else f"is {number}, below {low}"
        return None
    return number


def read_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting; never raises. Malformed values are listed in `problems`."""
    environment = load_environment(os.environ if environ is None else environ, ENV_FILE_VARIABLE, DEFAULT_ENV_FILE)
    values, env_file, env_file_problem = environment.values, environment.env_file, environment.problem

    def get(name: str) -> str:
        return values.get(name, DEFAULTS.get(name, "")).strip()

    problems: dict[str, str] = {ENV_FILE_VARIABLE: env_file_problem} if env_file_problem else {}

    batch = {"name": get("AZURE_BATCH_ACCOUNT"), "key": get("AZURE_BATCH_ACCESS_KEY"),
             "url": get("AZURE_BATCH_ENDPOINT").rstrip("/")}
    if batch["name"] and not _ACCOUNT_NAME.match(batch["name"]):
        problems["AZURE_BATCH_ACCOUNT"] = f"is {batch['name']!r}; account names are 3-24 lowercase letters and digits"
    check_key("AZURE_BATCH_ACCESS_KEY", batch["key"], problems)
    check_endpoint(batch["url"], problems)
    blob_container = split_container(get("BLOB_CONTAINER_URL"), get("AZURE_STORAGE_SAS_TOKEN"), problems)
    storage_key = get("AZURE_STORAGE_KEY")
    check_key("AZURE_STORAGE_KEY", storage_key, problems)

    repository = get("REPOSITORY_URL")
    if any(c in repository for c in "\"'`$\\\t\n"):  # it goes inside "..." in a bash -c '...' command
        problems["REPOSITORY_URL"] = "contains quotes, '$', backslashes, tabs or newlines"
    if not is_vm_size_name(get("VM_SIZE")):
        problems["VM_SIZE"] = f"is {get('VM_SIZE')!r}, not a VM size name"
    nb_processes = _positive_int(values, "NB_PROCESSES", problems)
    program, program_args = get("PROGRAM"), get("PROGRAM_ARGS")
    check_program(program, program_args, problems)
    where = env_file or "the env file"
    warnings = tuple(f"{where} sets {name}, which the toolkit does not read: did you mean {intended}?"
                     for name, intended in likely_typos(environment.file_names).items())
    hint = (f"No .env file was found ({DEFAULT_ENV_FILE}): cp {EXAMPLE_ENV_FILE.name} .env next to the "
            "scripts and fill it in." if environment.default_missing else "")
    default_start = default_start_command(nb_processes, program, program_args) \
        if nb_processes and "PROGRAM" not in problems and "PROGRAM_ARGS" not in problems else ""

    return Settings(
        resource_gpe_name=get("AZURE_RESOURCE_GROUP"),
        batch=batch,
        blob_container=blob_container,
        storage_key=storage_key,
        repository=repository,
        cmd_prep_task=get("CMD_PREP_TASK") or (default_cmd_prep_task(repository) if repository else ""),
        nb_nodes=_positive_int(values, "NB_NODES", problems, high=INTER_NODE_POOL_CAP),
        nb_processes=nb_processes,
        coordination_command=get("COORDINATION_COMMAND") or default_coordination_command(),
        start_command=get("START_COMMAND") or default_start,
        vm_size=get("VM_SIZE"),
        max_nodes=_positive_int(values, "MAX_NODES", problems, high=INTER_NODE_POOL_CAP),
        image_reference={key: get(f"IMAGE_{key.upper()}") for key in ("publisher", "offer", "sku", "version")},
        node_agent_sku_id=get("NODE_AGENT_SKU_ID"),
        autoscale_evaluation_minutes=_positive_int(values, "AUTOSCALE_EVALUATION_MINUTES", problems,
                                                   low=MIN_EVALUATION_MINUTES, high=MAX_EVALUATION_MINUTES),
        task_max_wall_clock_minutes=_positive_int(values, "TASK_MAX_WALL_CLOCK_MINUTES", problems,
                                                  high=MAX_WALL_CLOCK_MINUTES),
        problems=problems,
        env_file=env_file,
        program=program,
        program_args=program_args,
        start_command_is_default=not get("START_COMMAND"),
        warnings=warnings,
        no_env_file_hint=hint,
    )


# Where each variable's value lives in Settings, to tell "missing" apart from "set".
_VALUE_OF = {
    "AZURE_BATCH_ACCOUNT": lambda s: s.batch["name"],
    "AZURE_BATCH_ENDPOINT": lambda s: s.batch["url"],
    "BLOB_CONTAINER_URL": lambda s: s.blob_container["url"],
    "AZURE_STORAGE_SAS_TOKEN": lambda s: s.blob_container["sas_token"],
    "REPOSITORY_URL": lambda s: s.cmd_prep_task,  # CMD_PREP_TASK may replace the repository
}

BATCH_VARIABLES = ("AZURE_BATCH_ACCOUNT", "AZURE_BATCH_ACCESS_KEY", "AZURE_BATCH_ENDPOINT")


def problems_of(settings: Settings, *variables: str) -> list[tuple[str, str]]:
    """(variable, what is wrong) for each of `variables` that is missing or malformed, in order
    (a broken env file first: every value may come from it)."""
    if ENV_FILE_VARIABLE in settings.problems:
        return [(ENV_FILE_VARIABLE, settings.problems[ENV_FILE_VARIABLE])]
    found: dict[str, str] = {}
    for variable in variables:
        if variable in settings.problems:
            found.setdefault(variable, settings.problems[variable])
            continue
        value_of = _VALUE_OF.get(variable)
        if value_of is not None and not value_of(settings):
            found.setdefault(variable, "is not set")
        if variable == "BLOB_CONTAINER_URL" and "AZURE_STORAGE_KEY" in settings.problems:
            found.setdefault("AZURE_STORAGE_KEY", settings.problems["AZURE_STORAGE_KEY"])
    return list(found.items())


def require(settings: Settings, *variables: str) -> None:
    """Raise one ConfigError naming every one of `variables` that is missing or malformed (a broken
    env file alone: every value may come from it); with no .env at all, it also says to copy .env.example."""
    found = problems_of(settings, *variables)
    if found:
        (variable, problem), *more = found
        missing = any(what == "is not set" for _, what in found)
        where = f"{settings.env_file} or the environment" if settings.env_file else "the environment"
        raise ConfigError(variable, problem, more, hint=settings.no_env_file_hint if missing else "", where=where)


# --- checked settings -----------------------------------------------------------
# What a script has required, with honest types: each function below calls require() for its
# variables (same messages, same order) and returns a frozen dataclass whose fields are set.


@dataclass(frozen=True)
class BatchAccess:
    """The Batch account: AZURE_BATCH_ACCOUNT and AZURE_BATCH_ENDPOINT set and valid, AZURE_BATCH_ACCESS_KEY valid."""
    account: str
    key: str                            # '' when not set: the scripts sign in with Microsoft Entra ID
    endpoint: str                       # without a trailing '/'


@dataclass(frozen=True)
class Storage:
    """The blob container: BLOB_CONTAINER_URL, authorised by a SAS, by AZURE_STORAGE_KEY, by both, or by
    neither (then the scripts make user-delegation SAS with the Microsoft Entra ID sign-in)."""
    container_url: str                  # without its query
    sas_token: str                      # the configured SAS without '?' ('' when only key is set)
    key: str                            # AZURE_STORAGE_KEY, or '': with it, a short-lived SAS is made per use


@dataclass(frozen=True)
class PoolSettings:
    """What create_pool_job.py needs: the account, the pool's nodes and the job's preparation task."""
    batch: BatchAccess
    vm_size: str
    max_nodes: int
    image_reference: Mapping[str, str]  # publisher, offer, sku, version
    node_agent_sku_id: str
    autoscale_evaluation_minutes: int
    repository: str
    cmd_prep_task: str


@dataclass(frozen=True)
class TaskSettings:
    """What send_task.py needs: the account, the container for the outputs and the MPI task's commands."""
    batch: BatchAccess
    storage: Storage
    nb_nodes: int
    start_command: str
    coordination_command: str
    task_max_wall_clock_minutes: int
    nb_processes: int = 4
    program: str = DEFAULTS["PROGRAM"]
    program_args: str = ""
    start_command_is_default: bool = True   # False when START_COMMAND is set (then --processes cannot apply)

    def start_command_for(self, nb_processes: int) -> str:
        """The default START_COMMAND with another number of processes (send_task.py --processes)."""
        return default_start_command(nb_processes, self.program, self.program_args)


def _checked(value: int | None, variable: str) -> int:
    """A number require() has checked: read_settings() leaves None only with a problem, which require() raises."""
    if value is None:
        raise ConfigError(variable, "is not set")
    return value


def batch_access(settings: Settings) -> BatchAccess:
    require(settings, *BATCH_VARIABLES)
    return BatchAccess(account=settings.batch["name"], key=settings.batch["key"], endpoint=settings.batch["url"])


def storage(settings: Settings) -> Storage:
    require(settings, "BLOB_CONTAINER_URL")
    return Storage(container_url=settings.blob_container["url"], sas_token=settings.blob_container["sas_token"],
                   key=settings.storage_key)


def pool_settings(settings: Settings) -> PoolSettings:
    require(settings, *BATCH_VARIABLES, "REPOSITORY_URL", "MAX_NODES", "AUTOSCALE_EVALUATION_MINUTES")
    return PoolSettings(
        batch=batch_access(settings),
        vm_size=settings.vm_size,
        max_nodes=_checked(settings.max_nodes, "MAX_NODES"),
        image_reference=settings.image_reference,
        node_agent_sku_id=settings.node_agent_sku_id,
        autoscale_evaluation_minutes=_checked(settings.autoscale_evaluation_minutes, "AUTOSCALE_EVALUATION_MINUTES"),
        repository=settings.repository,
        cmd_prep_task=settings.cmd_prep_task,
    )


def task_settings(settings: Settings) -> TaskSettings:
    require(settings, *BATCH_VARIABLES, "BLOB_CONTAINER_URL", "NB_NODES", "NB_PROCESSES", "PROGRAM", "PROGRAM_ARGS",
            "TASK_MAX_WALL_CLOCK_MINUTES")
    return TaskSettings(
        batch=batch_access(settings),
        storage=storage(settings),
        nb_nodes=_checked(settings.nb_nodes, "NB_NODES"),
        start_command=settings.start_command,
        coordination_command=settings.coordination_command,
        task_max_wall_clock_minutes=_checked(settings.task_max_wall_clock_minutes, "TASK_MAX_WALL_CLOCK_MINUTES"),
        nb_processes=_checked(settings.nb_processes, "NB_PROCESSES"),
        program=settings.program,
        program_args=settings.program_args,
        start_command_is_default=settings.start_command_is_default,
    )


# The tutorial's module-level names, for readers of the tutorial and interactive use.
settings = read_settings()
resource_gpe_name = settings.resource_gpe_name
batch = settings.batch
blob_container = settings.blob_container
repository = settings.repository
cmd_prep_task = settings.cmd_prep_task
nb_processes = settings.nb_processes
coordination_command = settings.coordination_command
start_command = settings.start_command
