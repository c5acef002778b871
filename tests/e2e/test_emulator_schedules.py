"""Job schedules against `python -m batch_emulator` (default --time-scale 300: a PT1M recurrence is 0.2 s): the
answers Microsoft's recordings of the real service show, the jobs a schedule makes and runs, and the refusals.

Recordings (Azure/azure-sdk-assets; abbreviations used below):
  PY-schedules  python/sdk/batch/azure-batch/tests/recordings/test_batch.pyTestBatchtest_batch_job_schedules[sync].json
  NET-autopool  net/sdk/batch/Azure.Compute.Batch/tests/SessionRecords/BatchJobScheduleIntegrationTests/
                JobScheduleAutoPool.json
  NET-terminate the same folder, JobScheduleTerminate.json
  JAVA-state    java/sdk/batch/azure-compute-batch/src/test/resources/session-records/
                JobScheduleTests.canUpdateJobScheduleState.json
"""

from datetime import datetime, timedelta, timezone

import pytest
from azure.batch import models as m
from azure.core.exceptions import ResourceNotFoundError

from tests.conftest import wait_for
from tests.e2e.recorded_client import add_job, uid

pytestmark = pytest.mark.e2e

SCALE = 300.0     # the emulator's default --time-scale
# PY-schedules entry 2 (GET /jobschedules): the keys of a schedule and of its jobSpecification.
RECORDED_KEYS = {"id", "url", "eTag", "lastModified", "creationTime", "state", "stateTransitionTime", "schedule",
                 "jobSpecification", "executionInfo"}
RECORDED_SPECIFICATION = {"priority": 0, "maxParallelTasks": -1, "allowTaskPreemption": False,
                          "usesTaskDependencies": False, "onAllTasksComplete": "terminatejob",
                          "onTaskFailure": "noaction",
                          "constraints": {"maxWallClockTime": "P10675199DT2H48M5.4775807S", "maxTaskRetryCount": 2},
                          "poolInfo": {"poolId": "pool_id"}}


def moment(text):
    return datetime.fromisoformat(text)


def schedule_in(raw, schedule_id, state):
    """The schedule's JSON once it is in ``state`` (for wait_for), else None."""
    answer = raw("GET", f"/jobschedules/{schedule_id}")
    return answer.json if answer.status == 200 and answer.json["state"] == state else None


def gone(raw, path):
    answer = raw("GET", path)
    return answer if answer.status == 404 else None


