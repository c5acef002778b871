"""The job schedule operations of the REST API (one function per request, run through changes.change), and the
recurrence that makes a schedule's jobs: ``step``, which the scheduler's tick calls under the account lock.

A schedule makes the job ``<scheduleId>:job-<n>`` from its jobSpecification with service/jobs.py's add_job, so
its tasks, job preparation, job manager and auto pool run as any job's. It has at most one job running: the next
one comes when the recurrence is due and the previous job has completed (or is being deleted), within the start
window of its slot; a slot whose window passes is lost (REST reference, BatchJobScheduleConfiguration).

The clock. The recurrence interval and the start window run on the autoscale clock, ``Account.time_scale``
times faster than the service's (a PT1M recurrence is 0.2 s at the default 300: service/autoscale.py), so that
tests and demos see recurring jobs without waiting minutes; doNotRunUntil, doNotRunAfter and nextRunTime are
real times, as time() in a formula is. The scaled durations are counted from real times: a recurring
schedule's next job is due one scaled interval after the previous one was due.

ETags. The schedule's ETag and lastModified change with what a client does (create, update, replace, disable,
enable, terminate), not with what the service does on its own (a new job, completed) nor with delete, as the
recordings show (Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/
test_batch.pyTestBatchtest_batch_job_schedules[sync].json; net/sdk/batch/Azure.Compute.Batch/tests/SessionRecords/
BatchJobScheduleIntegrationTests/JobScheduleTerminate.json and JobScheduleAutoPool.json).
"""

from __future__ import annotations

import copy
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from . import jobs
from .changes import Version, change
from .conditions import Conditions
from .errors import conflict, invalid_property, missing_property, not_found
from .state import Account, Job, JobSchedule, utcnow
from .states import JobScheduleState, JobState
from .validation import check_id, parse_duration, require_object, validate_job

MINIMUM_DURATION = timedelta(minutes=1)   # startWindow and recurrenceInterval (REST reference)
TIMES = ("doNotRunUntil", "doNotRunAfter")
DURATIONS = ("startWindow", "recurrenceInterval")
UPDATABLE = ("schedule", "jobSpecification", "metadata")
TEMPLATE_ID = "jobschedule-template"   # stands for the job id while a jobSpecification is checked as a job body
TERMINATE_REASON = "TerminateJobSchedule"   # the job's terminateReason when its schedule is terminated (REST)
FINISHED_JOB = (JobState.COMPLETED, JobState.DELETING)


# ---- checks on request bodies ----

