"""The variables the toolkit reads: one row each in VARIABLE_TABLE (name, what to set it to, default, the
check of its value, how it is cleaned, whether it is secret), and the names, defaults and hints read from it.

Part of the settings layer: toolkit/settings.py reads the environment and the env file with this table.
It imports only the base modules (toolkit/values.py checks single values, toolkit/commands.py names the
default PROGRAM).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from toolkit.commands import DEFAULT_PROGRAM
from toolkit.values import check_endpoint, check_key, is_vm_size_name

ENV_FILE_VARIABLE = "BATCH_TOOLKIT_ENV_FILE"
# The variables that name the pool's image: when none is set, create_pool_job.py picks the image for the VM size.
IMAGE_VARIABLES = ("IMAGE_PUBLISHER", "IMAGE_OFFER", "IMAGE_SKU", "IMAGE_VERSION", "NODE_AGENT_SKU_ID")

# Inter-node communication caps a pool's size; 100 is the documented limit for such pools.
INTER_NODE_POOL_CAP = 100
# The service accepts autoscale evaluation intervals from 5 minutes to 168 hours.
MIN_EVALUATION_MINUTES, MAX_EVALUATION_MINUTES = 5, 168 * 60
# A task may run at most 180 days on Batch.
MAX_WALL_CLOCK_MINUTES = 180 * 24 * 60
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")

# What a variable's check gets: its value as the toolkit uses it (the default when it is not set);
# what it returns: what is wrong with that value, or None.
Check = Callable[[str], str | None]


def _account_name(name: str) -> str | None:
    if name and not _ACCOUNT_NAME.match(name):
        return f"is {name!r}; account names are 3-24 lowercase letters and digits"
    return None


def _recorded(check: Callable[[dict[str, str]], None]) -> str | None:
    """The problem a check of toolkit/values.py records (they write into a problems dict), or None."""
    problems: dict[str, str] = {}
    check(problems)
    return next(iter(problems.values()), None)


def _account_key(key: str) -> str | None:
    return _recorded(lambda problems: check_key("key", key, problems))


def _endpoint(url: str) -> str | None:
    return _recorded(lambda problems: check_endpoint(url, problems))


def _endpoint_url(value: str) -> str:
    return value.strip().rstrip("/")


def _repository(url: str) -> str | None:
    if any(c in url for c in "\"'`$\\\t\n"):  # it goes inside "..." in a bash -c '...' command
        return "contains quotes, '$', backslashes, tabs or newlines"
    return None


def _vm_size(name: str) -> str | None:
    return None if is_vm_size_name(name) else f"is {name!r}, not a VM size name"


def _inside_single_quotes(value: str) -> str | None:
    """A value that goes inside the '...' of the default START_COMMAND's bash -c (as PROGRAM_ARGS does)."""
    return "contains a single quote or a newline" if any(c in value for c in "'\n\r") else None


def _lowercase(value: str) -> str:
    return value.strip().lower()


def _true_or_false(value: str) -> str | None:
    """A yes/no setting: true or false in any case; set but empty is false, as unset is."""
    return None if value in ("", "true", "false") else f"is {value!r}, not true or false"


def _output_files(patterns: str) -> str | None:
    """OUTPUT_FILES: each pattern stays inside the program's working directory (no absolute path, no `..`,
    no `$`: Batch expands $VAR in a filePattern on Linux, which could name any directory)."""
    for pattern in patterns.split():
        if pattern.startswith("/") or ".." in pattern.split("/") or any(c in pattern for c in "$\\"):
            return (f"has {pattern!r}, which leaves the program's working directory (an absolute path, `..`, "
                    "`$` or a backslash)")
    return None


def _whole_number(low: int = 1, high: int | None = None) -> Check:
    """The check of a whole number from `low` to `high` (no upper bound: None). What it accepts, int() reads."""
    def check(raw: str) -> str | None:
        try:
            number = int(raw)
        except ValueError:
            return f"is {raw!r}, not a whole number"
        if number < low or (high is not None and number > high):
            return f"is {number}, outside {low}..{high}" if high else f"is {number}, below {low}"
        return None
    return check


@dataclass(frozen=True)
class Variable:
    """A variable the toolkit reads: one row of VARIABLE_TABLE."""
    name: str
    how: str = ""                       # what to set it to, in the messages naming it ('': "a valid value")
    default: str = ""                   # its value when it is not set (set but empty, it stays empty)
    check: Check | None = None          # None: any value will do, or it is checked with another (read_settings)
    clean: Callable[[str], str] = str.strip  # the value read -> the value the toolkit uses
    secret: bool = False                # a key or a SAS: in Settings.secrets, quoted by no message