def test_the_recorded_lifecycle_answers_as_the_service(raw):
    # PY-schedules, every entry in order: add, list, get, exists, list jobs, disable, enable, replace, update,
    # terminate, delete; then JAVA-state's second delete and NET-autopool's GET after the delete.
    schedule_id = uid("schedule")
    added = raw("POST", "/jobschedules", {
        "id": schedule_id, "schedule": {"startWindow": "PT01H00M00S", "recurrenceInterval": "P1D"},
        "jobSpecification": {"poolInfo": {"poolId": "pool_id"}, "constraints": {"maxTaskRetryCount": 2},
                             "onAllTasksComplete": "terminatejob"}})
    assert added.status == 201 and added.raw == b"", added
    url = f"{raw.base}/jobschedules/{schedule_id}"
    assert added.headers["DataServiceId"] == added.headers["Location"] == url
    listed = raw("GET", "/jobschedules", query={"$filter": f"id eq '{schedule_id}'"}).json
    assert listed["odata.metadata"] == f"{raw.base}/$metadata#jobschedules"
    [item] = listed["value"]
    assert set(item) == RECORDED_KEYS and item["url"] == url and item["state"] == "active"
    assert item["eTag"] == added.headers["ETag"]           # making job-1 did not change the schedule's ETag
    assert item["schedule"] == {"startWindow": "PT1H", "recurrenceInterval": "P1D"}
    assert item["jobSpecification"] == RECORDED_SPECIFICATION
    job_id = f"{schedule_id}:job-1"
    assert item["executionInfo"]["recentJob"] == {"url": f"{raw.base}/jobs/{job_id}", "id": job_id}
    # nextRunTime is one recurrence after job-1 was due (the creation): P1D on the scaled clock.
    waited = moment(item["executionInfo"]["nextRunTime"]) - moment(item["creationTime"])
    assert waited.total_seconds() == pytest.approx(86400 / SCALE, abs=1)

    got = raw("GET", f"/jobschedules/{schedule_id}")
    assert got.json["odata.metadata"] == f"{raw.base}/$metadata#jobschedules/@Element"
    assert got.headers["ETag"] == added.headers["ETag"] and got.json == {"odata.metadata": got.json["odata.metadata"],
                                                                         **item}
    exists = raw("HEAD", f"/jobschedules/{schedule_id}")
    assert (exists.status, exists.raw, exists.headers["ETag"]) == (200, b"", added.headers["ETag"])
    jobs = raw("GET", f"/jobschedules/{schedule_id}/jobs").json
    assert jobs["odata.metadata"] == f"{raw.base}/$metadata#jobs"
    [job] = jobs["value"]
    assert (job["id"], job["poolInfo"], job["constraints"]["maxTaskRetryCount"], job["onAllTasksComplete"]) == \
        (job_id, {"poolId": "pool_id"}, 2, "terminatejob")
    assert job["executionInfo"]["poolId"] == "pool_id"

    etags = {added.headers["ETag"]}
    for action in ("disable", "enable"):
        answer = raw("POST", f"/jobschedules/{schedule_id}/{action}")
        assert (answer.status, answer.raw, answer.headers["DataServiceId"]) == (204, b"", f"{url}/{action}")
        etags.add(answer.headers["ETag"])
    for method, body in (("PUT", {"schedule": {"recurrenceInterval": "PT10H00M00S"},
                                  "jobSpecification": {"poolInfo": {"poolId": "pool_id"}}}),
                         ("PATCH", {"schedule": {"recurrenceInterval": "PT05H00M00S"}})):
        answer = raw(method, f"/jobschedules/{schedule_id}", body)
        assert (answer.status, answer.raw, answer.headers["DataServiceId"]) == (200, b"", url), answer
        etags.add(answer.headers["ETag"])
    assert len(etags) == 5                                   # each write changed the ETag
    assert raw("GET", f"/jobschedules/{schedule_id}").json["schedule"] == {"recurrenceInterval": "PT5H"}
    terminated = raw("POST", f"/jobschedules/{schedule_id}/terminate")
    assert (terminated.status, terminated.headers["DataServiceId"]) == (202, f"{url}/terminate"), terminated
    deleted = raw("DELETE", f"/jobschedules/{schedule_id}")
    assert (deleted.status, deleted.raw) == (202, b"") and "ETag" not in deleted.headers
    assert "DataServiceId" not in deleted.headers

    again = raw("DELETE", f"/jobschedules/{schedule_id}")    # JAVA-state: the second delete
    assert (again.status, again.json["code"]) == (409, "JobScheduleBeingDeleted"), again
    assert again.json["message"]["value"].startswith(
        "The specified job schedule has been marked for deletion and is being reclaimed.")
    deleting = raw("GET", f"/jobschedules/{schedule_id}").json
    # Deleted while terminating (a passing state, never shown as previous: active) or once completed.
    assert deleting["state"] == "deleting" and deleting["previousState"] in ("active", "completed")
    missing = wait_for(lambda: gone(raw, f"/jobschedules/{schedule_id}"), what="the schedule gone")
    assert missing.json["code"] == "JobScheduleNotFound"
    assert missing.json["message"]["value"].startswith("The specified job schedule does not exist.")
    assert gone(raw, f"/jobs/{job_id}")                      # its job went with it


