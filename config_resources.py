"""The settings of create_pool_job.py, send_task.py and check_task.py, under the tutorial's names.

The tutorial's module-level names (resource_gpe_name, batch, blob_container, repository, cmd_prep_task,
nb_processes, coordination_command, start_command, and `settings`, all of them) still work, e.g.
`config_resources.batch["url"]`: a module-level __getattr__ (PEP 562) reads the settings on first access
(once; never at import), so importing this module never reads a file and never fails.

Values come from the environment and from a `.env` file next to this module; the real environment wins
over `.env`. Set BATCH_TOOLKIT_ENV_FILE to read another file instead (the local demo uses a throwaway
one), or to an empty string to read no file at all. Every variable is documented in `.env.example` and
in docs/configuration.md.

Run it to see the settings the scripts would use now, each with where it came from (the environment,
which env file, or the default); secrets show only whether they are set:

    python3 config_resources.py

It exits with 2 when a value is malformed (each such value is named, with what is wrong).

The code lives in the toolkit, which never imports this module: toolkit/settings.py reads and checks
the settings (`read_settings`, `require`, ConfigError), toolkit/checked.py turns them into what each
script needs (`pool_settings`, `task_settings`, `batch_access`, `storage`), toolkit/commands.py builds
the default commands. They are re-exported here for readers of the tutorial and interactive use.
"""

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from toolkit.checked import (
    BatchAccess,
    PoolSettings,
    Storage,
    TaskSettings,
    batch_access,
    pool_settings,
    storage,
    task_settings,
)
from toolkit.commands import (
    INSTALL_SCRIPT,
    NODE_REQUIREMENTS,
    default_cmd_prep_task,
    default_coordination_command,
    default_start_command,
)
from toolkit.settings import (
    BATCH_VARIABLES,
    DEFAULT_ENV_FILE,
    DEFAULTS,
    ENV_FILE_VARIABLE,
    HOW_TO_SET,
    VARIABLES,
    ConfigError,
    Settings,
    missing_for_scripts,
    read_settings,
    require,
    setting_sources,
)
from toolkit.variables import INTER_NODE_POOL_CAP

__all__ = ["BATCH_VARIABLES", "DEFAULT_ENV_FILE", "DEFAULTS", "ENV_FILE_VARIABLE", "HOW_TO_SET",
           "INSTALL_SCRIPT", "INTER_NODE_POOL_CAP", "NODE_REQUIREMENTS", "VARIABLES", "BatchAccess", "ConfigError",
           "PoolSettings", "Settings", "Storage", "TaskSettings", "batch_access", "default_cmd_prep_task",
           "default_coordination_command", "default_start_command", "pool_settings", "read_settings", "require",
           "storage", "task_settings"]

# The tutorial's names: each is the field of the same name of the settings.
TUTORIAL_NAMES = ("resource_gpe_name", "batch", "blob_container", "repository", "cmd_prep_task", "nb_processes",
                  "coordination_command", "start_command")
_read: list[Settings] = []  # the settings, once a tutorial name has been asked for


def __getattr__(name: str) -> Any:
    """The tutorial's names, read from the settings on first access (PEP 562: called only for names that
    are not module globals)."""
    if name != "settings" and name not in TUTORIAL_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not _read:
        _read.append(read_settings())
    return _read[0] if name == "settings" else getattr(_read[0], name)


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="config_resources.py",
        description="Print the settings create_pool_job.py, send_task.py and check_task.py would use now, and "
                    "where each came from (environment, env file, default); secrets only as set or unset.")


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    settings = read_settings()   # read once: the listing and what each script needs both come from it
    sources = setting_sources(settings)
    width = max(len(source.name) for source in sources)
    print("Settings (the environment wins over the env file; unset ones take their default):")
    for source in sources:
        if source.source == "unset":
            print(f"  {source.name:<{width}}   not set")
            continue
        shown = ("empty" if source.empty else "set") if source.secret else (source.value or "(empty)")
        if source.name == "AZURE_BATCH_ACCESS_KEY" and source.empty:
            shown += " (the scripts sign in with Microsoft Entra ID)"
        print(f"  {source.name:<{width}} = {shown}  [{source.source}]")
    no_env_file, missing = missing_for_scripts(settings)
    if no_env_file:
        print(no_env_file)
    for script, names in missing.items():
        print(f"Not set, needed by {script}: {', '.join(names)}.")
    problems = [source for source in sources if source.problem]
    for source in problems:
        print(f"Problem: {source.name} {source.problem}.", file=sys.stderr)
    return 2 if problems or missing else 0


if __name__ == "__main__":
    sys.exit(main())
