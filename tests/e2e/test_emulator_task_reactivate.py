"""Reactivate a task against `python -m batch_emulator`: a completed task that failed runs again, its retry count
back to 0 and its last run's exit code and failure gone; the refusals the REST reference (2025-06-01) names.

Recording (Azure/azure-sdk-assets): NET-reactivate net/sdk/batch/Azure.Compute.Batch/tests/SessionRecords/
BatchTaskIntegrationTests/TaskReactive.json: a task that never ran, terminated (204), then reactivated (204, no body,
ETag and Last-Modified).
"""

import pytest
from azure.core.exceptions import ResourceExistsError

from tests.conftest import wait_for
from tests.e2e.recorded_client import add_job, job_state, uid, wait_task

pytestmark = pytest.mark.e2e
LAST_RUN = ("startTime", "endTime", "exitCode", "result", "failureInfo")   # what a reactivation forgets


def test_the_recorded_reactivation_of_a_terminated_task(raw):
    # NET-reactivate: a job on a pool of no nodes, a task terminated before it ran, then reactivated.
    job_id = add_job(raw)
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "Task1", "commandLine": "/bin/true"}).status == 201
    assert raw("POST", f"/jobs/{job_id}/tasks/Task1/terminate").status == 204
    answer = raw("POST", f"/jobs/{job_id}/tasks/Task1/reactivate")
    assert answer.status == 204 and answer.raw == b""
    task = raw("GET", f"/jobs/{job_id}/tasks/Task1")
    assert answer.headers["ETag"] == task.headers["ETag"]
    assert task.json["state"] == "active" and task.json["previousState"] == "completed"
    assert task.json["executionInfo"] == {"retryCount": 0, "requeueCount": 0}


def test_a_reactivated_task_runs_again_with_its_retries_anew(raw, node_pool, tmp_path):
    log = tmp_path / "runs"
    job_id = add_job(raw, pool_id=node_pool)
    command = f"/bin/bash -c 'echo run >> {log}; exit 3'"
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "t1", "commandLine": command,
                                                  "constraints": {"maxTaskRetryCount": 1}}).status == 201
    failed = wait_task(raw, job_id, "t1", "completed")["executionInfo"]
    assert (failed["result"], failed["exitCode"], failed["retryCount"]) == ("failure", 3, 1)
    # A disabled job keeps the reactivated task in the queue, so its state can be read before it runs again.
    assert raw("POST", f"/jobs/{job_id}/disable", {"disableTasks": "requeue"}).status == 202
    wait_for(lambda: job_state(raw, job_id, "disabled"), what="the job disabled")
    assert raw("POST", f"/jobs/{job_id}/tasks/t1/reactivate").status == 204
    active = raw("GET", f"/jobs/{job_id}/tasks/t1").json
    assert active["state"] == "active" and active["executionInfo"]["retryCount"] == 0
    assert not set(LAST_RUN) & set(active["executionInfo"]), active["executionInfo"]
    assert raw("POST", f"/jobs/{job_id}/enable").status == 202
    again = wait_for(lambda: (t := raw("GET", f"/jobs/{job_id}/tasks/t1").json)["state"] == "completed"
                     and log.read_text().count("run") == 4 and t, what="the task failed again after two more runs")
    assert (again["executionInfo"]["retryCount"], again["executionInfo"]["exitCode"]) == (1, 3)


def test_reactivation_refuses_what_the_reference_says(raw, sdk, node_pool, tmp_path):
    job_id = add_job(raw, pool_id=node_pool)
    flag = tmp_path / "flag"
    waiting = f"/bin/bash -c 'while [ ! -e {flag} ]; do sleep 0.05; done'"
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "running", "commandLine": waiting}).status == 201
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "ok", "commandLine": "/bin/true"}).status == 201
    wait_task(raw, job_id, "running", "running")
    refused = raw("POST", f"/jobs/{job_id}/tasks/running/reactivate")
    assert (refused.status, refused.json["code"]) == (409, "TaskNotCompleted")
    wait_task(raw, job_id, "ok", "completed")
    with pytest.raises(ResourceExistsError) as caught:
        sdk.reactivate_task(job_id, "ok")
    assert caught.value.error.code == "TaskSucceeded"
    flag.touch()
    wait_task(raw, job_id, "running", "completed")
    missing = raw("POST", f"/jobs/{job_id}/tasks/{uid('task')}/reactivate")
    assert (missing.status, missing.json["code"]) == (404, "TaskNotFound")

    ended = add_job(raw)
    assert raw("POST", f"/jobs/{ended}/tasks", {"id": "t1", "commandLine": "/bin/true"}).status == 201
    assert raw("POST", f"/jobs/{ended}/tasks/t1/terminate").status == 204   # failed: ended by the user
    assert raw("POST", f"/jobs/{ended}/terminate").status == 202
    wait_for(lambda: job_state(raw, ended, "completed"), what="the job completed")
    refused = raw("POST", f"/jobs/{ended}/tasks/t1/reactivate")
    assert (refused.status, refused.json["code"]) == (409, "JobCompleted")
