"""The service side of autoscale: each pool's metric samples, and the formula runs that resize it.

Time scale. The emulator runs the service's autoscale clock ``Account.time_scale`` times faster
(``--time-scale``, default 300, set in __main__.py): samples are taken every 30 s of formula time
(0.1 s at 300), a sample is readable 30 s of formula time after it is taken, the evaluation
interval (autoScaleEvaluationInterval, at least 5 min) passes in interval/scale (1 s at 300),
look-backs such as ``GetSample(TimeInterval_Minute * 3)`` cover 3 scaled minutes (0.6 s at 300),
and so does the 30 s limit between enable-autoscale calls. time() and timestamp arithmetic keep the real
clock, so time-of-day formulas behave as on the service.

The readable window: samples every 30 s, each readable 30 s after it is taken, so a look-back
of 15 minutes finds 29 of 30 samples (96.6667 %, as a real pool's autoScaleRun showed) and one
of 3 minutes finds 5 of 6 (83.3333 %); a new pool has no readable sample for its first 30 s.

Pure functions of (account, pool, now) called under the account lock: the scheduler tick and
the create / enable / evaluate routes. ``now`` is wall-clock seconds (time.time()).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timezone
from typing import Any

from .. import formula as autoscale_formula
from .state import Account, Pool, iso, task_metrics
from .states import DeallocationOption, NodeState
from .validation import parse_duration

SAMPLE_PERIOD = autoscale_formula.SAMPLE_PERIOD_SECONDS    # formula seconds between two samples
SAMPLE_DELAY = 30.0                                # formula seconds before a sample is readable
HISTORY_SECONDS = 3 * 3600.0                       # formula seconds of history kept per pool
DEFAULT_INTERVAL = "PT15M"
ENABLE_LIMIT_SECONDS = 30.0                        # TooManyEnableAutoScaleRequests below this (formula time)
METRICS = ("$ActiveTasks", "$RunningTasks", "$PendingTasks", "$SucceededTasks", "$FailedTasks",
           "$CurrentDedicatedNodes", "$CurrentLowPriorityNodes", "$PreemptedNodeCount", "$UsableNodeCount",
           "$SampleNodeCount", "$TaskSlotsPerNode")
_COLUMN = {name: index for index, name in enumerate(METRICS)}


def as_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


class SampleHistory:
    """The samples of one pool: (wall time taken, values in METRICS order), oldest first."""

    def __init__(self, time_scale: float, start: float) -> None:
        self.time_scale = time_scale
        self.period = SAMPLE_PERIOD / time_scale
        self.delay = SAMPLE_DELAY / time_scale
        self.samples: deque[tuple[float, tuple[float, ...]]] = deque(maxlen=int(HISTORY_SECONDS / SAMPLE_PERIOD))
        self.capacity = int(HISTORY_SECONDS / SAMPLE_PERIOD)
        self.next_due = start

    def record(self, now: float, values: dict[str, float]) -> None:
        """Take the samples due by ``now`` (every slot that passed, if the scheduler ran late)."""
        taken = 0
        while self.next_due <= now and taken < self.capacity:
            self.samples.append((self.next_due, tuple(values[name] for name in METRICS)))
            self.next_due += self.period
            taken += 1
        if self.next_due <= now:      # stalled for longer than the history: start a new grid
            self.next_due = now + self.period

    def view(self, now: float) -> SampleView:
        return SampleView(self, now)


class SampleView:
    """What a formula evaluated at ``now`` can read (autoscale_formula.Environment.samples)."""

    def __init__(self, history: SampleHistory, now: float) -> None:
        self.time_scale = history.time_scale
        self.readable = [s for s in history.samples if s[0] <= now - history.delay]

    def last(self, metric: str, count: int) -> list[float]:
        rows = self.readable[-count:] if count > 0 else []
        return [row[_COLUMN[metric]] for _taken, row in rows]

    def window(self, metric: str, start: datetime, end: datetime) -> tuple[list[float], float]:
        """Values taken in (start, end] and the percentage of the samples that window should hold."""
        low, high = start.timestamp(), end.timestamp()
        found = [row[_COLUMN[metric]] for taken, row in self.readable if low < taken <= high]
        expected = (high - low) * self.time_scale / SAMPLE_PERIOD
        percent = 100.0 if expected <= 0 else min(100.0, 100.0 * len(found) / expected)
        return found, percent

    def count(self, _metric: str) -> int:
        return len(self.readable)

    def begin(self, _metric: str) -> datetime | None:
        return as_datetime(self.readable[0][0]) if self.readable else None


def current_values(account: Account, pool: Pool) -> dict[str, float]:
    """The metrics of ``pool`` now. A multi-instance task counts numberOfInstances while active or
    running (the docs say so for $ActiveTasks; [inferred] for $RunningTasks, as it holds that many nodes)."""
    tasks = task_metrics(account, pool)
    nodes = list(pool.nodes.values())
    return {
        "$ActiveTasks": tasks["active"], "$RunningTasks": tasks["running"],
        "$PendingTasks": tasks["active"] + tasks["running"],
        "$SucceededTasks": tasks["succeeded"], "$FailedTasks": tasks["failed"],
        "$CurrentDedicatedNodes": sum(1 for n in nodes if n.dedicated),
        "$CurrentLowPriorityNodes": sum(1 for n in nodes if not n.dedicated),
        "$PreemptedNodeCount": 0,
        "$UsableNodeCount": sum(1 for n in nodes if n.state in (NodeState.IDLE, NodeState.RUNNING)),
        "$SampleNodeCount": len(nodes),
        "$TaskSlotsPerNode": pool.settings.task_slots_per_node,
    }


def record(account: Account, pool: Pool, now: float) -> None:
    if pool.samples is None:
        pool.samples = SampleHistory(account.time_scale, now)
    if pool.samples.next_due <= now:
        pool.samples.record(now, current_values(account, pool))


def environment(account: Account, pool: Pool, now: float) -> autoscale_formula.Environment:
    record(account, pool, now)
    return autoscale_formula.Environment(now=as_datetime(now), target_dedicated=pool.target_dedicated,
                                 target_low_priority=pool.target_low_priority,
                                 current=current_values(account, pool), samples=pool.samples.view(now),
                                 time_scale=account.time_scale)


def evaluate(account: Account, pool: Pool, formula: str,
             now: float) -> tuple[autoscale_formula.Outcome, dict[str, Any]]:
    """Evaluate ``formula`` on ``pool`` without applying it: (Outcome, AutoScaleRun wire object)."""
    outcome = autoscale_formula.evaluate(formula, environment(account, pool, now))
    return outcome, outcome.run(iso(as_datetime(now)) or "")


def interval_seconds(account: Account, pool: Pool) -> float:
    """The evaluation interval in wall seconds."""
    duration = parse_duration(pool.auto_scale_interval or DEFAULT_INTERVAL, "autoScaleEvaluationInterval")
    return duration.total_seconds() / account.time_scale


def run(account: Account, pool: Pool, now: float) -> autoscale_formula.Outcome:
    """One autoscale run: evaluate the pool's formula, show it in autoScaleRun, apply the targets.

    A failed run changes nothing, as on the service. --max-nodes caps the targets (a safety limit
    for a laptop): the results string still shows what the formula asked. A run that applies its targets
    starts a resize, so the account's core quotas are checked anew (service/quota.py).
    """
    outcome, pool.auto_scale_run = evaluate(account, pool, pool.auto_scale_formula or "", now)
    if outcome.error is None:
        assert outcome.target_dedicated is not None and outcome.target_low_priority is not None   # set on success
        dedicated = min(outcome.target_dedicated, account.max_nodes)
        pool.target_dedicated = dedicated
        pool.target_low_priority = min(outcome.target_low_priority, account.max_nodes - dedicated)
        pool.deallocation_option = DeallocationOption(outcome.deallocation)
        pool.begin_resize()
    return outcome


def start(account: Account, pool: Pool, now: float) -> None:
    """Autoscale was just enabled (pool create or enable): the first run comes one interval from now, then
    every interval. Not at once: a pool read in the same second as enableautoscale has no autoScaleRun and
    its old targets (Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/
    test_batch.pyTestBatchtest_batch_scale_pools[sync].json), and none appeared for 35 s after."""
    pool.auto_scale_run = None
    pool.next_evaluation = now + interval_seconds(account, pool)


def step(account: Account, pool: Pool, now: float) -> None:
    """Scheduler tick: take the samples that are due, and run the formula when its interval has passed."""
    record(account, pool, now)
    if not pool.enable_auto_scale:
        return
    if pool.next_evaluation is None:
        start(account, pool, now)
    elif now >= pool.next_evaluation:
        run(account, pool, now)
        interval = interval_seconds(account, pool)
        pool.next_evaluation += interval
        if pool.next_evaluation <= now:     # the scheduler stalled for more than an interval
            pool.next_evaluation = now + interval


def enable_too_soon(account: Account, pool: Pool, now: float) -> bool:
    """True if an enable-autoscale call on ``pool`` comes within 30 s (formula time) of the last one."""
    return pool.last_enable is not None and (now - pool.last_enable) * account.time_scale < ENABLE_LIMIT_SECONDS
