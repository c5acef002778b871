"""The emulator answers job requests as the real service did in Microsoft's recorded tests (sources and
abbreviations: tests/e2e/recorded_client.py), and runs what it accepts: job manager tasks, auto pools, disable."""

import pytest

from tests.conftest import wait_for
from tests.e2e.recorded_client import (
    IMAGE,
    NEVER,
    add_job,
    scheduler_passes,
    uid,
    wait_task,
)


@pytest.fixture
def jobs_to_delete(raw):
    """Job ids a test adds to this list are deleted after it, pass or fail (so a sleeping task frees its slot)."""
    ids = []
    yield ids
    for job_id in ids:
        raw("DELETE", f"/jobs/{job_id}")


# ---------------------------------------------------------------- 3. PUT /jobs/{id} and preconditions

def test_job_replace_is_200_and_replaces_everything_updatable(raw):
    # CLI-jobs data entries 7-8: PUT /jobs/{id} {"poolInfo":...,"onAllTasksComplete":"terminatejob"} -> 200,
    # empty body, dataserviceid .../jobs/{id}, ETag, Last-Modified; GET: constraints back to the defaults,
    # metadata gone, onAllTasksComplete terminatejob.
    pool_id = uid("nopool")
    job_id = add_job(raw, pool_id=pool_id, constraints={"maxTaskRetryCount": 5, "maxWallClockTime": "PT1H"},
                     metadata=[{"name": "test", "value": "value"}])
    answer = raw("PUT", f"/jobs/{job_id}", {"poolInfo": {"poolId": pool_id}, "onAllTasksComplete": "terminatejob"})
    assert answer.status == 200, answer
    assert answer.raw == b""
    assert answer.headers["DataServiceId"] == f"{raw.base}/jobs/{job_id}"
    assert "ETag" in answer.headers and "Last-Modified" in answer.headers
    job = raw("GET", f"/jobs/{job_id}").json
    assert job["constraints"] == {"maxWallClockTime": NEVER, "maxTaskRetryCount": 0}
    assert "metadata" not in job or job["metadata"] == []
    assert job["onAllTasksComplete"] == "terminatejob"
    assert job["priority"] == 0
    assert job["state"] == "active"


def test_job_replace_with_stale_if_unmodified_since_is_412_condition_not_met(raw):
    # CLI-jobs data entry 6: If-Unmodified-Since one second before the job's Last-Modified -> 412,
    # code ConditionNotMet, "The condition specified using HTTP conditional header(s) is not met.", no DataServiceId.
    job_id = add_job(raw)
    answer = raw("PUT", f"/jobs/{job_id}", {"poolInfo": {"poolId": "p"}, "onAllTasksComplete": "terminatejob"},
                 headers={"If-Unmodified-Since": "Thu, 24 Oct 2024 01:15:18 GMT"})
    assert answer.status == 412, answer
    assert answer.json["code"] == "ConditionNotMet"
    assert answer.json["message"]["value"].startswith(
        "The condition specified using HTTP conditional header(s) is not met.")
    assert answer.json["odata.metadata"] == \
        f"{raw.base}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"
    assert "DataServiceId" not in answer.headers
    assert raw("GET", f"/jobs/{job_id}").json["onAllTasksComplete"] == "noaction"   # nothing changed


def test_job_replace_with_stale_if_match_is_412_and_current_etag_is_200(raw):
    # Not recorded with If-Match; REST reference (fact sheet 1): the same precondition check, 412 ConditionNotMet.
    job_id = add_job(raw)
    etag = raw("GET", f"/jobs/{job_id}").headers["ETag"]
    stale = raw("PUT", f"/jobs/{job_id}", {"poolInfo": {"poolId": "p"}}, headers={"If-Match": "0x8DCF3C953387E09"})
    assert stale.status == 412, stale
    assert stale.json["code"] == "ConditionNotMet"
    fresh = raw("PUT", f"/jobs/{job_id}", {"poolInfo": {"poolId": "p"}}, headers={"If-Match": etag})
    assert fresh.status == 200, fresh


# ---------------------------------------------------------------- 4. disable / enable