def parse_time(value: Any, name: str) -> datetime:
    """doNotRunUntil / doNotRunAfter: an ISO-8601 date and time (UTC when it names no offset)."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise invalid_property(name, value, "The value is not a valid ISO-8601 date and time.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _check_schedule(raw: object) -> dict[str, Any]:
    config = copy.deepcopy(require_object(raw, "schedule"))
    for key in TIMES:
        if config.get(key) is not None:
            parse_time(config[key], f"schedule.{key}")
    for key in DURATIONS:
        if config.get(key) is not None and parse_duration(config[key], f"schedule.{key}") < MINIMUM_DURATION:
            # The REST reference: below 1 minute the service rejects the schedule with 400 (its code is not
            # documented: InvalidPropertyValue, as the emulator's other refused values).
            raise invalid_property(f"schedule.{key}", config[key], "The minimum value is 1 minute.")
    return config


def _check_job_specification(raw: object) -> dict[str, Any]:
    """A jobSpecification is checked as a job add body (it is one, less the id)."""
    spec = copy.deepcopy(require_object(raw, "jobSpecification"))
    spec.pop("id", None)
    auto = (spec.get("poolInfo") or {}).get("autoPoolSpecification") or {}
    if str(auto.get("poolLifetimeOption", "")).lower() == "jobschedule":
        raise invalid_property("jobSpecification.poolInfo.autoPoolSpecification.poolLifetimeOption",
                               auto["poolLifetimeOption"], "The emulator makes an auto pool per job: only "
                                                           "poolLifetimeOption job is supported.")
    checked = validate_job(dict(spec, id=TEMPLATE_ID))
    checked.pop("id")
    return checked


def _check_metadata(raw: object) -> list[Any]:
    if not isinstance(raw, list) or not all(isinstance(item, dict) and item.get("name") for item in raw):
        raise invalid_property("metadata", raw, "The value must be a list of name/value pairs.")
    return copy.deepcopy(raw)


def validate_update(raw: object, replace: bool) -> dict[str, Any]:
    """PATCH (``replace`` False: what the body has replaces the schedule's) or PUT (True: an omitted schedule is
    the default one, a single job at once; an omitted metadata is none; jobSpecification is required)."""
    body = require_object(raw)
    out: dict[str, Any] = {}
    if body.get("schedule") is not None:
        out["schedule"] = _check_schedule(body["schedule"])
    elif replace:
        out["schedule"] = {}
    if body.get("jobSpecification") is not None:
        out["jobSpecification"] = _check_job_specification(body["jobSpecification"])
    elif replace:
        raise missing_property("jobSpecification")
    if body.get("metadata") is not None:
        out["metadata"] = _check_metadata(body["metadata"])
    return out


def validate_create(raw: object) -> dict[str, Any]:
    body = require_object(raw)
    check_id(body.get("id"))
    if body.get("schedule") is None:
        raise missing_property("schedule")
    created = {"id": body["id"], **validate_update(body, replace=True)}
    if body.get("displayName") is not None:
        created["displayName"] = body["displayName"]
    return created


# ---- the operations (one per request) ----

def get_job_schedule(account: Account, schedule_id: str) -> JobSchedule:
    """The schedule (lock held), or 404 JobScheduleNotFound."""
    schedule = account.job_schedules.get(schedule_id.lower())
    if schedule is None:
        raise not_found("JobScheduleNotFound")
    return schedule


def jobs_of(account: Account, schedule: JobSchedule) -> list[Job]:
    """The jobs the schedule made that still exist (lock held), oldest first."""
    return [job for job in (account.jobs.get(i.lower()) for i in schedule.job_ids) if job is not None]


def version_of(schedule: JobSchedule) -> Version:
    return Version(schedule.id, schedule.etag, schedule.last_modified)


def create_job_schedule(account: Account, raw: object) -> Version:
    body = validate_create(raw)

    def create() -> Version:
        key = body["id"].lower()
        existing = account.job_schedules.get(key)
        if existing is not None:
            raise conflict("JobScheduleBeingDeleted" if existing.state == JobScheduleState.DELETING
                           else "JobScheduleExists")
        if key in account.jobs:
            raise conflict("JobWithSameIdExists")    # jobs and job schedules share one namespace
        schedule = JobSchedule(id=body["id"], spec=body)
        account.job_schedules[key] = schedule
        now = time.time()
        _plan(account, schedule, now)
        # A schedule due now has its first job before the create answers: the recorded list right after the
        # add already names job-1 as its recentJob.
        _advance(account, schedule, now)
        return version_of(schedule)
    return change(account, create)


def update_job_schedule(account: Account, schedule_id: str, conditions: Conditions, raw: object,
                        replace: bool = False) -> Version:
    """PATCH (the body's properties replace the schedule's) or PUT (``replace``: every updatable property takes
    the body's value or its default). A new jobSpecification applies to the jobs made from now on."""
    body = validate_update(raw, replace)

    def update() -> Version:
        schedule = _changeable(account, schedule_id, conditions)
        for key in UPDATABLE:
            if key in body:
                schedule.spec[key] = body[key]
            elif replace:
                schedule.spec.pop(key, None)
        schedule.touch()
        if "schedule" in body:
            now = time.time()
            _plan(account, schedule, now)
            _advance(account, schedule, now)
        return version_of(schedule)
    return change(account, update)


def disable_job_schedule(account: Account, schedule_id: str, conditions: Conditions) -> Version:
    """No job is made while disabled; the running one goes on."""
    def disable() -> Version:
        schedule = _changeable(account, schedule_id, conditions)
        if schedule.state == JobScheduleState.DISABLED:
            raise conflict("JobScheduleDisabled")   # [inferred] the code the .NET SDK lists for a disabled schedule
        schedule.transition(JobScheduleState.DISABLED)
        return version_of(schedule)
    return change(account, disable)


def enable_job_schedule(account: Account, schedule_id: str, conditions: Conditions) -> Version:
    def enable() -> Version:
        schedule = _changeable(account, schedule_id, conditions)
        if schedule.state != JobScheduleState.DISABLED:
            # No code is documented for this; the emulator answers it as it does for a job (service/jobs.py).
            raise conflict("OperationInvalidForCurrentState", "The job schedule is not disabled.")
        schedule.transition(JobScheduleState.ACTIVE)
        _advance(account, schedule, time.time())
        return version_of(schedule)
    return change(account, enable)


def terminate_job_schedule(account: Account, schedule_id: str, conditions: Conditions) -> Version:
    """Terminating until its running job has completed (that job ends with terminateReason TerminateJobSchedule),
    then completed; at once without one (both recorded). ``force`` changes nothing here."""
    def terminate() -> Version:
        schedule = _changeable(account, schedule_id, conditions)
        schedule.transition(JobScheduleState.TERMINATING)
        running = running_job(account, schedule)
        if running is not None and running.state != JobState.TERMINATING:
            jobs.begin_terminate(running, TERMINATE_REASON)
        _advance(account, schedule, time.time())
        return version_of(schedule)
    return change(account, terminate)


def delete_job_schedule(account: Account, schedule_id: str, conditions: Conditions) -> None:
    """The schedule shows deleting while its jobs are deleted (as a job delete deletes them), then it is gone."""
    def delete() -> None:
        schedule = get_job_schedule(account, schedule_id)
        conditions.check(schedule.etag, schedule.last_modified)
        if schedule.state == JobScheduleState.DELETING:
            raise conflict("JobScheduleBeingDeleted")   # recorded for a second delete
        _settle(schedule, JobScheduleState.DELETING)
        for job in jobs_of(account, schedule):
            if job.state != JobState.DELETING:
                job.transition(JobState.DELETING)    # what delete_job does; the scheduler stops and removes it
    change(account, delete)


def _changeable(account: Account, schedule_id: str, conditions: Conditions) -> JobSchedule:
    """The schedule a write or action changes (lock held), once its preconditions are met and its state
    allows changes."""
    schedule = get_job_schedule(account, schedule_id)
    conditions.check(schedule.etag, schedule.last_modified)
    if schedule.state == JobScheduleState.DELETING:
        raise conflict("JobScheduleBeingDeleted")
    if schedule.state == JobScheduleState.TERMINATING:
        raise conflict("JobScheduleBeingTerminated")
    if schedule.state == JobScheduleState.COMPLETED:
        raise conflict("JobScheduleCompleted")
    return schedule


# ---- the recurrence (the caller holds the account lock; ``now`` is time.time()) ----

def step(account: Account, now: float) -> None:
    """Scheduler tick: every schedule makes the job that is due, ends, or (deleted) goes once its jobs are gone."""
    for key, schedule in list(account.job_schedules.items()):
        if schedule.state == JobScheduleState.DELETING:
            shown = (utcnow() - schedule.state_time).total_seconds()
            if not jobs_of(account, schedule) and shown >= account.deleting_seconds:
                del account.job_schedules[key]
        else:
            _advance(account, schedule, now)


def running_job(account: Account, schedule: JobSchedule) -> Job | None:
    """The schedule's latest job while it has not completed (nor is being deleted): at most one runs."""
    job = account.jobs.get(schedule.job_ids[-1].lower()) if schedule.job_ids else None
    return job if job is not None and job.state not in FINISHED_JOB else None


def _advance(account: Account, schedule: JobSchedule, now: float) -> None:
    if schedule.state == JobScheduleState.TERMINATING:
        if running_job(account, schedule) is None:
            _settle(schedule, JobScheduleState.COMPLETED)
    elif schedule.state == JobScheduleState.ACTIVE:
        _recur(account, schedule, now)


def _recur(account: Account, schedule: JobSchedule, now: float) -> None:
    """An active schedule: make the job that is due, or complete when it will make no more and none runs."""
    config = schedule.spec.get("schedule") or {}
    after = _time(config, "doNotRunAfter")
    if after is not None and now > after:
        schedule.next_run = None                 # no job is made after doNotRunAfter
    _drop_missed_slot(account, schedule, config, now)
    running = running_job(account, schedule)
    if running is None and schedule.next_run is not None and schedule.next_run <= now:
        _make_job(account, schedule, config, schedule.next_run)
    elif running is None and schedule.next_run is None:
        _settle(schedule, JobScheduleState.COMPLETED)


def _drop_missed_slot(account: Account, schedule: JobSchedule, config: dict[str, Any], now: float) -> None:
    """A slot whose start window passed without its job is lost: the next recurrence is due instead (none for a
    schedule that does not recur). A window longer than the interval ends at the next slot."""
    interval = _seconds(account, config, "recurrenceInterval")
    window = _seconds(account, config, "startWindow")
    if interval is not None:
        window = interval if window is None else min(window, interval)
    if schedule.next_run is None or window is None:
        return
    late = now - (schedule.next_run + window)
    if late <= 0:
        return
    # Whole intervals at once: a scheduler that stalled for hours must not loop once per missed slot.
    _set_next(schedule, config, None if interval is None else schedule.next_run + (late // interval + 1) * interval)


def _make_job(account: Account, schedule: JobSchedule, config: dict[str, Any], due: float) -> None:
    body = copy.deepcopy(schedule.spec["jobSpecification"])
    body["id"] = f"{schedule.id}:job-{len(schedule.job_ids) + 1}"   # as the service names them
    schedule.job_ids.append(jobs.add_job(account, body).id)
    schedule.last_due = due
    interval = _seconds(account, config, "recurrenceInterval")
    _set_next(schedule, config, None if interval is None else due + interval)


def _plan(account: Account, schedule: JobSchedule, now: float) -> None:
    """When the next job is due, from the schedule's (new) configuration: its first at doNotRunUntil (or now),
    later ones one interval after the previous was due; none for a schedule that made its one job."""
    config = schedule.spec.get("schedule") or {}
    until = _time(config, "doNotRunUntil")
    interval = _seconds(account, config, "recurrenceInterval")
    if schedule.last_due is None:
        planned: float | None = now if until is None else until
    elif interval is not None:
        planned = max(schedule.last_due + interval, until or 0.0)
    else:
        planned = None
    _set_next(schedule, config, planned)


def _set_next(schedule: JobSchedule, config: dict[str, Any], planned: float | None) -> None:
    after = _time(config, "doNotRunAfter")
    schedule.next_run = None if planned is None or (after is not None and planned > after) else planned


def _settle(schedule: JobSchedule, state: JobScheduleState) -> None:
    """A state the service reaches on its own (completed) or a delete: the ETag and lastModified stay (recorded)."""
    etag, modified = schedule.etag, schedule.last_modified
    schedule.transition(state)
    schedule.etag, schedule.last_modified = etag, modified
    if state == JobScheduleState.COMPLETED:
        schedule.end_time = schedule.state_time


def _time(config: dict[str, Any], key: str) -> float | None:
    value = config.get(key)
    return None if value is None else parse_time(value, f"schedule.{key}").timestamp()


def _seconds(account: Account, config: dict[str, Any], key: str) -> float | None:
    """A duration of the schedule in wall seconds on the scaled clock."""
    value = config.get(key)
    return None if value is None else parse_duration(value, f"schedule.{key}").total_seconds() / account.time_scale