# Every variable the toolkit reads; each is documented in .env.example and docs/configuration.md.
VARIABLE_TABLE = (
    Variable("AZURE_RESOURCE_GROUP"),
    Variable("AZURE_BATCH_ACCOUNT", "the Batch account name, e.g. mybatchaccount (az batch account list)",
             check=_account_name),
    Variable("AZURE_BATCH_ACCESS_KEY", "the account's primary key "
             "(az batch account keys list --name ACCOUNT --resource-group GROUP), "
             "or leave it empty to sign in with Microsoft Entra ID (az login)", check=_account_key, secret=True),
    Variable("AZURE_BATCH_ENDPOINT",
             "the account URL with its scheme, e.g. https://mybatchaccount.westeurope.batch.azure.com",
             check=_endpoint, clean=_endpoint_url),
    # The container URL and the SAS are checked together (split_container): the SAS may be in the URL's query.
    Variable("BLOB_CONTAINER_URL", "the container URL, e.g. https://mystorage.blob.core.windows.net/outputs, "
             "with a SAS in its query or in AZURE_STORAGE_SAS_TOKEN, or without (see AZURE_STORAGE_KEY)"),
    Variable("AZURE_STORAGE_SAS_TOKEN", "a container SAS "
             "(az storage container generate-sas ... --permissions racwl --expiry DATE)", secret=True),
    Variable("AZURE_STORAGE_KEY", "the storage account's key (az storage account keys list --account-name ACCOUNT), "
             "or leave it empty and give a SAS, or neither (Microsoft Entra ID: user delegation SAS)",
             check=_account_key, secret=True),
    Variable("REPOSITORY_URL", "the git URL the nodes clone, or the absolute path of a local folder that "
             "create_pool_job.py packs and uploads (it holds demo_azure_batch/)", check=_repository),
    # Empty, each command is the default one of toolkit/commands.py, made from the other settings.
    Variable("CMD_PREP_TASK"),
    Variable("COORDINATION_COMMAND"),
    Variable("START_COMMAND"),
    # Checked with PROGRAM (check_program): both go into the default START_COMMAND.
    Variable("PROGRAM_ARGS", "the program's arguments, without single quotes or newlines, e.g. --intervals 1000"),
    # Extra options of the default START_COMMAND's mpirun, inside its '...' like PROGRAM_ARGS.
    Variable("MPIRUN_ARGS", "extra mpirun options, without single quotes or newlines, e.g. --bind-to core",
             check=_inside_single_quotes),
    # Spot (low-priority) nodes: the autoscale formula targets $TargetLowPriorityNodes (create_pool_job.py --spot).
    Variable("SPOT", "true or false", default="false", check=_true_or_false, clean=_lowercase),
    Variable("NB_NODES", f"a whole number of nodes from 1 to {INTER_NODE_POOL_CAP}", default="2",
             check=_whole_number(high=INTER_NODE_POOL_CAP)),
    Variable("NB_PROCESSES", "a whole number of MPI processes, 1 or more", default="4", check=_whole_number()),
    Variable("MAX_NODES", f"a whole number of nodes from 1 to {INTER_NODE_POOL_CAP}", default="5",
             check=_whole_number(high=INTER_NODE_POOL_CAP)),
    # A current general-purpose size that runs the Gen2 Ubuntu 24.04 image.
    Variable("VM_SIZE", "a VM size name, e.g. standard_d2s_v5", default="standard_d2s_v5", check=_vm_size),
    # Ubuntu 18.04 and 20.04 are retired on Batch; 24.04 LTS is current.
    Variable("IMAGE_PUBLISHER", default="canonical"),
    Variable("IMAGE_OFFER", default="ubuntu-24_04-lts"),
    Variable("IMAGE_SKU", default="server"),
    Variable("IMAGE_VERSION", default="latest"),
    Variable("NODE_AGENT_SKU_ID", default="batch.node.ubuntu 24.04"),
    Variable("AUTOSCALE_EVALUATION_MINUTES", f"a whole number of minutes from {MIN_EVALUATION_MINUTES} "
             f"to {MAX_EVALUATION_MINUTES}", default="5",
             check=_whole_number(MIN_EVALUATION_MINUTES, MAX_EVALUATION_MINUTES)),
    Variable("TASK_MAX_WALL_CLOCK_MINUTES", "a whole number of minutes from 1 to 259200 (180 days)", default="60",
             check=_whole_number(high=MAX_WALL_CLOCK_MINUTES)),
    # Result files uploaded with stdout/stderr: patterns relative to $AZ_BATCH_TASK_SHARED_DIR (send_task.py).
    Variable("OUTPUT_FILES", "patterns relative to the program's working directory, separated by spaces, "
             "e.g. results/* out/**/*.h5 (write results there, not with an absolute path or ..)",
             check=_output_files),
    Variable("PROGRAM", "a relative path inside the repository, e.g. demo_azure_batch/script.py or src/app.py",
             default=DEFAULT_PROGRAM),
    # Read first (toolkit/envfile.py), as it names the file the others may come from.
    Variable(ENV_FILE_VARIABLE, "the path of a readable NAME=value file, or to an empty string to read none"),
)
VARIABLES = tuple(variable.name for variable in VARIABLE_TABLE)
DEFAULTS = {variable.name: variable.default for variable in VARIABLE_TABLE if variable.default}
# What to tell the user for each variable when it is missing or wrong.
HOW_TO_SET = {variable.name: variable.how for variable in VARIABLE_TABLE if variable.how}
SECRET_VARIABLES = tuple(variable.name for variable in VARIABLE_TABLE if variable.secret)
