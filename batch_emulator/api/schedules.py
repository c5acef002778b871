"""Job schedules: create, get, exists, list, update (PATCH), replace (PUT), disable, enable, terminate, delete,
and the jobs of one schedule. Answers as recorded in Microsoft's tests (service/schedules.py names them)."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from ..service import schedules
from ..service.changes import Version, read
from ..service.state import Job, JobSchedule, iso
from ..service.states import JobScheduleState
from . import wire
from .http import Request, Response, Server, conditions, element, listing, route, written
from .jobs import JOB_FILTER

SCHEDULE_FILTER = ("id", "displayName", "state", "stateTransitionTime", "previousState", "creationTime",
                   "lastModified", "schedule/doNotRunUntil", "schedule/doNotRunAfter", "executionInfo/nextRunTime",
                   "executionInfo/endTime", "executionInfo/recentJob/id", "jobSpecification/poolInfo/poolId")
# What a job GET has that its specification does not.
JOB_ONLY = ("id", "url", "eTag", "lastModified", "creationTime", "state", "stateTransitionTime", "previousState",
            "previousStateTransitionTime", "executionInfo")


# ---- rendering ----

def _shown_time(value: str) -> str:
    """doNotRunUntil / doNotRunAfter as the service echoes them: UTC, no trailing zeros in the fraction
    (2026-08-18T00:00:00.0000000Z reads back 2026-08-18T00:00:00Z: the recordings in service/schedules.py)."""
    moment = schedules.parse_time(value, "schedule").astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"


def _schedule_config(config: dict[str, Any]) -> dict[str, Any]:
    shown = copy.deepcopy(config)
    for key in schedules.TIMES:
        if shown.get(key) is not None:
            shown[key] = _shown_time(shown[key])
    for key in schedules.DURATIONS:
        if shown.get(key) is not None:
            shown[key] = wire.norm_duration(shown[key])   # PT01H00M00S reads back PT1H (recorded)
    return {key: value for key, value in shown.items() if value is not None}


def _job_specification(spec: dict[str, Any], base: str) -> dict[str, Any]:
    """The specification with the defaults a GET fills in: rendered as the job made from it would be (one
    renderer for both keeps their defaults alike, as the recordings show them), less what only a job has."""
    shown = wire.job_to_wire(Job(id="", spec=spec), base)
    return {key: value for key, value in shown.items() if key not in JOB_ONLY}


def _execution_info(schedule: JobSchedule, base: str) -> dict[str, Any]:
    """nextRunTime while a job may still be made (not once terminating or completed: recorded), the latest job,
    endTime once completed."""
    info: dict[str, Any] = {}
    if schedule.next_run is not None and schedule.state not in (JobScheduleState.TERMINATING,
                                                                JobScheduleState.COMPLETED):
        info["nextRunTime"] = iso(datetime.fromtimestamp(schedule.next_run, timezone.utc))
    if schedule.job_ids:
        info["recentJob"] = {"url": f"{base}/jobs/{schedule.job_ids[-1]}", "id": schedule.job_ids[-1]}
    if schedule.state == JobScheduleState.COMPLETED and schedule.end_time is not None:
        info["endTime"] = iso(schedule.end_time)
    return info


def schedule_to_wire(schedule: JobSchedule, base: str) -> dict[str, Any]:
    spec = schedule.spec
    out: dict[str, Any] = {"id": schedule.id}
    if spec.get("displayName") is not None:
        out["displayName"] = spec["displayName"]
    out.update({"url": f"{base}/jobschedules/{schedule.id}", "eTag": schedule.etag,
                "lastModified": iso(schedule.last_modified), "creationTime": iso(schedule.creation_time),
                "state": schedule.state, "stateTransitionTime": iso(schedule.state_time)})
    if schedule.previous_state is not None:
        out["previousState"] = schedule.previous_state
        out["previousStateTransitionTime"] = iso(schedule.previous_state_time)
    config = _schedule_config(spec.get("schedule") or {})
    if config:    # an empty schedule is not shown (recorded)
        out["schedule"] = config
    out["jobSpecification"] = _job_specification(spec["jobSpecification"], base)
    out["executionInfo"] = _execution_info(schedule, base)
    if spec.get("metadata"):
        out["metadata"] = copy.deepcopy(spec["metadata"])
    return out


# ---- routes ----

def _written(req: Request, schedule: Version, status: int, action: str = "") -> Response:
    """A write's answer: DataServiceId names the schedule, or the action (.../disable), as recorded."""
    return written(status, req, f"/jobschedules/{schedule.id}{action}", schedule.etag, schedule.last_modified)


