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
`.env.example` and in docs/configuration.md.

Every variable is one row of VARIABLE_TABLE (toolkit/variables.py): its name, what to set it to, its
default, the check of its value and whether it is secret. DEFAULTS, HOW_TO_SET and VARIABLES are read from
that table; this module re-exports them for the scripts and config_resources.py.
"""

import difflib
import os
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from toolkit.commands import default_cmd_prep_task, default_coordination_command, default_start_command, is_url
from toolkit.envfile import Environment, load_environment
from toolkit.values import check_program, split_container
from toolkit.variables import (
    DEFAULTS,
    ENV_FILE_VARIABLE,
    HOW_TO_SET,
    IMAGE_VARIABLES,
    SECRET_VARIABLES,
    VARIABLE_TABLE,
    VARIABLES,
)

# The scripts' directory (the repository's top), where .env and .env.example are.
SCRIPTS_DIR = Path(__file__).resolve().parents[1]
DEFAULT_ENV_FILE = SCRIPTS_DIR / ".env"
EXAMPLE_ENV_FILE = SCRIPTS_DIR / ".env.example"

# The table's names, re-exported for the scripts and config_resources.py (toolkit/variables.py defines them).
__all__ = ["BATCH_VARIABLES", "DEFAULTS", "DEFAULT_ENV_FILE", "ENV_FILE_VARIABLE", "HOW_TO_SET", "SCRIPTS_DIR",
           "SECRET_VARIABLES", "VARIABLES", "VARIABLE_TABLE", "ConfigError", "SettingSource", "Settings",
           "load_settings", "problems_of", "read_settings", "require", "setting_sources"]

# How close an unknown name in the env file must be to one of VARIABLES to be reported as a likely typo.
TYPO_CUTOFF = 0.8
# What to do when BATCH_TOOLKIT_ENV_FILE names the env file of a local stack that is not running
# (Settings.local_stack_stopped: tools/local.py's marker is beside the missing file).
START_LOCAL_STACK = ("The local stack is not running (make local writes that file while Azurite and the Batch "
                     "emulator run, and removes it when they stop): start it with make local in another shell, "
                     f"in {SCRIPTS_DIR}")


class ConfigError(Exception):
    """Missing or malformed settings; its message is one line for the user naming every one of them.

    `variable` is the first one named, `variables` all of them; `where` says where to set them (the env
    file read and the environment); `fix`, when given, says what to do instead of how to set `variable`;
    `hint` ends the line (e.g. that no .env file was found)."""

    def __init__(self, variable: str, problem: str, more: Sequence[tuple[str, str]] = (), hint: str = "",
                 where: str = "the environment", fix: str = ""):
        how = HOW_TO_SET.get(variable, "a valid value")
        if fix:
            message = f"{variable} {problem}. {fix}."
        elif variable == ENV_FILE_VARIABLE:  # it names the env file, so only the environment can set it
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
    mpirun_args: str = ""               # MPIRUN_ARGS: extra options of the default START_COMMAND's mpirun
    spot: bool = False                  # SPOT: the pool's nodes are Spot (low-priority) ones
    start_command_is_default: bool = True  # False when START_COMMAND is set
    warnings: tuple[str, ...] = ()      # e.g. a name in the env file that looks like a typo of one of ours
    no_env_file_hint: str = ""          # set when no env file was looked for in vain: says to copy .env.example
    secrets: tuple[str, ...] = ()       # the values of the secret variables (SECRET_VARIABLES) that are set
    local_stack_stopped: bool = False   # BATCH_TOOLKIT_ENV_FILE names make local's env file, which is missing
    output_files: tuple[str, ...] = ()  # OUTPUT_FILES, split on spaces (() when malformed: see problems)
    image_is_default: bool = True       # none of IMAGE_* and NODE_AGENT_SKU_ID is set: the image follows the VM size
    nb_processes_is_set: bool = False   # NB_PROCESSES is set (unset on an InfiniBand pool: every core of the nodes)


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


def _typo_warnings(environment: Environment) -> tuple[str, ...]:
    where = environment.env_file or "the env file"
    return tuple(f"{where} sets {name}, which the toolkit does not read: did you mean {intended}?"
                 for name, intended in likely_typos(environment.file_names).items())


def _no_env_file_hint(environment: Environment) -> str:
    return (f"No .env file was found ({DEFAULT_ENV_FILE}): cp {EXAMPLE_ENV_FILE.name} .env next to the "
            "scripts and fill it in." if environment.default_missing else "")


def _row_problems(value: Mapping[str, str], env_file_problem: str | None) -> dict[str, str]:
    """variable -> what is wrong with its value: a broken env file first, then each variable's own check."""
    problems = {ENV_FILE_VARIABLE: env_file_problem} if env_file_problem else {}
    for variable in VARIABLE_TABLE:
        problem = variable.check(value[variable.name]) if variable.check else None
        if problem:
            problems[variable.name] = problem
    return problems