def test_a_schedule_waits_for_do_not_run_until_then_makes_its_job(raw):
    # NET-autopool entry 3: before doNotRunUntil, executionInfo has nextRunTime = doNotRunUntil and no recentJob.
    schedule_id = uid("later")
    until = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert raw("POST", "/jobschedules", {"id": schedule_id, "schedule": {"doNotRunUntil": until.isoformat()},
                                         "jobSpecification": {"poolInfo": {"poolId": uid("nopool")}}}).status == 201
    info = raw("GET", f"/jobschedules/{schedule_id}").json["executionInfo"]
    assert info == {"nextRunTime": until.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    info = wait_for(lambda: raw("GET", f"/jobschedules/{schedule_id}").json["executionInfo"].get("recentJob"),
                    what="job-1 made at doNotRunUntil")
    job = raw("GET", f"/jobs/{info['id']}").json
    assert moment(job["creationTime"]) >= until
    raw("DELETE", f"/jobschedules/{schedule_id}")


def test_recurring_jobs_run_one_at_a_time_as_any_job(sdk, node_pool):
    # REST reference: at most one active job; the next is made when the recurrence is due and the previous job
    # has completed. Each job runs its preparation and its job manager task, whose end ends the job (JMComplete).
    schedule_id = uid("every-minute")
    sdk.create_job_schedule(m.BatchJobScheduleCreateOptions(
        id=schedule_id, schedule=m.BatchJobScheduleConfiguration(recurrence_interval=timedelta(minutes=1)),
        job_specification=m.BatchJobSpecification(
            pool_info=m.BatchPoolInfo(pool_id=node_pool),
            job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/true"),
            job_manager_task=m.BatchJobManagerTask(id="manager", command_line="/bin/sh -c 'sleep 0.3'"))))
    jobs = wait_for(lambda: (lambda js: js if len(js) >= 3 and js[2].state == "completed" else None)(
        sorted(sdk.list_jobs_from_schedule(schedule_id), key=lambda j: j.creation_time)), timeout=30,
        what="three jobs made and completed")
    assert [j.id for j in jobs[:3]] == [f"{schedule_id}:job-{n}" for n in (1, 2, 3)]
    for earlier, later in zip(jobs, jobs[1:3], strict=False):
        assert earlier.execution_info.termination_reason == "JMComplete"
        assert later.creation_time >= earlier.execution_info.end_time       # one job at a time
    manager = sdk.get_task(jobs[0].id, "manager")
    assert (manager.state, manager.execution_info.exit_code) == ("completed", 0)
    [prep] = sdk.list_job_preparation_and_release_task_status(jobs[0].id)
    assert prep.job_preparation_task_execution_info.exit_code == 0
    schedule = sdk.get_job_schedule(schedule_id)
    assert schedule.execution_info.recent_job.id == max((j for j in sdk.list_jobs_from_schedule(schedule_id)),
                                                        key=lambda j: j.creation_time).id
    assert sdk.job_schedule_exists(schedule_id) is True
    sdk.begin_delete_job_schedule(schedule_id, polling_interval=1).result()
    with pytest.raises(ResourceNotFoundError):
        sdk.get_job_schedule(schedule_id)
    for job in jobs:
        with pytest.raises(ResourceNotFoundError):
            sdk.get_job(job.id)


def test_terminate_ends_the_running_job_then_the_schedule_completes(raw, sdk, node_pool):
    # NET-terminate: terminating (previousState active) while its job runs, then completed with executionInfo
    # {recentJob, endTime}; the job ends with terminateReason TerminateJobSchedule (REST reference).
    schedule_id = uid("terminated")
    assert raw("POST", "/jobschedules", {"id": schedule_id, "schedule": {}, "jobSpecification": {
        "poolInfo": {"poolId": node_pool},
        "jobManagerTask": {"id": "task1", "commandLine": "/bin/sh -c 'sleep 60'"}}}).status == 201
    job_id = f"{schedule_id}:job-1"
    wait_for(lambda: raw("GET", f"/jobs/{job_id}/tasks/task1").json.get("state") == "running", what="manager runs")
    assert raw("POST", f"/jobschedules/{schedule_id}/terminate", query={"force": "false"}).status == 202
    terminating = raw("GET", f"/jobschedules/{schedule_id}").json
    assert (terminating["state"], terminating["previousState"]) == ("terminating", "active")
    assert set(terminating["executionInfo"]) == {"recentJob"}
    refused = raw("POST", f"/jobschedules/{schedule_id}/disable")
    assert (refused.status, refused.json["code"]) == (409, "JobScheduleBeingTerminated")
    completed = wait_for(lambda: schedule_in(raw, schedule_id, "completed"), what="schedule completed")
    assert completed["previousState"] == "active" and completed["eTag"] == terminating["eTag"]
    assert set(completed["executionInfo"]) == {"recentJob", "endTime"}
    job = raw("GET", f"/jobs/{job_id}").json
    assert (job["state"], job["executionInfo"]["terminateReason"]) == ("completed", "TerminateJobSchedule")
    refused = raw("PATCH", f"/jobschedules/{schedule_id}", {"metadata": []})
    assert (refused.status, refused.json["code"]) == (409, "JobScheduleCompleted")
    sdk.begin_delete_job_schedule(schedule_id, polling_interval=1).result()


def test_terminate_without_a_job_completes_at_once(raw):
    # NET-autopool entries 6-7: terminate (force=true) of a schedule waiting for doNotRunUntil -> 202, then
    # completed, previousState active, executionInfo {endTime} only.
    schedule_id = uid("never-ran")
    assert raw("POST", "/jobschedules", {"id": schedule_id, "schedule": {"doNotRunUntil": "2099-08-18T00:00:00Z"},
                                         "jobSpecification": {"poolInfo": {"poolId": "p"}}}).status == 201
    assert raw("POST", f"/jobschedules/{schedule_id}/terminate", query={"force": "true"}).status == 202
    schedule = raw("GET", f"/jobschedules/{schedule_id}").json
    assert (schedule["state"], schedule["previousState"]) == ("completed", "active")
    assert schedule["schedule"] == {"doNotRunUntil": "2099-08-18T00:00:00Z"}
    assert set(schedule["executionInfo"]) == {"endTime"}
    raw("DELETE", f"/jobschedules/{schedule_id}")


@pytest.mark.parametrize("body, code", [
    ({"schedule": {"recurrenceInterval": "PT30S"}, "jobSpecification": {"poolInfo": {"poolId": "p"}}},
     "InvalidPropertyValue"),
    ({"schedule": {"startWindow": "PT59S"}, "jobSpecification": {"poolInfo": {"poolId": "p"}}},
     "InvalidPropertyValue"),
    ({"jobSpecification": {"poolInfo": {"poolId": "p"}}}, "MissingRequiredProperty"),
    ({"schedule": {}}, "MissingRequiredProperty"),
])
def test_a_bad_schedule_is_refused_with_400(raw, body, code):
    schedule_id = uid("bad")
    answer = raw("POST", "/jobschedules", {"id": schedule_id, **body})
    assert (answer.status, answer.json["code"]) == (400, code), answer
    assert raw("GET", f"/jobschedules/{schedule_id}").status == 404


def test_refusals_of_state_and_identity(raw):
    schedule_id = uid("refused")
    body = {"id": schedule_id, "schedule": {"doNotRunUntil": "2099-01-01T00:00:00Z"},
            "jobSpecification": {"poolInfo": {"poolId": "p"}}}
    assert raw("POST", "/jobschedules", body).status == 201
    for answer, status, code in (
            (raw("POST", "/jobschedules", dict(body, id=schedule_id.upper())), 409, "JobScheduleExists"),
            (raw("POST", "/jobschedules", dict(body, id=add_job(raw))), 409, "JobWithSameIdExists"),
            (raw("POST", f"/jobschedules/{schedule_id}/enable"), 409, "OperationInvalidForCurrentState"),
            (raw("POST", f"/jobschedules/{schedule_id}/disable", headers={"If-Match": "0x8D0000000000001"}), 412,
             "ConditionNotMet"),
            (raw("GET", f"/jobschedules/{uid('missing')}"), 404, "JobScheduleNotFound"),
            (raw("POST", f"/jobschedules/{uid('missing')}/terminate"), 404, "JobScheduleNotFound")):
        assert (answer.status, answer.json["code"]) == (status, code), answer
    missing = raw("HEAD", f"/jobschedules/{uid('missing')}")
    assert (missing.status, missing.raw) == (404, b"")
    assert raw("POST", f"/jobschedules/{schedule_id}/disable").status == 204
    again = raw("POST", f"/jobschedules/{schedule_id}/disable")
    assert (again.status, again.json["code"]) == (409, "JobScheduleDisabled")
    raw("DELETE", f"/jobschedules/{schedule_id}")


def test_list_filters_selects_and_pages(sdk, raw):
    prefix = uid("paged")
    for n in range(3):
        assert raw("POST", "/jobschedules", {"id": f"{prefix}-{n}", "schedule": {"doNotRunUntil": "2099-01-01T00:00Z"},
                                             "jobSpecification": {"poolInfo": {"poolId": "p"}}}).status == 201
    assert raw("POST", f"/jobschedules/{prefix}-1/disable").status == 204
    found = list(sdk.list_job_schedules(filter=f"startswith(id, '{prefix}') and state eq 'active'", max_results=1,
                                        select=["id", "state"]))
    assert sorted(s.id for s in found) == [f"{prefix}-0", f"{prefix}-2"] and {s.state for s in found} == {"active"}
    assert all(s.job_specification is None for s in found)    # $select: only id and state
    for n in range(3):
        raw("DELETE", f"/jobschedules/{prefix}-{n}")
