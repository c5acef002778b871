"""create_pool_job.py's autoscale formula: the formula itself, its check by the service's evaluate API, and
its enabling, which waits out the service's limit on enable calls.

The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from toolkit.batch import service_message
from toolkit.checked import PoolSettings
from toolkit.errors import ToolkitError
from toolkit.retry import Clock, Pause, Schedule, refused_with, retry

if TYPE_CHECKING:
    from azure.batch import BatchClient, models

# A new pool starts with this formula: autoscale on (the evaluate API needs it) but 0 nodes, the
# documented way to evaluate a formula before applying it.
HOLD_FORMULA = "$TargetDedicatedNodes = 0;\n$TargetLowPriorityNodes = 0;"
# Batch accepts one enable-autoscale call per pool every 30 s (TooManyEnableAutoScaleRequests).
ENABLE_WAIT_SECONDS = 40
ENABLE_RETRY_SECONDS = 5


def autoscale_formula(max_nodes: int, spot: bool = False) -> str:
    """Follow pending tasks ($PendingTasks counts every instance of an MPI task), capped at max_nodes.

    Grows as soon as work is pending; shrinks to zero only after three minutes
    with nothing pending, and removes a node only once its task has completed.
    A new pool has no sample yet: GetSample(1) is then empty, so the 0 in
    max(0, ...) keeps the first evaluation from failing (it gives 0 nodes).
    With `spot` (SPOT, --spot), the same target goes to $TargetLowPriorityNodes (Spot nodes) and the
    dedicated target is 0: the pool holds Spot nodes only, the cheap kind it was asked for.
    """
    target = f"min({max_nodes}, max(pendingNow, pendingRecent))"
    dedicated, low_priority = ("0", target) if spot else (target, "0")
    return (
        "pendingNow = max(0, $PendingTasks.GetSample(1));\n"
        "recentPercent = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 3);\n"
        "pendingRecent = recentPercent < 70 ? pendingNow : max($PendingTasks.GetSample(TimeInterval_Minute * 3));\n"
        f"$TargetDedicatedNodes = {dedicated};\n"
        f"$TargetLowPriorityNodes = {low_priority};\n"
        "$NodeDeallocationOption = taskcompletion;"
    )


def evaluation_interval(settings: PoolSettings) -> datetime.timedelta:
    return datetime.timedelta(minutes=settings.autoscale_evaluation_minutes)


def describe_run_error(error: models.AutoScaleRunError) -> str:
    """An AutoScaleRunError as one line: code, message and its details ("Line 1, Col 5: ...")."""
    details = "; ".join(str(item.value) for item in (error.error_values or []) if item.value)
    return f"{error.code}: {error.message}" + (f" ({details})" if details else "")


def check_formula(client: BatchClient, pool_id: str, formula: str) -> None:
    """Show what `formula` evaluates to on the pool (the service's evaluate API applies nothing).

    Raises ToolkitError with the service's message when it fails to evaluate.
    """
    from azure.batch import models
    from azure.core.exceptions import HttpResponseError

    print(f"Checking autoscale formula on pool [{pool_id}]...")
    try:
        result = client.evaluate_pool_auto_scale(
            pool_id, models.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=formula))
    except HttpResponseError as err:
        if err.status_code != 400:
            raise
        details = "; ".join(str(d.message) for d in (getattr(err.error, "details", None) or []) if d.message)
        raise ToolkitError(f"The service refused the autoscale formula of pool [{pool_id}]: "
                           f"{service_message(err)}" + (f" ({details})" if details else "")) from None
    if result.error is not None:
        raise ToolkitError(f"The autoscale formula of pool [{pool_id}] fails to evaluate: "
                           f"{describe_run_error(result.error)}")
    print("The formula evaluates to (nothing applied by this check):")
    for item in (result.results or "").split(";"):
        print(f"    {item}")


def enable_formula(client: BatchClient, pool_id: str, formula: str, interval: datetime.timedelta,
                   clock: Clock | None = None) -> None:
    """Enable `formula` on the pool, waiting out the service's one-call-per-30-seconds limit if it answers
    TooManyEnableAutoScaleRequests (the docs do not say whether creating the pool counts as a call)."""
    from azure.batch import models

    def say_retrying(_pause: Pause) -> None:
        print("Batch allows one autoscale change per pool every 30 seconds; "
              f"retrying in {ENABLE_RETRY_SECONDS} s...")

    print(f"Enabling the autoscale formula on pool [{pool_id}]...")
    retry(lambda: client.enable_pool_auto_scale(pool_id, models.BatchPoolEnableAutoScaleOptions(
              auto_scale_formula=formula, auto_scale_evaluation_interval=interval)),
          Schedule(first=ENABLE_RETRY_SECONDS, longest=ENABLE_RETRY_SECONDS, within=ENABLE_WAIT_SECONDS),
          again=refused_with("TooManyEnableAutoScaleRequests"), on_pause=say_retrying, clock=clock)


def apply_formula(client: BatchClient, settings: PoolSettings, pool_id: str, max_nodes: int) -> None:
    """Evaluate the project's formula on a pool that holds at 0 nodes, then enable it.

    This is the documented safe way: evaluate needs autoscale enabled, so the pool is created with
    HOLD_FORMULA. Creating it with the real formula would also be checked by the service, but only
    for validity: a formula that is valid yet fails to evaluate (e.g. on a pool with no samples yet)
    would be running before anyone saw it fail.
    """
    formula = autoscale_formula(max_nodes, settings.spot)
    check_formula(client, pool_id, formula)
    enable_formula(client, pool_id, formula, evaluation_interval(settings))
