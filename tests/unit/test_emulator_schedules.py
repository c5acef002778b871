"""Job schedules in the service layer (batch_emulator/service/schedules.py): the checks on their bodies, the
recurrence that makes their jobs (one at a time, start windows, doNotRunUntil/After) on the scaled clock, and the
state changes with the service's codes. The recurrence runs at explicit times (``schedules.step(account, now)``),
so no test waits."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from batch_emulator.service import jobs, scheduler, schedules
from batch_emulator.service.conditions import Conditions
from batch_emulator.service.errors import BatchServiceError
from batch_emulator.service.state import Account
from batch_emulator.service.states import JobScheduleState, JobState

SPEC = {"poolInfo": {"poolId": "pool-1"}}
SCALE = 60.0      # a PT1M recurrence is 1 s of wall time


@pytest.fixture
def account(tmp_path):
    return Account(name="a", root=str(tmp_path), time_scale=SCALE)


def refusal(func, *args, **kwargs):
    with pytest.raises(BatchServiceError) as caught:
        func(*args, **kwargs)
    return caught.value


def create(account, schedule=None, spec=None, schedule_id="s1", **extra):
    body = {"id": schedule_id, "schedule": {} if schedule is None else schedule,
            "jobSpecification": SPEC if spec is None else spec, **extra}
    schedules.create_job_schedule(account, body)
    return account.job_schedules[schedule_id.lower()]


def iso_in(seconds):
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


def complete(account, job_id):
    account.jobs[job_id.lower()].transition(JobState.COMPLETED)


# ---- checks on the body ----

@pytest.mark.parametrize("body, code, name", [
    ({"id": "s", "jobSpecification": SPEC}, "MissingRequiredProperty", "schedule"),
    ({"id": "s", "schedule": {}}, "MissingRequiredProperty", "jobSpecification"),
    ({"id": "s:x", "schedule": {}, "jobSpecification": SPEC}, "InvalidPropertyValue", "id"),
    ({"id": "s", "schedule": {"recurrenceInterval": "PT59S"}, "jobSpecification": SPEC}, "InvalidPropertyValue",
     "schedule.recurrenceInterval"),
    ({"id": "s", "schedule": {"startWindow": "PT30S"}, "jobSpecification": SPEC}, "InvalidPropertyValue",
     "schedule.startWindow"),
    ({"id": "s", "schedule": {"recurrenceInterval": "every day"}, "jobSpecification": SPEC}, "InvalidPropertyValue",
     "schedule.recurrenceInterval"),
    ({"id": "s", "schedule": {"doNotRunUntil": "tomorrow"}, "jobSpecification": SPEC}, "InvalidPropertyValue",
     "schedule.doNotRunUntil"),
    ({"id": "s", "schedule": {}, "jobSpecification": {}}, "MissingRequiredProperty", "poolInfo"),
    ({"id": "s", "schedule": {}, "jobSpecification": {"poolInfo": {"autoPoolSpecification": {
        "poolLifetimeOption": "jobschedule", "pool": {}}}}}, "InvalidPropertyValue",
     "jobSpecification.poolInfo.autoPoolSpecification.poolLifetimeOption"),
    ({"id": "s", "schedule": {}, "jobSpecification": SPEC, "metadata": [{"value": "v"}]}, "InvalidPropertyValue",
     "metadata"),
])
def test_a_bad_body_is_refused_with_the_property_it_names(account, body, code, name):
    error = refusal(schedules.create_job_schedule, account, body)
    assert (error.status, error.code, dict(error.values).get("PropertyName")) == (400, code, name)
    assert account.job_schedules == {} and account.jobs == {}


def test_a_recurrence_of_exactly_one_minute_is_accepted(account):
    assert create(account, {"recurrenceInterval": "PT1M", "startWindow": "PT1M"}).state == JobScheduleState.ACTIVE


def test_ids_are_unique_across_schedules_and_jobs(account):
    create(account)
    assert refusal(create, account, schedule_id="S1").code == "JobScheduleExists"
    jobs.create_job(account, {"id": "j1", "poolInfo": {"poolId": "pool-1"}})
    error = refusal(create, account, schedule_id="J1")
    assert (error.status, error.code) == (409, "JobWithSameIdExists")


# ---- the jobs a schedule makes ----

def test_a_schedule_without_do_not_run_until_makes_its_job_at_once_from_its_specification(account):
    spec = {"poolInfo": {"poolId": "pool-1"}, "priority": "7", "displayName": "nightly"}
    schedule = create(account, spec=spec)
    etag = schedule.etag
    job = account.jobs["s1:job-1"]
    assert (job.id, job.spec["priority"], job.spec["displayName"], job.pool_id()) == \
        ("s1:job-1", 7, "nightly", "pool-1")
    assert schedule.job_ids == ["s1:job-1"] and schedule.next_run is None   # it does not recur
    assert schedule.etag == etag      # a new job is not a change of the schedule (recorded)


def test_the_first_job_waits_for_do_not_run_until(account):
    schedule = create(account, {"doNotRunUntil": iso_in(3600)})
    until = schedule.next_run
    assert account.jobs == {} and until == pytest.approx(time.time() + 3600, abs=5)
    schedules.step(account, until - 0.01)
    assert account.jobs == {}
    schedules.step(account, until)
    assert list(account.jobs) == ["s1:job-1"]


def test_one_job_at_a_time_the_next_when_due_and_the_previous_completed(account):
    schedule = create(account, {"recurrenceInterval": "PT1M"})    # 1 s at SCALE
    t0 = schedule.last_due
    assert schedule.next_run == pytest.approx(t0 + 1)
    schedules.step(account, t0 + 1.5)
    assert list(account.jobs) == ["s1:job-1"]                     # job-1 still runs
    complete(account, "s1:job-1")
    schedules.step(account, t0 + 1.6)
    assert list(account.jobs) == ["s1:job-1", "s1:job-2"]
    assert schedule.last_due == pytest.approx(t0 + 1) and schedule.next_run == pytest.approx(t0 + 2)


def test_a_slot_whose_window_passed_is_lost(account):
    schedule = create(account, {"recurrenceInterval": "PT2M", "startWindow": "PT1M"})   # 2 s slots, 1 s windows
    t0 = schedule.last_due
    schedules.step(account, t0 + 3.5)                # job-1 ran past the window of the slot at t0 + 2
    assert schedule.next_run == pytest.approx(t0 + 4)
    complete(account, "s1:job-1")
    schedules.step(account, t0 + 3.9)
    assert len(account.jobs) == 1                    # the next slot is not due yet
    schedules.step(account, t0 + 4.5)
    assert list(account.jobs) == ["s1:job-1", "s1:job-2"]


def test_many_missed_slots_are_skipped_at_once(account):
    schedule = create(account, {"recurrenceInterval": "PT1M"})
    t0 = schedule.last_due
    schedules.step(account, t0 + 1_000_000.5)         # a scheduler that stalled for days
    assert schedule.next_run == pytest.approx(t0 + 1_000_001)


def test_a_schedule_that_does_not_recur_completes_when_its_job_completes(account):
    schedule = create(account)
    etag, modified = schedule.etag, schedule.last_modified
    schedules.step(account, time.time())
    assert schedule.state == JobScheduleState.ACTIVE
    complete(account, "s1:job-1")
    schedules.step(account, time.time())
    assert schedule.state == JobScheduleState.COMPLETED and schedule.end_time == schedule.state_time
    assert (schedule.previous_state, schedule.etag, schedule.last_modified) == (JobScheduleState.ACTIVE, etag,
                                                                                modified)


def test_a_missed_start_window_of_a_single_job_completes_the_schedule_without_a_job(account):
    schedule = create(account, {"doNotRunUntil": iso_in(-3600), "startWindow": "PT1M"})   # 1 s window, 1 h ago
    assert account.jobs == {} and schedule.state == JobScheduleState.COMPLETED


def test_no_job_after_do_not_run_after_and_completed_once_none_runs(account):
    schedule = create(account, {"recurrenceInterval": "PT1M", "doNotRunAfter": iso_in(3600)})
    after = time.time() + 3600
    complete(account, "s1:job-1")
    schedules.step(account, after + 10)
    assert list(account.jobs) == ["s1:job-1"] and schedule.state == JobScheduleState.COMPLETED
    assert schedule.next_run is None


def test_a_recurrence_past_do_not_run_after_is_not_planned(account):
    schedule = create(account, {"recurrenceInterval": "P1D", "doNotRunAfter": iso_in(3600)})
    assert schedule.next_run is not None                   # one day scaled is 24 min: before the deadline
    schedule = create(account, {"recurrenceInterval": "P10D", "doNotRunAfter": iso_in(3600)}, schedule_id="s2")
    assert schedule.next_run is None                       # ten days scaled are 4 h: after it


def test_the_scheduler_tick_runs_the_recurrence(account):
    schedule = create(account, {"doNotRunUntil": iso_in(0.05)})
    deadline = time.monotonic() + 5
    while not account.jobs and time.monotonic() < deadline:
        scheduler.tick(account)
    assert list(account.jobs) == ["s1:job-1"] and schedule.job_ids == ["s1:job-1"]


# ---- state changes ----

def test_disable_makes_no_job_until_enabled(account):
    schedule = create(account, {"doNotRunUntil": iso_in(3600)})
    schedules.disable_job_schedule(account, "s1", Conditions())
    assert schedule.state == JobScheduleState.DISABLED
    schedules.step(account, schedule.next_run + 1)
    assert account.jobs == {}
    assert refusal(schedules.disable_job_schedule, account, "s1", Conditions()).code == "JobScheduleDisabled"
    schedules.enable_job_schedule(account, "s1", Conditions())
    assert (schedule.state, schedule.previous_state) == (JobScheduleState.ACTIVE, JobScheduleState.DISABLED)
    schedules.step(account, schedule.next_run + 1)
    assert list(account.jobs) == ["s1:job-1"]
    error = refusal(schedules.enable_job_schedule, account, "s1", Conditions())
    assert (error.status, error.code) == (409, "OperationInvalidForCurrentState")


def test_terminate_ends_the_running_job_then_completes(account):
    schedule = create(account)
    etag = schedule.etag
    schedules.terminate_job_schedule(account, "s1", Conditions())
    job = account.jobs["s1:job-1"]
    assert schedule.state == JobScheduleState.TERMINATING and schedule.etag != etag
    assert (job.state, job.terminate_reason) == (JobState.TERMINATING, "TerminateJobSchedule")
    for action in (schedules.disable_job_schedule, schedules.terminate_job_schedule):
        assert refusal(action, account, "s1", Conditions()).code == "JobScheduleBeingTerminated"
    complete(account, "s1:job-1")
    schedules.step(account, time.time())
    assert (schedule.state, schedule.previous_state) == (JobScheduleState.COMPLETED, JobScheduleState.ACTIVE)
    for action in (schedules.disable_job_schedule, schedules.enable_job_schedule, schedules.terminate_job_schedule):
        assert refusal(action, account, "s1", Conditions()).code == "JobScheduleCompleted"
    assert refusal(schedules.update_job_schedule, account, "s1", Conditions(), {}).code == "JobScheduleCompleted"


def test_terminate_without_a_running_job_completes_at_once(account):
    schedule = create(account, {"doNotRunUntil": iso_in(3600)})
    schedules.terminate_job_schedule(account, "s1", Conditions())
    assert (schedule.state, schedule.previous_state) == (JobScheduleState.COMPLETED, JobScheduleState.ACTIVE)
    assert schedule.next_run is not None      # kept: a deleting schedule shows it again (recorded)


def test_delete_deletes_its_jobs_then_the_schedule_goes(account):
    account.deleting_seconds = 0.0
    schedule = create(account)
    etag = schedule.etag
    schedules.delete_job_schedule(account, "s1", Conditions())
    assert (schedule.state, schedule.etag) == (JobScheduleState.DELETING, etag)   # delete keeps the ETag (recorded)
    assert account.jobs["s1:job-1"].state == JobState.DELETING
    error = refusal(schedules.delete_job_schedule, account, "s1", Conditions())
    assert (error.status, error.code) == (409, "JobScheduleBeingDeleted")
    assert refusal(create, account).code == "JobScheduleBeingDeleted"
    assert refusal(schedules.update_job_schedule, account, "s1", Conditions(), {}).code == "JobScheduleBeingDeleted"
    schedules.step(account, time.time())
    assert "s1" in account.job_schedules           # its job is not gone yet
    scheduler.tick(account)                        # the job goes ...
    assert account.jobs == {} and "s1" in account.job_schedules
    scheduler.tick(account)                        # ... then the schedule, at the next tick
    assert account.job_schedules == {}
    assert refusal(schedules.get_job_schedule, account, "s1").code == "JobScheduleNotFound"


def test_patch_replaces_what_the_body_has_and_plans_anew(account):
    schedule = create(account, {"doNotRunUntil": iso_in(3600), "startWindow": "PT1H"},
                      metadata=[{"name": "a", "value": "1"}])
    etag = schedule.etag
    schedules.update_job_schedule(account, "s1", Conditions(), {"schedule": {"doNotRunUntil": iso_in(7200)}})
    assert schedule.spec["schedule"] == {"doNotRunUntil": schedule.spec["schedule"]["doNotRunUntil"]}
    assert schedule.next_run == pytest.approx(time.time() + 7200, abs=5) and schedule.etag != etag
    assert schedule.spec["metadata"] == [{"name": "a", "value": "1"}]       # not in the body: kept
    schedules.update_job_schedule(account, "s1", Conditions(), {"schedule": {}})
    assert list(account.jobs) == ["s1:job-1"]      # an empty schedule is due at once


def test_put_resets_what_the_body_omits_and_the_next_job_uses_the_new_specification(account):
    schedule = create(account, {"recurrenceInterval": "PT1M"}, metadata=[{"name": "a", "value": "1"}])
    t0 = schedule.last_due
    new_spec = {"poolInfo": {"poolId": "pool-2"}}
    assert refusal(schedules.update_job_schedule, account, "s1", Conditions(), {"schedule": {}},
                   replace=True).code == "MissingRequiredProperty"
    schedules.update_job_schedule(account, "s1", Conditions(), {"schedule": {"recurrenceInterval": "PT2M"},
                                                                "jobSpecification": new_spec}, replace=True)
    assert "metadata" not in schedule.spec and schedule.next_run == pytest.approx(t0 + 2)
    assert account.jobs["s1:job-1"].pool_id() == "pool-1"      # the running job keeps its specification
    complete(account, "s1:job-1")
    schedules.step(account, t0 + 2.1)
    assert account.jobs["s1:job-2"].pool_id() == "pool-2"


def test_a_write_with_a_stale_etag_is_refused(account):
    create(account)
    stale = Conditions.from_headers({"if-match": "0x8D0000000000000"})
    for write in (schedules.disable_job_schedule, schedules.terminate_job_schedule,
                  schedules.delete_job_schedule):
        error = refusal(write, account, "s1", stale)
        assert (error.status, error.code) == (412, "ConditionNotMet")
    assert account.job_schedules["s1"].state == JobScheduleState.ACTIVE