def test_job_disable_and_enable_states_and_headers(raw):
    # SDK-jobs-25 entries 6-9: disable {"disableTasks":"requeue"} -> 202, DataServiceId .../disable, ETag;
    # GET (no running task) -> state disabled, previousState active; enable (no body) -> 202, DataServiceId .../enable;
    # GET -> state active, previousState disabled.
    job_id = add_job(raw)
    answer = raw("POST", f"/jobs/{job_id}/disable", {"disableTasks": "requeue"})
    assert answer.status == 202, answer
    assert answer.headers["DataServiceId"] == f"{raw.base}/jobs/{job_id}/disable"
    assert "ETag" in answer.headers
    job = wait_for(lambda: (lambda j: j if j["state"] == "disabled" else None)(raw("GET", f"/jobs/{job_id}").json),
                   timeout=5, what="job disabled")
    assert job["previousState"] == "active"
    assert "previousStateTransitionTime" in job
    answer = raw("POST", f"/jobs/{job_id}/enable")
    assert answer.status == 202, answer
    assert answer.headers["DataServiceId"] == f"{raw.base}/jobs/{job_id}/enable"
    job = raw("GET", f"/jobs/{job_id}").json
    assert (job["state"], job["previousState"]) == ("active", "disabled")


def test_job_disable_requeue_returns_running_task_to_active(raw, node_pool, jobs_to_delete):
    # REST reference (not in the recordings, which had no running task): disableTasks=requeue stops running tasks
    # and returns them to active; the job is disabling until they are stopped, then disabled; no new task starts.
    job_id = add_job(raw, pool_id=node_pool)
    jobs_to_delete.append(job_id)
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "long", "commandLine": "/bin/sh -c 'sleep 60'"}).status == 201
    wait_task(raw, job_id, "long", "running")
    answer = raw("POST", f"/jobs/{job_id}/disable", {"disableTasks": "requeue"})
    assert answer.status == 202, answer
    assert raw("GET", f"/jobs/{job_id}").json["state"] in ("disabling", "disabled")
    task = wait_task(raw, job_id, "long", "active")
    assert task["executionInfo"]["requeueCount"] == 1
    wait_for(lambda: raw("GET", f"/jobs/{job_id}").json["state"] == "disabled", what="job disabled")
    scheduler_passes(raw, node_pool)
    assert raw("GET", f"/jobs/{job_id}/tasks/long").json["state"] == "active"   # not rescheduled while disabled
    assert raw("POST", f"/jobs/{job_id}/enable").status == 202
    wait_task(raw, job_id, "long", "running")                                     # runs again once enabled


def test_job_disable_terminate_completes_running_task(raw, node_pool, jobs_to_delete):
    # REST reference: disableTasks=terminate stops running tasks and completes them (failed, not retried).
    job_id = add_job(raw, pool_id=node_pool)
    jobs_to_delete.append(job_id)
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "long", "commandLine": "/bin/sh -c 'sleep 60'"}).status == 201
    wait_task(raw, job_id, "long", "running")
    assert raw("POST", f"/jobs/{job_id}/disable", {"disableTasks": "terminate"}).status == 202
    task = wait_task(raw, job_id, "long", "completed")
    assert task["executionInfo"]["result"] == "failure"
    wait_for(lambda: raw("GET", f"/jobs/{job_id}").json["state"] == "disabled", what="job disabled")


# ---------------------------------------------------------------- 5. ISO durations

def test_job_patch_with_years_and_months_is_normalised_to_days(raw):
    # CLI-jobs data entries 4-5: PATCH {"onAllTasksComplete":"terminatejob","constraints":{"maxWallClockTime":
    # "P3Y6M4DT12H30M5S"}} -> 200; GET constraints {"maxWallClockTime":"P1279DT12H30M5S","maxTaskRetryCount":0}
    # (a year is 365 days, a month 30; the PATCHed constraints object replaces the old one: 5 -> 0).
    job_id = add_job(raw, constraints={"maxTaskRetryCount": 5})
    answer = raw("PATCH", f"/jobs/{job_id}", {"onAllTasksComplete": "terminatejob",
                                              "constraints": {"maxWallClockTime": "P3Y6M4DT12H30M5S"}})
    assert answer.status == 200, answer
    assert answer.headers["DataServiceId"] == f"{raw.base}/jobs/{job_id}"
    job = raw("GET", f"/jobs/{job_id}").json
    assert job["constraints"] == {"maxWallClockTime": "P1279DT12H30M5S", "maxTaskRetryCount": 0}
    assert job["onAllTasksComplete"] == "terminatejob"


# ---------------------------------------------------------------- 6. auto pool and job manager

