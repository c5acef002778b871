"""Reading the settings: every variable from the environment and the env file, checked, with one-line
messages for what is missing or malformed. The settings reader and its helpers (toolkit/envfile.py reads
the env file, toolkit/values.py checks single values, toolkit/commands.py builds the default commands)
import nothing else of the repository, so config_resources.py (the tutorial's names) and every toolkit
module can import this without a cycle.

Values come from the environment and from a `.env` file next to the scripts; the real environment wins
over `.env`. Set BATCH_TOOLKIT_ENV_FILE to read another file instead (the local demo uses a throwaway
one), or to an empty string to read no file at all.

`read_settings()` never fails, so `--help` and the tests work without any configuration. toolkit.cli.run
reads them once per run and gives them to the script's body, which turns them into the checked settings
it needs with `load_settings(settings, check)` (toolkit/checked.py: `pool_settings`, `task_settings`,
`batch_access`, `storage`), which call `require(settings, ...)`: a missing or malformed variable raises
ConfigError with one line naming the variable and how to fix it. Every variable is documented in
`.env.example` and in the README.
"""

import difflib
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from toolkit.commands import DEFAULT_PROGRAM, default_cmd_prep_task, default_coordination_command, default_start_command
from toolkit.envfile import load_environment
from toolkit.values import (
    check_endpoint,
    check_key,
    check_program,
    is_vm_size_name,
    split_container,
)

ENV_FILE_VARIABLE = "BATCH_TOOLKIT_ENV_FILE"
# The scripts' directory (the repository's top), where .env and .env.example are.
SCRIPTS_DIR = Path(__file__).resolve().parents[1]
DEFAULT_ENV_FILE = SCRIPTS_DIR / ".env"

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
    "PROGRAM": DEFAULT_PROGRAM,
}
# What the preparation task needs in the repository (the README's "Run your own program" layout).
EXAMPLE_ENV_FILE = SCRIPTS_DIR / ".env.example"

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


Checked = TypeVar("Checked")


def load_settings(settings: Settings, check: Callable[[Settings], Checked]) -> Checked:
    """The settings, checked by `check` (e.g. toolkit.checked.pool_settings), which raises ConfigError for
    the first missing or malformed variable; warns when the env file is readable by others."""
    try:
        return check(settings)
    finally:  # a typo is worth knowing also, and above all, when a variable is then reported missing
        warn_if_env_file_shared(settings)


def warn_if_env_file_shared(settings: Settings) -> None:
    """Warn on stderr when the env file, which holds keys, is readable by other users, and about each
    name in it that looks like a typo of one of the toolkit's variables (NB_NODE for NB_NODES)."""
    for warning in settings.warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    if settings.env_file and os.stat(settings.env_file).st_mode & (stat.S_IRGRP | stat.S_IROTH):
        print(f"Warning: {settings.env_file} holds secrets and other users can read it: chmod 600 {settings.env_file}",
              file=sys.stderr)
