"""toolkit/retry.py without a network, on a fake clock: the classification of azure-core errors, the one
loop that polls or retries, and the four waits built on it (check_task's outage, a download cut mid-file,
create_pool_job's enable limit, delete_pool_job's wait)."""

import datetime
import io

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ODataV4Format,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

import delete_pool_job
from toolkit.autoscale import ENABLE_RETRY_SECONDS, ENABLE_WAIT_SECONDS, enable_formula
from toolkit.errors import ToolkitError
from toolkit.outputs import retry_if_cut
from toolkit.progress import Display, Outage
from toolkit.retry import Failure, Schedule, classify, is_broken_connection, is_transient, refused_with, retry


class FakeClock:
    """Time passes only when slept, or by `step` seconds at each reading (a call that takes time)."""

    def __init__(self, step=0.0):
        self.time, self.step, self.slept = 1000.0, step, []

    def now(self):
        self.time += self.step
        return self.time

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.time += seconds


def answered(status, code=None):
    err = HttpResponseError(f"answered {status}")
    err.status_code = status  # None: the connection broke while the answer was read
    if code is not None:
        err.error = ODataV4Format({"code": code, "message": "m"})
    return err


def failing(*errors, then="ok"):
    """A call that raises each error in turn, then returns `then`; `calls` counts the tries."""
    queue = list(errors)

    def call():
        call.calls += 1
        if queue:
            raise queue.pop(0)
        return then
    call.calls = 0
    return call


@pytest.mark.parametrize("err, failure", [
    (ServiceRequestError("refused"), Failure.UNREACHABLE),
    (ServiceResponseError("reset"), Failure.BROKEN_CONNECTION),
    (answered(None), Failure.BROKEN_CONNECTION),
    (answered(408), Failure.BUSY),
    (answered(429), Failure.BUSY),
    (answered(500), Failure.BUSY),
    (answered(503, "ServerBusy"), Failure.BUSY),
    (answered(501), Failure.REFUSED),
    (answered(409, "PoolExists"), Failure.REFUSED),
    (ResourceNotFoundError("JobNotFound"), Failure.REFUSED),
    (ValueError("not ours"), Failure.NOT_THE_SERVICE),
])
def test_classify(err, failure):
    if isinstance(err, ResourceNotFoundError):
        err.status_code = 404
    assert classify(err) is failure
    assert is_transient(err) == (failure in (Failure.UNREACHABLE, Failure.BROKEN_CONNECTION, Failure.BUSY))
    assert is_broken_connection(err) == (failure is Failure.BROKEN_CONNECTION)


def test_refused_with_reads_the_services_code_only():
    refused = refused_with("TooManyEnableAutoScaleRequests")
    assert refused(answered(503, "TooManyEnableAutoScaleRequests"))
    assert not refused(answered(409, "PoolBeingResized"))
    assert not refused(answered(503))                              # no code: not this refusal
    assert not refused(ServiceRequestError("TooManyEnableAutoScaleRequests"))  # a message is not a code


def test_schedule_pauses_grow_to_their_longest():
    pauses = Schedule(first=0.25, longest=5).pauses()
    assert [next(pauses) for _ in range(7)] == [0.25, 0.5, 1, 2, 4, 5, 5]
    fixed = Schedule(first=5, longest=5).pauses()
    assert [next(fixed) for _ in range(3)] == [5, 5, 5]


def test_retry_tries_again_what_it_is_told_to_with_its_pauses():
    clock, seen = FakeClock(), []
    call = failing(answered(503), ServiceRequestError("refused"), answered(None))
    assert retry(call, Schedule(first=1, longest=3), again=is_transient, on_pause=seen.append, clock=clock) == "ok"
    assert call.calls == 4 and clock.slept == [1, 2, 3]
    assert [(p.attempt, p.seconds, p.waited) for p in seen] == [(1, 1, 0), (2, 2, 1), (3, 3, 3)]
    assert [type(p.error) for p in seen] == [HttpResponseError, ServiceRequestError, HttpResponseError]


def test_retry_raises_any_other_error_at_once():
    clock, call = FakeClock(), failing(answered(409, "PoolExists"))
    with pytest.raises(HttpResponseError, match="answered 409"):
        retry(call, Schedule(first=1, longest=1), again=is_transient, clock=clock)
    assert call.calls == 1 and clock.slept == []


def test_retry_raises_the_last_error_after_its_attempts():
    clock, cuts = FakeClock(), [answered(None) for _ in range(5)]
    with pytest.raises(HttpResponseError) as caught:
        retry(failing(*cuts), Schedule(first=1, longest=8, attempts=3), again=is_transient, clock=clock)
    assert caught.value is cuts[2] and clock.slept == [1, 2]