AUTO_POOL = {"autoPoolSpecification": {"poolLifetimeOption": "job",
                                       "pool": {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE}}}


def test_job_with_auto_pool_specification_is_accepted_with_defaults(raw):
    # SDK-jobs-25 entries 1, 5 / SDK-exc entry 2: POST /jobs with poolInfo.autoPoolSpecification -> 201; GET echoes
    # the spec with defaults keepAlive false, taskSlotsPerNode 1, nodeFillType Spread, jobDefaultOrder none,
    # resizeTimeout PT15M, targets 0, enableAutoScale false, enableInterNodeCommunication false;
    # executionInfo.poolId names the auto pool.
    job_id = uid("auto")
    answer = raw("POST", "/jobs", {"id": job_id, "poolInfo": AUTO_POOL,
                                   "jobPreparationTask": {"commandLine": "/bin/true"},
                                   "jobReleaseTask": {"commandLine": "/bin/true"}})
    assert answer.status == 201, answer
    job = raw("GET", f"/jobs/{job_id}").json
    spec = job["poolInfo"]["autoPoolSpecification"]
    assert spec["poolLifetimeOption"] == "job" and spec["keepAlive"] is False
    pool = spec["pool"]
    assert pool["taskSlotsPerNode"] == 1
    assert pool["taskSchedulingPolicy"] == {"nodeFillType": "Spread", "jobDefaultOrder": "none"}
    assert pool["resizeTimeout"] == "PT15M"
    assert (pool["targetDedicatedNodes"], pool["targetLowPriorityNodes"]) == (0, 0)
    assert pool["enableAutoScale"] is False and pool["enableInterNodeCommunication"] is False
    auto_pool_id = job["executionInfo"]["poolId"]
    assert auto_pool_id


def test_auto_pool_is_created_for_the_job_and_removed_with_it(raw):
    # REST reference (recordings show only executionInfo.poolId): poolLifetimeOption job -> the service creates a
    # pool for the job and deletes it when the job is deleted (or completes).
    job_id = uid("autolife")
    pool_spec = dict(AUTO_POOL["autoPoolSpecification"]["pool"], targetDedicatedNodes=1)
    assert raw("POST", "/jobs", {"id": job_id, "poolInfo": {"autoPoolSpecification": {
        "poolLifetimeOption": "job", "pool": pool_spec}}}).status == 201
    auto_pool_id = raw("GET", f"/jobs/{job_id}").json["executionInfo"]["poolId"]
    assert raw("GET", f"/pools/{auto_pool_id}").status == 200
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "t", "commandLine": "/bin/sh -c 'echo hi'"}).status == 201
    wait_task(raw, job_id, "t", "completed")
    assert raw("DELETE", f"/jobs/{job_id}").status == 202
    wait_for(lambda: raw("GET", f"/pools/{auto_pool_id}").status == 404, what="auto pool removed")