def read_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting; never raises. Malformed values are listed in `problems`."""
    environment = load_environment(os.environ if environ is None else environ, ENV_FILE_VARIABLE, DEFAULT_ENV_FILE)
    value = {variable.name: variable.clean(environment.values.get(variable.name, variable.default))
             for variable in VARIABLE_TABLE}
    problems = _row_problems(value, environment.problem)
    # The variables checked two by two.
    blob_container = split_container(value["BLOB_CONTAINER_URL"], value["AZURE_STORAGE_SAS_TOKEN"], problems)
    check_program(value["PROGRAM"], value["PROGRAM_ARGS"], problems)

    def number(name: str) -> int | None:
        """A whole number's value: None when its check refused it (what it accepts, int() reads)."""
        return None if name in problems else int(value[name])

    nb_processes, program, program_args = number("NB_PROCESSES"), value["PROGRAM"], value["PROGRAM_ARGS"]
    mpirun_args = value["MPIRUN_ARGS"]
    default_start = default_start_command(nb_processes, program, program_args, mpirun_args) \
        if nb_processes and not {"PROGRAM", "PROGRAM_ARGS", "MPIRUN_ARGS"} & problems.keys() else ""
    repository = value["REPOSITORY_URL"]
    return Settings(
        resource_gpe_name=value["AZURE_RESOURCE_GROUP"],
        batch={"name": value["AZURE_BATCH_ACCOUNT"], "key": value["AZURE_BATCH_ACCESS_KEY"],
               "url": value["AZURE_BATCH_ENDPOINT"]},
        blob_container=blob_container,
        storage_key=value["AZURE_STORAGE_KEY"],
        repository=repository,
        cmd_prep_task=value["CMD_PREP_TASK"] or (default_cmd_prep_task(repository) if repository else ""),
        nb_nodes=number("NB_NODES"),
        nb_processes=nb_processes,
        coordination_command=value["COORDINATION_COMMAND"] or default_coordination_command(),
        start_command=value["START_COMMAND"] or default_start,
        vm_size=value["VM_SIZE"],
        max_nodes=number("MAX_NODES"),
        image_reference={key: value[f"IMAGE_{key.upper()}"] for key in ("publisher", "offer", "sku", "version")},
        node_agent_sku_id=value["NODE_AGENT_SKU_ID"],
        autoscale_evaluation_minutes=number("AUTOSCALE_EVALUATION_MINUTES"),
        task_max_wall_clock_minutes=number("TASK_MAX_WALL_CLOCK_MINUTES"),
        problems=problems,
        env_file=environment.env_file,
        program=program,
        program_args=program_args,
        mpirun_args=mpirun_args,
        spot=value["SPOT"] == "true",
        start_command_is_default=not value["START_COMMAND"],
        warnings=_typo_warnings(environment),
        no_env_file_hint=_no_env_file_hint(environment),
        secrets=tuple(value[name] for name in SECRET_VARIABLES if value[name]),
        local_stack_stopped=environment.local_stack_stopped,
        output_files=() if "OUTPUT_FILES" in problems else tuple(value["OUTPUT_FILES"].split()),
        image_is_default=not any(environment.values.get(name, "").strip() for name in IMAGE_VARIABLES),
        nb_processes_is_set=bool(environment.values.get("NB_PROCESSES", "").strip()),
    )



