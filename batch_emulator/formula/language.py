"""The autoscale formula language's vocabulary, shared by the parser, the checks and the evaluator.

Holds the service's error codes and messages, FormulaError (what is wrong with a formula,
where), the constants (TimeInterval_*, deallocation options, timestamp members), the
service-defined variables, and the methods with their argument counts (functions.py has the
functions).
The language itself is described in evaluator.py.
"""

from __future__ import annotations

from typing import Any

Pos = tuple[int, int]           # (line, column) of a token in the formula, 1-based
Arity = tuple[int, int | None]  # (least, most) arguments; most None: no upper bound

MAX_STATEMENTS = 100
SAMPLE_PERIOD_SECONDS = 30.0    # the service samples every 30 s (formula time)

# Error codes. The first three are the service's (Batch error-code list; the InsufficientSampleData
# body is the REST reference example; AutoScalingFormulaEvaluationError is what the service returns
# for "$something_useless", per the azure-sdk-for-js Batch tests).
SYNTAX_ERROR = "AutoScalingFormulaSyntaxError"
INVALID_SETTINGS = "InvalidAutoScalingSettings"
INSUFFICIENT_SAMPLES = "InsufficientSampleData"
EVALUATION_ERROR = "AutoScalingFormulaEvaluationError"
MESSAGES = {
    SYNTAX_ERROR: "The specified auto-scaling formula has a syntax error.",
    INVALID_SETTINGS: "The specified auto-scaling settings are not valid.",
    INSUFFICIENT_SAMPLES: "Autoscale evaluation failed due to insufficient sample data",
    EVALUATION_ERROR: "Autoscale evaluation failed due to an error in the formula",   # [inferred] wording
}

DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")
DEFAULT_DEALLOCATION = "requeue"
TIME_INTERVALS = {
    "TimeInterval_Zero": 0.0, "TimeInterval_100ns": 1e-7, "TimeInterval_Microsecond": 1e-6,
    "TimeInterval_Millisecond": 1e-3, "TimeInterval_Second": 1.0, "TimeInterval_Minute": 60.0,
    "TimeInterval_Hour": 3600.0, "TimeInterval_Day": 86400.0, "TimeInterval_Week": 604800.0,
    "TimeInterval_Year": 365 * 86400.0,
}
TIMESTAMP_MEMBERS = ("year", "month", "day", "weekday", "hour", "minute", "second")

# Service-defined variables, canonical spelling (matched case-insensitively: the REST reference
# example writes $targetDedicatedNodes). Aliases read and write their own slot.
WRITABLE = ("$TargetDedicatedNodes", "$TargetDedicated", "$TargetLowPriorityNodes", "$TargetLowPriority",
            "$NodeDeallocationOption")
TASK_METRICS = ("$ActiveTasks", "$RunningTasks", "$PendingTasks", "$SucceededTasks", "$FailedTasks")
NODE_METRICS = ("$CurrentDedicatedNodes", "$CurrentDedicated", "$CurrentLowPriorityNodes", "$PreemptedNodeCount",
                "$UsableNodeCount", "$SampleNodeCount", "$TaskSlotsPerNode")
RESOURCE_METRICS = ("$CPUPercent", "$WallClockSeconds", "$MemoryBytes", "$DiskBytes", "$DiskReadBytes",
                    "$DiskWriteBytes", "$DiskReadOps", "$DiskWriteOps", "$NetworkInBytes", "$NetworkOutBytes")
SERVICE_VARIABLES = {name.lower(): name for name in WRITABLE + TASK_METRICS + NODE_METRICS + RESOURCE_METRICS}
METRIC_ALIASES = {"$CurrentDedicated": "$CurrentDedicatedNodes"}

# method name -> (least, most) arguments (functions.py has each function's)
METHODS: dict[str, Arity] = {
    "GetSample": (1, 3), "GetSamplePercent": (1, 2), "GetSamplePeriod": (0, 0), "Count": (0, 0),
    "HistoryBeginTime": (0, 0)}


class FormulaError(Exception):
    """What is wrong with a formula, where. kind: syntax | invalid | unsupported | runtime | samples."""

    def __init__(self, kind: str, pos: Pos, text: str) -> None:
        self.kind, self.pos, self.text = kind, pos, text
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        return f"Line {self.pos[0]}, Col {self.pos[1]}: {self.text}"

    @property
    def request_code(self) -> str:
        """Code of the 400 the service returns at pool create / enable autoscale."""
        return SYNTAX_ERROR if self.kind == "syntax" else INVALID_SETTINGS

    @property
    def run_code(self) -> str:
        """Code of the AutoScaleRunError of an evaluation (evaluate API or periodic run)."""
        return {"syntax": SYNTAX_ERROR, "samples": INSUFFICIENT_SAMPLES}.get(self.kind, EVALUATION_ERROR)

    def run_error(self) -> dict[str, Any]:
        code = self.run_code
        return {"code": code, "message": MESSAGES[code], "values": [{"name": "Message", "value": self.detail}]}


def service_name(name: str) -> str | None:
    """Canonical spelling of a service-defined variable, or None for a user variable."""
    return SERVICE_VARIABLES.get(name.lower()) if name.startswith("$") else None
