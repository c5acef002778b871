"""The properties of a pool and a task that the service's decisions read, parsed once from the validated
request body into typed fields. The body itself (``Pool.spec``, ``Task.spec``) stays only for rendering
what the client sent back (api/wire.py) and for what the runtime hands on as is (start task, settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PoolSettings:
    vm_size: str = ""
    task_slots_per_node: int = 1
    inter_node_communication: bool = False   # enableInterNodeCommunication: multi-instance tasks can run
    pack_nodes: bool = False                 # taskSchedulingPolicy.nodeFillType pack (else spread)

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> PoolSettings:
        fill = (spec.get("taskSchedulingPolicy") or {}).get("nodeFillType") or "spread"
        return cls(vm_size=str(spec.get("vmSize") or ""),
                   task_slots_per_node=int(spec.get("taskSlotsPerNode") or 1),
                   inter_node_communication=bool(spec.get("enableInterNodeCommunication")),
                   pack_nodes=fill.lower() == "pack")


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
                   max_wall_clock_time=constraints.get("maxWallClockTime") or None)