@dataclass(frozen=True)
class SettingSource:
    """One variable as the toolkit would use it now: its value and where it came from (python3 config_resources.py)."""
    name: str
    value: str          # '' for a secret (see `secret`) or a variable that is unset and has no default
    source: str         # "environment", "env file PATH", "default", "default, made from the other settings", "unset"
    secret: bool = False
    problem: str = ""   # what is wrong with its value, if anything
    empty: bool = False  # given (or defaulted) as an empty value: for a secret, "set" would mislead


def setting_sources(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[SettingSource, ...]:
    """Every variable of VARIABLE_TABLE with its effective value (``settings``, read from ``environ``) and its
    source; secrets without their value."""
    environ = os.environ if environ is None else environ
    environment = load_environment(environ, ENV_FILE_VARIABLE, DEFAULT_ENV_FILE)
    made = {"CMD_PREP_TASK": settings.cmd_prep_task, "COORDINATION_COMMAND": settings.coordination_command,
            "START_COMMAND": settings.start_command}
    sources = []
    for variable in VARIABLE_TABLE:
        name = variable.name
        if name == ENV_FILE_VARIABLE:
            read = environment.env_file or "none"
            sources.append(SettingSource(name, read, "environment" if name in environ else "default",
                                         problem=settings.problems.get(name, "")))
            continue
        value = variable.clean(environment.values.get(name, variable.default))
        if name in environ:
            source = "environment"
        elif name in environment.file_names:
            source = f"env file {environment.env_file}"
        elif name == "CMD_PREP_TASK" and settings.repository and not is_url(settings.repository):
            source = "default, made by create_pool_job.py"   # the archive's name is known only once packed
            value = f"unpack the archive of {settings.repository} that create_pool_job.py uploads, into repo, " \
                    "then run demo_azure_batch/install.sh"
        elif name in made and made[name]:
            source, value = "default, made from the other settings", made[name]
        else:
            source = "default" if variable.default else "unset"
        sources.append(SettingSource(name, "" if variable.secret else value, source, variable.secret,
                                     settings.problems.get(name, ""), empty=not value))
    return tuple(sources)


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
    env file alone: every value may come from it); with no .env at all, it also says to copy .env.example;
    for the missing env file of a local stack that is not running, how to start it."""
    found = problems_of(settings, *variables)
    if found:
        (variable, problem), *more = found
        missing = any(what == "is not set" for _, what in found)
        where = f"{settings.env_file} or the environment" if settings.env_file else "the environment"
        fix = START_LOCAL_STACK if variable == ENV_FILE_VARIABLE and settings.local_stack_stopped else ""
        raise ConfigError(variable, problem, more, hint=settings.no_env_file_hint if missing else "", where=where,
                          fix=fix)


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


# What toolkit/checked.py checks for each script, and so what each needs set (problems_of says "is not set" only
# for those without a default; an empty key is no such one: the scripts then sign in with Microsoft Entra ID).
POOL_VARIABLES = (*BATCH_VARIABLES, "REPOSITORY_URL", "MAX_NODES", "AUTOSCALE_EVALUATION_MINUTES", "SPOT")
TASK_VARIABLES = (*BATCH_VARIABLES, "BLOB_CONTAINER_URL", "NB_NODES", "NB_PROCESSES", "PROGRAM", "PROGRAM_ARGS",
                  "MPIRUN_ARGS", "TASK_MAX_WALL_CLOCK_MINUTES")
NEEDED_BY = {"create_pool_job.py": POOL_VARIABLES, "send_task.py": TASK_VARIABLES, "check_task.py": BATCH_VARIABLES}


def missing_for_scripts(settings: Settings) -> tuple[str, dict[str, list[str]]]:
    """The env file's hint when there is none (else ""), and for each script the variables it needs that are
    not set (python3 config_resources.py)."""
    missing = {script: [name for name, what in problems_of(settings, *needed) if what == "is not set"]
               for script, needed in NEEDED_BY.items()}
    return settings.no_env_file_hint, {script: names for script, names in missing.items() if names}
