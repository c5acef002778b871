"""The properties of a pool, a job and a task that the service's decisions and the runtime read, parsed once
from the validated request body into typed fields (at creation, and anew when a PATCH or PUT changes it). The
body itself (``Pool.spec``, ``Job.spec``, ``Task.spec``) stays for rendering what the client sent back
(api/wire.py) and for what the runtime hands on as is (resource files, user identity, output files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NameValues = tuple[tuple[str, str], ...]   # environment settings: (name, value) in the body's order


def _name_values(items: list[dict[str, Any]] | None) -> NameValues:
    """environmentSettings (or commonEnvironmentSettings) as pairs; a value left out is empty."""
    return tuple((str(item["name"]), "" if item.get("value") is None else str(item["value"])) for item in items or ())


@dataclass(frozen=True)
class NodeTask:
    """A start task or a job preparation task: what a node runs on its own, before tasks run there."""
    command_line: str
    resource_files: tuple[dict[str, Any], ...] = ()
    environment: NameValues = ()
    user_identity: dict[str, Any] | None = None   # handed to the launcher as sent
    max_task_retry_count: int = 0                 # -1: retried until it succeeds
    max_wall_clock_time: str | None = None        # ISO-8601 as sent; None: no limit (a start task has none)
    wait_for_success: bool = True                 # tasks wait until it has succeeded on the node

    @classmethod
    def _parse(cls, spec: dict[str, Any], retries: Any, wall_clock: Any) -> NodeTask:
        return cls(command_line=str(spec.get("commandLine") or ""),
                   resource_files=tuple(spec.get("resourceFiles") or ()),
                   environment=_name_values(spec.get("environmentSettings")),
                   user_identity=spec.get("userIdentity"),
                   max_task_retry_count=int(retries or 0),
                   max_wall_clock_time=str(wall_clock) if wall_clock else None,
                   wait_for_success=spec.get("waitForSuccess", True) is not False)

    @classmethod
    def parse_start_task(cls, spec: dict[str, Any]) -> NodeTask:
        """A pool's startTask: its retry count is its own property."""
        return cls._parse(spec, spec.get("maxTaskRetryCount"), None)

    @classmethod
    def parse_preparation(cls, spec: dict[str, Any]) -> NodeTask:
        """A job's jobPreparationTask: retries and time limit are its constraints."""
        constraints = spec.get("constraints") or {}
        return cls._parse(spec, constraints.get("maxTaskRetryCount"), constraints.get("maxWallClockTime"))


@dataclass(frozen=True)
class PoolSettings:
    vm_size: str = ""
    task_slots_per_node: int = 1
    inter_node_communication: bool = False   # enableInterNodeCommunication: multi-instance tasks can run
    pack_nodes: bool = False                 # taskSchedulingPolicy.nodeFillType pack (else spread)
    start_task: NodeTask | None = None       # what each node runs when it joins; None: none (also for {})

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> PoolSettings:
        fill = (spec.get("taskSchedulingPolicy") or {}).get("nodeFillType") or "spread"
        start = spec.get("startTask")
        return cls(vm_size=str(spec.get("vmSize") or ""),
                   task_slots_per_node=int(spec.get("taskSlotsPerNode") or 1),
                   inter_node_communication=bool(spec.get("enableInterNodeCommunication")),
                   pack_nodes=fill.lower() == "pack",
                   start_task=NodeTask.parse_start_task(start) if start else None)


