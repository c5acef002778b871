"""The states and other enumerated values of the service's objects, as ``str`` enums.

Each member *is* its wire string (a ``str`` whose value is the lowercase name the REST API
uses), so it compares equal to that string, hashes like it, and ``json.dumps``, ``str()`` and
f-strings write exactly that string. State is stored and compared as these members.
"""

from enum import Enum


class WireEnum(str, Enum):
    """A ``str`` enum that renders as its value everywhere (``str()``, f-strings, ``format``, JSON)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    __hash__ = str.__hash__   # so a member finds the dict entry of its plain string, and the reverse


class PoolState(WireEnum):
    ACTIVE = "active"
    DELETING = "deleting"


class AllocationState(WireEnum):
    STEADY = "steady"
    RESIZING = "resizing"
    STOPPING = "stopping"


class NodeState(WireEnum):
    """Lowercase, as a node's ``state`` (node counts use camelCase names: api/wire.py)."""
    CREATING = "creating"
    STARTING = "starting"
    WAITING_FOR_START_TASK = "waitingforstarttask"
    START_TASK_FAILED = "starttaskfailed"
    IDLE = "idle"
    RUNNING = "running"
    LEAVING_POOL = "leavingpool"
    OFFLINE = "offline"
    PREEMPTED = "preempted"
    REBOOTING = "rebooting"
    REIMAGING = "reimaging"
    UNKNOWN = "unknown"
    UNUSABLE = "unusable"
    DEALLOCATED = "deallocated"
    DEALLOCATING = "deallocating"
    UPGRADING_OS = "upgradingos"


class JobState(WireEnum):
    ACTIVE = "active"
    DISABLING = "disabling"
    DISABLED = "disabled"
    ENABLING = "enabling"
    TERMINATING = "terminating"
    COMPLETED = "completed"
    DELETING = "deleting"


class JobScheduleState(WireEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    TERMINATING = "terminating"
    COMPLETED = "completed"
    DELETING = "deleting"


class TaskState(WireEnum):
    ACTIVE = "active"
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"


class SubtaskState(WireEnum):
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"


class StartTaskState(WireEnum):
    """The state of a start task, and of a job preparation task on a node."""
    RUNNING = "running"
    COMPLETED = "completed"


class ExecutionResult(WireEnum):
    """executionInfo.result of a task, subtask, start or preparation task."""
    SUCCESS = "success"
    FAILURE = "failure"


class ErrorCategory(WireEnum):
    """failureInfo.category."""
    USER_ERROR = "usererror"
    SERVER_ERROR = "servererror"


class DeallocationOption(WireEnum):
    """What happens to running tasks when a pool shrinks ($NodeDeallocationOption, a resize's option)."""
    REQUEUE = "requeue"
    TERMINATE = "terminate"
    TASK_COMPLETION = "taskcompletion"
    RETAINED_DATA = "retaineddata"


class StopReason(WireEnum):
    """Why running work must stop (Task.stop_reason, and what the process watcher reports). Not on the wire."""
    TERMINATE = "terminate"            # terminate task
    JOB_TERMINATE = "jobterminate"     # its job is terminating
    JOB_DISABLE = "jobdisable"         # its job is disabled with disableTasks terminate
    REQUEUE = "requeue"                # its pool is deleted or shrinks with requeue
    DELETE = "delete"                  # the task or its job is deleted
    WALLTIME = "walltime"              # maxWallClockTime ran out
    NODE_DEALLOCATION = "nodedeallocation"   # its pool shrinks with terminate
    REMOVED = "removed"                # the node is leaving the pool (start task)
    SHUTDOWN = "shutdown"              # the emulator stops


class JobAction(WireEnum):
    """exitOptions.jobAction: what a task's failure does to its job (onTaskFailure=performexitoptionsjobaction)."""
    NONE = "none"
    DISABLE = "disable"
    TERMINATE = "terminate"


class SchedulingState(WireEnum):
    """A node's schedulingState: whether it takes new tasks (disable/enable scheduling)."""
    ENABLED = "enabled"
    DISABLED = "disabled"


class NodeAction(WireEnum):
    """What the runtime does to a node on a reboot, reimage, deallocate or start request. Not on the wire."""
    REBOOT = "reboot"            # its processes and /tmp go, its disk stays, its start task runs again
    REIMAGE = "reimage"          # its disk goes too: a fresh node with the same id and address
    DEALLOCATE = "deallocate"    # its processes go and it stays down (deallocated) until started
    START = "start"              # a deallocated node boots again, its disk as it was
