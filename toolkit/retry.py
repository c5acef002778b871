"""Which azure-core errors waiting may cure, and the one loop that polls or retries.

classify() sorts an error into what the scripts branch on: no connection, a connection broken while the
answer was read, a busy service (408, 429, 5xx), or an answer that refuses (its code, via
toolkit.batch.error_code, says why). retry() calls a function until its result is accepted or its error is
not one to try again, pausing as its Schedule says, on a Clock that tests replace (no global patching of
time.sleep or time.monotonic).

The azure packages are imported inside functions so that `--help` stays fast.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from toolkit.batch import error_code

T = TypeVar("T")

# Answers that say "not now" rather than "no": timeouts, throttling, server errors.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Failure(enum.Enum):
    """What an exception says about the service."""
    UNREACHABLE = "no connection"             # ServiceRequestError: the request never got an answer
    BROKEN_CONNECTION = "connection broken"   # cut while the answer was read: no HTTP status
    BUSY = "busy"                             # 408, 429 or a 5xx that waiting may cure
    REFUSED = "refused"                       # any other answer: its error code says why
    NOT_THE_SERVICE = "not the service's"     # not an azure-core error


def classify(err: BaseException) -> Failure:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(err, ServiceRequestError):
        return Failure.UNREACHABLE
    if isinstance(err, ServiceResponseError):
        return Failure.BROKEN_CONNECTION
    if not isinstance(err, HttpResponseError):
        return Failure.NOT_THE_SERVICE
    if err.status_code is None:  # azure-core raises a connection cut mid-answer with no status
        return Failure.BROKEN_CONNECTION
    return Failure.BUSY if err.status_code in TRANSIENT_STATUSES else Failure.REFUSED


def is_transient(err: BaseException) -> bool:
    """An error that waiting may cure: no connection, a broken answer, 408/429/5xx."""
    return classify(err) in (Failure.UNREACHABLE, Failure.BROKEN_CONNECTION, Failure.BUSY)


def is_broken_connection(err: BaseException) -> bool:
    """A connection cut while the answer was read (a download to start again from its beginning)."""
    return classify(err) is Failure.BROKEN_CONNECTION


def refused_with(*codes: str) -> Callable[[BaseException], bool]:
    """A predicate: the service answered one of these error codes (e.g. 'TooManyEnableAutoScaleRequests')."""
    def refused(err: BaseException) -> bool:
        return isinstance(err, Exception) and error_code(err) in codes
    return refused


# --- the loop ----------------------------------------------------------------------------------------

class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class SystemClock:
    """The real clock: time.monotonic, and `pause` to sleep (time.sleep unless given)."""
    pause: Callable[[float], None] = time.sleep

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.pause(seconds)


@dataclass(frozen=True)
class Schedule:
    """The pauses between tries: `first`, then each `factor` times the last, at most `longest`. No more tries
    after `attempts` (None: no limit), nor once more than `within` seconds have passed since the first try
    that failed (None: no limit)."""
    first: float
    longest: float
    factor: float = 2.0
    attempts: int | None = None
    within: float | None = None

    def pauses(self) -> Iterator[float]:
        pause = self.first
        while True:
            yield pause
            pause = min(pause * self.factor, self.longest)

    def spent(self, attempt: int, waited: float) -> bool:
        return (self.attempts is not None and attempt >= self.attempts) or \
            (self.within is not None and waited > self.within)


@dataclass(frozen=True)
class Pause:
    """What on_pause is told before each pause."""
    attempt: int                   # the tries made so far
    at: float                      # the clock's reading
    seconds: float                 # the pause about to be made
    waited: float                  # seconds since the first try that failed (or whose result was not accepted)
    error: BaseException | None    # the error tried again; None when polling (the result was not accepted)


def _never(_err: BaseException) -> bool:
    return False


def _always(_result: object) -> bool:
    return True


def _silent(_pause: Pause) -> None:
    pass


def retry(call: Callable[[], T], schedule: Schedule, *, again: Callable[[BaseException], bool] = _never,
          accept: Callable[[T], bool] = _always, on_pause: Callable[[Pause], None] = _silent,
          clock: Clock | None = None) -> T:
    """call() until it returns a result that `accept` takes; an error that `again` takes is tried again,
    any other is raised. Between tries, on_pause() then the schedule's next pause. When the schedule is
    spent, the last error is raised, or the last result (not accepted) returned.

    Retrying: retry(call, schedule, again=is_transient). Polling: retry(done, schedule, accept=bool)."""
    clock = clock or SystemClock()
    pauses = schedule.pauses()
    first_failed: float | None = None
    for attempt in itertools.count(1):
        error: BaseException | None = None
        try:
            result = call()
        except Exception as err:
            if not again(err):
                raise
            error = err
        else:
            if accept(result):
                return result
        now = clock.now()
        first_failed = now if first_failed is None else first_failed
        if schedule.spent(attempt, now - first_failed):
            if error is not None:
                raise error
            return result
        pause = Pause(attempt, now, next(pauses), now - first_failed, error)
        on_pause(pause)
        clock.sleep(pause.seconds)
    raise AssertionError("unreachable")  # itertools.count never ends
