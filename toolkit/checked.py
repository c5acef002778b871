"""The checked settings: what a script has required, with honest types. Each function below calls
require() for its variables (same messages, same order) and returns a frozen dataclass whose fields are set.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from toolkit.commands import DEFAULT_PROGRAM, Fabric, default_start_command
from toolkit.settings import BATCH_VARIABLES, POOL_VARIABLES, TASK_VARIABLES, ConfigError, Settings, require


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
    spot: bool = False                  # SPOT or --spot: the formula targets Spot (low-priority) nodes
    program_sha256: str = ""            # a packed local folder's content hash (toolkit/package.py), else ''


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
    program: str = DEFAULT_PROGRAM
    program_args: str = ""
    mpirun_args: str = ""                   # MPIRUN_ARGS: extra options of the default START_COMMAND's mpirun
    start_command_is_default: bool = True   # False when START_COMMAND is set (then --processes cannot apply)
    output_files: tuple[str, ...] = ()      # OUTPUT_FILES: result-file patterns, relative to the program's directory
    nb_processes_is_set: bool = False       # NB_PROCESSES set: unset, an InfiniBand pool runs one process per core

    def start_command_for(self, nb_processes: int | None, fabric: Fabric = Fabric.TCP) -> str:
        """The default START_COMMAND with this number of processes (send_task.py --processes; None: one per
        core of the task's nodes) over this fabric (InfiniBand on an HPC pool)."""
        return default_start_command(nb_processes, self.program, self.program_args, self.mpirun_args, fabric)

    def processes_for(self, fabric: Fabric, asked: int | None = None) -> int | None:
        """How many processes the default START_COMMAND runs: --processes when given, else NB_PROCESSES,
        except on an InfiniBand pool where NB_PROCESSES is unset: None, one per core of the task's nodes."""
        if asked is not None:
            return asked
        if fabric is Fabric.INFINIBAND and not self.nb_processes_is_set:
            return None
        return self.nb_processes


def _checked(value: int | None, variable: str) -> int:
    """A number require() has checked: read_settings() leaves None only with a problem, which require() raises."""
    if value is None:
        raise ConfigError(variable, "is not set")
    return value


def _output_files(settings: Settings) -> tuple[str, ...]:
    """OUTPUT_FILES, checked: a pattern that leaves the program's working directory is refused (exit 2)."""
    require(settings, "OUTPUT_FILES")
    return settings.output_files


def batch_access(settings: Settings) -> BatchAccess:
    require(settings, *BATCH_VARIABLES)
    return BatchAccess(account=settings.batch["name"], key=settings.batch["key"], endpoint=settings.batch["url"])


def storage(settings: Settings) -> Storage:
    require(settings, "BLOB_CONTAINER_URL")
    return Storage(container_url=settings.blob_container["url"], sas_token=settings.blob_container["sas_token"],
                   key=settings.storage_key)


def pool_settings(settings: Settings) -> PoolSettings:
    require(settings, *POOL_VARIABLES)
    return PoolSettings(
        batch=batch_access(settings),
        vm_size=settings.vm_size,
        max_nodes=_checked(settings.max_nodes, "MAX_NODES"),
        image_reference=settings.image_reference,
        node_agent_sku_id=settings.node_agent_sku_id,
        autoscale_evaluation_minutes=_checked(settings.autoscale_evaluation_minutes, "AUTOSCALE_EVALUATION_MINUTES"),
        repository=settings.repository,
        cmd_prep_task=settings.cmd_prep_task,
        spot=settings.spot,
    )


def task_settings(settings: Settings) -> TaskSettings:
    require(settings, *TASK_VARIABLES)
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
        mpirun_args=settings.mpirun_args,
        start_command_is_default=settings.start_command_is_default,
        output_files=_output_files(settings),
        nb_processes_is_set=settings.nb_processes_is_set,
    )