@dataclass(frozen=True)
class JobSettings:
    pool_id: str | None = None                  # poolInfo.poolId (an auto pool's id is the job's auto_pool_id)
    keep_auto_pool: bool = False                # poolInfo.autoPoolSpecification.keepAlive
    priority: int = 0
    max_parallel_tasks: int = -1                # -1: no limit
    max_task_retry_count: int = 0               # constraints.maxTaskRetryCount: for tasks that set none
    max_wall_clock_time: str | None = None      # constraints.maxWallClockTime as sent; None: no limit
    terminate_when_all_tasks_complete: bool = False   # onAllTasksComplete terminatejob (else noaction)
    exit_options_act_on_job: bool = False       # onTaskFailure performexitoptionsjobaction (else noaction)
    uses_task_dependencies: bool = False
    common_environment: NameValues = ()         # commonEnvironmentSettings, before each task's own
    preparation: NodeTask | None = None         # jobPreparationTask
    preparation_task_id: str = "jobpreparation"  # its id: the body's, or the service's default
    release_task_id: str | None = None          # jobReleaseTask's id ("jobrelease" if unnamed); None: no release task
    manager_runs_exclusive: bool = True         # jobManagerTask.runExclusive: its node runs nothing else
    manager_ends_job: bool = True               # jobManagerTask.killJobOnCompletion: the job ends with it

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> JobSettings:
        pool_info = spec.get("poolInfo") or {}
        constraints = spec.get("constraints") or {}
        prep, release = spec.get("jobPreparationTask"), spec.get("jobReleaseTask")
        manager = spec.get("jobManagerTask") or {}
        return cls(pool_id=pool_info.get("poolId"),
                   keep_auto_pool=bool((pool_info.get("autoPoolSpecification") or {}).get("keepAlive")),
                   priority=int(spec.get("priority") or 0),
                   max_parallel_tasks=int(spec.get("maxParallelTasks") or -1),
                   max_task_retry_count=int(constraints.get("maxTaskRetryCount") or 0),
                   max_wall_clock_time=constraints.get("maxWallClockTime") or None,
                   terminate_when_all_tasks_complete=_lower(spec, "onAllTasksComplete", "noaction") == "terminatejob",
                   exit_options_act_on_job=_lower(spec, "onTaskFailure", "noaction") == "performexitoptionsjobaction",
                   uses_task_dependencies=bool(spec.get("usesTaskDependencies")),
                   common_environment=_name_values(spec.get("commonEnvironmentSettings")),
                   preparation=None if prep is None else NodeTask.parse_preparation(prep),
                   preparation_task_id=(prep or {}).get("id") or "jobpreparation",
                   release_task_id=None if release is None else release.get("id") or "jobrelease",
                   manager_runs_exclusive=manager.get("runExclusive", True) is not False,
                   manager_ends_job=manager.get("killJobOnCompletion", True) is not False)


def _lower(spec: dict[str, Any], name: str, default: str) -> str:
    """An enum property as the service compares it: case-insensitively."""
    return str(spec.get(name, default)).lower()


@dataclass(frozen=True)
class MultiInstance:
    """multiInstanceSettings: the instances the task runs on, the command each node runs first, and the
    files every node gets in the task's shared directory."""
    instances: int = 1
    coordination_command_line: str | None = None
    common_resource_files: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class TaskSettings:
    required_slots: int = 1
    multi_instance: MultiInstance | None = None
    max_task_retry_count: int | None = None     # constraints.maxTaskRetryCount; None: the job's
    max_wall_clock_time: str | None = None      # constraints.maxWallClockTime as sent (ISO-8601); None: none
    environment: NameValues = ()                # environmentSettings, after the job's common ones

    @property
    def instances(self) -> int:
        return self.multi_instance.instances if self.multi_instance is not None else 1

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> TaskSettings:
        multi = spec.get("multiInstanceSettings")
        constraints = spec.get("constraints") or {}
        retries = constraints.get("maxTaskRetryCount")
        return cls(required_slots=int(spec.get("requiredSlots") or 1),
                   multi_instance=None if multi is None else MultiInstance(
                       instances=int(multi.get("numberOfInstances") or 1),
                       coordination_command_line=multi.get("coordinationCommandLine"),
                       common_resource_files=tuple(multi.get("commonResourceFiles") or ())),
                   max_task_retry_count=None if retries is None else int(retries),
                   max_wall_clock_time=constraints.get("maxWallClockTime") or None,
                   environment=_name_values(spec.get("environmentSettings")))