@route("POST", "jobschedules")
def create_job_schedule(server: Server, req: Request) -> Response:
    return _written(req, schedules.create_job_schedule(server.account, req.json()), 201)


@route("GET", "jobschedules")
def list_job_schedules(server: Server, req: Request) -> Response:
    account = server.account
    items = read(account, lambda: [schedule_to_wire(s, req.base) for s in account.job_schedules.values()])
    return listing(req, items, "jobschedules", SCHEDULE_FILTER)


@route("GET", "jobschedules/{scheduleId}")
def get_job_schedule(server: Server, req: Request) -> Response:
    def render() -> tuple[Version, dict[str, Any]]:
        schedule = schedules.get_job_schedule(server.account, req.params["scheduleId"])
        return schedules.version_of(schedule), schedule_to_wire(schedule, req.base)
    schedule, body = read(server.account, render)
    return element(req, body, "jobschedules/@Element", schedule.etag, schedule.last_modified)


@route("HEAD", "jobschedules/{scheduleId}")
def job_schedule_exists(server: Server, req: Request) -> Response:
    schedule = read(server.account, lambda: schedules.version_of(
        schedules.get_job_schedule(server.account, req.params["scheduleId"])))
    return Response(200, None, {"ETag": schedule.etag, "Last-Modified": wire.rfc1123(schedule.last_modified)})


@route("PATCH", "jobschedules/{scheduleId}")
def update_job_schedule(server: Server, req: Request) -> Response:
    schedule = schedules.update_job_schedule(server.account, req.params["scheduleId"], conditions(req), req.json())
    return _written(req, schedule, 200)


@route("PUT", "jobschedules/{scheduleId}")
def replace_job_schedule(server: Server, req: Request) -> Response:
    schedule = schedules.update_job_schedule(server.account, req.params["scheduleId"], conditions(req), req.json(),
                                             replace=True)
    return _written(req, schedule, 200)


@route("DELETE", "jobschedules/{scheduleId}")
def delete_job_schedule(server: Server, req: Request) -> Response:
    schedules.delete_job_schedule(server.account, req.params["scheduleId"], conditions(req))
    return Response(202)   # no ETag, no DataServiceId (recorded)


@route("POST", "jobschedules/{scheduleId}/disable")
def disable_job_schedule(server: Server, req: Request) -> Response:
    schedule = schedules.disable_job_schedule(server.account, req.params["scheduleId"], conditions(req))
    return _written(req, schedule, 204, "/disable")


@route("POST", "jobschedules/{scheduleId}/enable")
def enable_job_schedule(server: Server, req: Request) -> Response:
    schedule = schedules.enable_job_schedule(server.account, req.params["scheduleId"], conditions(req))
    return _written(req, schedule, 204, "/enable")


@route("POST", "jobschedules/{scheduleId}/terminate")
def terminate_job_schedule(server: Server, req: Request) -> Response:
    schedule = schedules.terminate_job_schedule(server.account, req.params["scheduleId"], conditions(req))
    return _written(req, schedule, 202, "/terminate")


@route("GET", "jobschedules/{scheduleId}/jobs")
def list_jobs_from_schedule(server: Server, req: Request) -> Response:
    def render() -> list[dict[str, Any]]:
        schedule = schedules.get_job_schedule(server.account, req.params["scheduleId"])
        return [wire.job_to_wire(job, req.base) for job in schedules.jobs_of(server.account, schedule)]
    return listing(req, read(server.account, render), "jobs", JOB_FILTER)