def test_job_manager_task_is_accepted_with_recorded_defaults(raw):
    # CLI-jobs data entries 2-3: jobManagerTask {"id":"JobManager","commandLine":...,"environmentSettings":[...]} with
    # job constraints.maxTaskRetryCount 5 -> 201; GET jobManagerTask constraints {maxWallClockTime never,
    # retentionTime P7D, maxTaskRetryCount 5}, requiredSlots 1, userIdentity autoUser pool/nonadmin,
    # runExclusive true, allowLowPriorityNode true, killJobOnCompletion true.
    job_id = uid("jm")
    manager = {"id": "JobManager", "commandLine": "/bin/sh -c 'echo $AZ_BATCH_TASK_ID'",
               "environmentSettings": [{"name": "CLI_TEST_VAR", "value": "CLI_TEST_VAR_VALUE"}]}
    answer = raw("POST", "/jobs", {"id": job_id, "constraints": {"maxTaskRetryCount": 5},
                                   "poolInfo": {"poolId": uid("nopool")}, "jobManagerTask": manager,
                                   "metadata": [{"name": "test", "value": "value"}]})
    assert answer.status == 201, answer
    jm = raw("GET", f"/jobs/{job_id}").json["jobManagerTask"]
    assert jm["constraints"] == {"maxWallClockTime": NEVER, "retentionTime": "P7D", "maxTaskRetryCount": 5}
    assert jm["requiredSlots"] == 1
    assert jm["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
    assert (jm["runExclusive"], jm["allowLowPriorityNode"], jm["killJobOnCompletion"]) == (True, True, True)


def test_job_manager_runs_first_and_kill_job_on_completion_completes_the_job(raw, node_pool):
    # REST reference: the job manager is a task of the job, started before any other task; when it completes and
    # killJobOnCompletion is true (the default) the job is terminated (terminateReason JMComplete).
    job_id = uid("jmrun")
    manager = {"id": "JobManager", "commandLine": "/bin/sh -c 'echo manager'"}
    assert raw("POST", "/jobs", {"id": job_id, "poolInfo": {"poolId": node_pool},
                                 "jobManagerTask": manager}).status == 201
    task = wait_task(raw, job_id, "JobManager", "completed")
    assert task["executionInfo"]["exitCode"] == 0
    job = wait_for(lambda: (lambda j: j if j["state"] == "completed" else None)(raw("GET", f"/jobs/{job_id}").json),
                   what="job completed by its job manager")
    assert job["executionInfo"]["terminateReason"] == "JMComplete"


# ---------------------------------------------------------------- 7. terminatejob on an empty job

def test_terminatejob_on_a_job_without_tasks_leaves_it_active(raw, node_pool):
    # SDK-jobs-25 entries 4-5, 7, 18-19: a job with onAllTasksComplete terminatejob and no task stays active
    # (20 s observed, until deleted; then deleting with previousState active).
    job_id = add_job(raw, onAllTasksComplete="terminatejob", onTaskFailure="performexitoptionsjobaction")
    scheduler_passes(raw, node_pool)
    job = raw("GET", f"/jobs/{job_id}").json
    assert job["state"] == "active"
    assert "previousState" not in job


def test_job_get_right_after_delete_shows_deleting_with_previous_state(raw):
    # SDK-jobs-25 entries 18-22: DELETE job -> 202; GET -> 200 state deleting, previousState active; later 404.
    job_id = add_job(raw)
    assert raw("DELETE", f"/jobs/{job_id}").status == 202
    job = raw("GET", f"/jobs/{job_id}")
    assert job.status == 200, job
    assert (job.json["state"], job.json["previousState"]) == ("deleting", "active")
    wait_for(lambda: raw("GET", f"/jobs/{job_id}").status == 404, what="job gone")


def test_job_get_fills_preparation_and_release_task_defaults(raw):
    # SDK-jobs-25 entry 5 (and every job GET in SDK-jobs-24/25): jobReleaseTask id jobrelease, maxWallClockTime PT15M,
    # retentionTime P7D, userIdentity autoUser pool/nonadmin; jobPreparationTask defaults as recorded.
    job_id = add_job(raw, jobPreparationTask={"commandLine": "/bin/true"}, jobReleaseTask={"commandLine": "/bin/true"})
    job = raw("GET", f"/jobs/{job_id}").json
    assert job["jobReleaseTask"] == {"id": "jobrelease", "commandLine": "/bin/true", "maxWallClockTime": "PT15M",
                                     "retentionTime": "P7D",
                                     "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}}
    assert job["jobPreparationTask"] == {"id": "jobpreparation", "commandLine": "/bin/true",
                                         "constraints": {"maxWallClockTime": NEVER, "retentionTime": "P7D",
                                                         "maxTaskRetryCount": 0},
                                         "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
                                         "waitForSuccess": True, "rerunOnNodeRebootAfterSuccess": True}


def test_previous_state_after_terminate_is_active(raw):
    # SDK-jobs-25 entries 11-16: terminate {"terminateReason":"UserTerminate"} -> 202, DataServiceId .../terminate;
    # GET: terminating or completed, previousState active (never terminating), terminateReason UserTerminate.
    job_id = add_job(raw)
    answer = raw("POST", f"/jobs/{job_id}/terminate", {"terminateReason": "UserTerminate"})
    assert answer.status == 202, answer
    assert answer.headers["DataServiceId"] == f"{raw.base}/jobs/{job_id}/terminate"
    job = raw("GET", f"/jobs/{job_id}").json
    assert job["state"] in ("terminating", "completed")
    assert job["previousState"] == "active"
    assert job["executionInfo"]["terminateReason"] == "UserTerminate"
    job = wait_for(lambda: (lambda j: j if j["state"] == "completed" else None)(raw("GET", f"/jobs/{job_id}").json),
                   what="job completed")
    assert job["previousState"] == "active"
    assert job["executionInfo"]["endTime"] == job["stateTransitionTime"]