def test_retry_gives_up_once_its_time_is_spent_counted_from_the_first_failure():
    clock = FakeClock(step=10)  # each reading is 10 s later: the first call took time before it failed
    with pytest.raises(ServiceRequestError):
        retry(failing(*[ServiceRequestError("refused")] * 20), Schedule(first=5, longest=5, within=40),
              again=is_transient, clock=clock)
    # Failures at 0 s, 15 s, 30 s after the first one; the next, at 45 s, is past the 40 s.
    assert clock.slept == [5, 5, 5]


def test_polling_returns_once_done_and_waits_without_limit():
    clock, answers = FakeClock(), iter([False, False, False, True])
    assert retry(lambda: next(answers), Schedule(first=0.25, longest=1), accept=bool, clock=clock) is True
    assert clock.slept == [0.25, 0.5, 1]


def test_polling_returns_the_last_result_when_spent():
    clock = FakeClock()
    assert retry(lambda: False, Schedule(first=1, longest=1, attempts=2), accept=bool, clock=clock) is False
    assert clock.slept == [1]


# --- the waits built on it -------------------------------------------------------------------------

def test_outage_gives_up_after_its_limit_on_its_clock():
    clock, out = FakeClock(step=1), io.StringIO()
    with pytest.raises(ToolkitError, match=r"could not be reached for 10m\d\ds; stopped waiting"):
        Outage(Display(waiting=True, out=out), limit=600, clock=clock).attempt(
            failing(*[ServiceRequestError("refused")] * 100), 1)
    assert out.getvalue().count("cannot be reached or is busy") == 1 and "answers again" not in out.getvalue()
    assert clock.slept[:6] == [1, 2, 4, 8, 16, 30] and set(clock.slept[6:]) == {30}


def test_outage_says_how_long_it_lasted_when_the_service_answers_again():
    clock, out = FakeClock(), io.StringIO()
    outage = Outage(Display(waiting=True, out=out), clock=clock)
    assert outage.attempt(failing(answered(503), answered(503)), 2) == "ok"
    assert "The service answers again (after 6s)." in out.getvalue() and outage.since is None


def test_a_download_cut_mid_file_is_started_again_twice():
    clock = FakeClock()
    assert retry_if_cut(failing(ServiceResponseError("reset"), answered(None), then=7), clock=clock) == 7
    assert clock.slept == [1, 2]
    with pytest.raises(ServiceResponseError):
        retry_if_cut(failing(*[ServiceResponseError("reset")] * 3), clock=clock)
    denied = failing(answered(403, "AuthenticationFailed"))
    with pytest.raises(HttpResponseError):
        retry_if_cut(denied, clock=clock)
    assert denied.calls == 1


class EnableClient:
    def __init__(self, *errors):
        self.call = failing(*errors, then=None)

    def enable_pool_auto_scale(self, pool_id, options):
        return self.call()


def test_enable_waits_out_the_services_limit(capsys):
    clock = FakeClock()
    busy = [answered(503, "TooManyEnableAutoScaleRequests") for _ in range(3)]
    enable_formula(EnableClient(*busy), "p", "f", datetime.timedelta(minutes=5), clock=clock)
    assert clock.slept == [ENABLE_RETRY_SECONDS] * 3
    assert capsys.readouterr().out.count(f"retrying in {ENABLE_RETRY_SECONDS} s...") == 3


def test_enable_gives_up_after_its_wait_and_retries_no_other_refusal():
    clock = FakeClock()
    busy = [answered(503, "TooManyEnableAutoScaleRequests") for _ in range(20)]
    with pytest.raises(HttpResponseError):
        enable_formula(EnableClient(*busy), "p", "f", datetime.timedelta(minutes=5), clock=clock)
    assert sum(clock.slept) <= ENABLE_WAIT_SECONDS + ENABLE_RETRY_SECONDS
    other = EnableClient(answered(409, "PoolBeingResized"))
    with pytest.raises(HttpResponseError):
        enable_formula(other, "p", "f", datetime.timedelta(minutes=5), clock=clock)
    assert other.call.calls == 1


def test_delete_wait_polls_faster_first_and_says_it_still_waits(capsys):
    clock, answers = FakeClock(), iter([False] * 9 + [True])
    delete_pool_job.wait("deleting pool [p]", lambda: next(answers), 5, clock=clock)
    assert clock.slept == [0.25, 0.5, 1, 2, 4, 5, 5, 5, 5]
    assert capsys.readouterr().out == "  still deleting pool [p] (18 s)...\n"  # after 17.75 s, once in 15 s
