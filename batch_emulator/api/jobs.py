"""Jobs, tasks, task counts, subtasks and job preparation status."""

from __future__ import annotations

import copy
from typing import Any

from ..service import jobs, tasks
from ..service.changes import Version, read, version
from ..service.errors import error_body
from ..service.state import get_job, get_task, iso
from ..service.tasks import Refused
from . import wire
from .http import Request, Response, Server, by_id, conditions, element, entity, listing, route, written
from .odata import select_properties

JOB_FILTER = ("id", "displayName", "state", "stateTransitionTime", "previousState", "creationTime", "lastModified",
              "priority", "poolInfo/poolId", "executionInfo/poolId", "executionInfo/startTime",
              "executionInfo/endTime", "executionInfo/terminateReason", "onAllTasksComplete", "onTaskFailure")
TASK_FILTER = ("id", "displayName", "state", "stateTransitionTime", "previousState", "creationTime", "lastModified",
               "requiredSlots", "executionInfo/exitCode", "executionInfo/result", "executionInfo/startTime",
               "executionInfo/endTime", "executionInfo/retryCount", "executionInfo/requeueCount",
               "executionInfo/failureInfo/code", "nodeInfo/nodeId", "nodeInfo/poolId")
PREP_FILTER = ("nodeId", "poolId", "jobPreparationTaskExecutionInfo/state", "jobPreparationTaskExecutionInfo/result",
               "jobPreparationTaskExecutionInfo/exitCode")


@route("POST", "jobs")
def create_job(server: Server, req: Request) -> Response:
    job = jobs.create_job(server.account, req.json())
    # Every recorded job add answers DataServiceId and Location {account}/jobs/job-1, whatever the job's id
    # ("job-1" is the service's internal name of a job's first run, as in the node path workitems/<job>/job-1):
    # Azure/azure-cli, src/azure-cli/azure/cli/command_modules/batch/tests/latest/recordings/
    # test_batch_jobs_and_tasks.yaml, and Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/
    # test_batch.pyTestBatchtest_batch_jobs[sync].json. A client following it gets 404, there as here.
    return written(201, req, "/jobs/job-1", job.etag, job.last_modified)


@route("GET", "jobs")
def list_jobs(server: Server, req: Request) -> Response:
    account = server.account
    # Sorted by id, case aside: the recorded job lists (java jobtests.canCRUDJob: canCRUDsync before
    # canCRUDWithPoolNodeCommsync before CanUpdateStatesync).
    items = read(account, lambda: [wire.job_to_wire(j, req.base) for j in by_id(account.jobs.values())])
    return listing(req, items, "jobs", JOB_FILTER)


@route("GET", "jobs/{jobId}")
def get_job_route(server: Server, req: Request) -> Response:
    def render() -> tuple[Version, dict[str, Any]]:
        job = get_job(server.account, req.params["jobId"])
        return version(job), wire.job_to_wire(job, req.base)
    job, body = read(server.account, render)
    return element(req, body, "jobs/@Element", job.etag, job.last_modified)


def _job_written(req: Request, job: Version, status: int, action: str = "") -> Response:
    return written(status, req, f"/jobs/{job.id}{action}", job.etag, job.last_modified)


@route("PUT", "jobs/{jobId}")
def replace_job(server: Server, req: Request) -> Response:
    return _job_written(req, jobs.replace_job(server.account, req.params["jobId"], conditions(req), req.json()), 200)


@route("PATCH", "jobs/{jobId}")
def patch_job(server: Server, req: Request) -> Response:
    return _job_written(req, jobs.patch_job(server.account, req.params["jobId"], conditions(req), req.json()), 200)


@route("DELETE", "jobs/{jobId}")
def delete_job(server: Server, req: Request) -> Response:
    jobs.delete_job(server.account, req.params["jobId"], conditions(req))
    return Response(202)


@route("POST", "jobs/{jobId}/terminate")
def terminate_job(server: Server, req: Request) -> Response:
    job = jobs.terminate_job(server.account, req.params["jobId"], conditions(req), req.json())
    return _job_written(req, job, 202, "/terminate")


@route("POST", "jobs/{jobId}/disable")
def disable_job(server: Server, req: Request) -> Response:
    job = jobs.disable_job(server.account, req.params["jobId"], conditions(req), req.json())
    return _job_written(req, job, 202, "/disable")


@route("POST", "jobs/{jobId}/enable")
def enable_job(server: Server, req: Request) -> Response:
    return _job_written(req, jobs.enable_job(server.account, req.params["jobId"], conditions(req)), 202, "/enable")


@route("GET", "jobs/{jobId}/taskcounts")
def task_counts(server: Server, req: Request) -> Response:
    counts = read(server.account, lambda: wire.task_counts_to_wire(get_job(server.account, req.params["jobId"])))
    return entity(counts, metadata="taskcountsresult/@Element", base=req.base)


@route("GET", "jobs/{jobId}/jobpreparationandreleasetaskstatus")
def prep_status(server: Server, req: Request) -> Response:
    def render() -> list[dict[str, Any]]:
        runs = jobs.prep_runs(get_job(server.account, req.params["jobId"]))
        return [wire.prep_status_to_wire(r, req.base) for r in runs]
    return listing(req, read(server.account, render), "jobpreparationandreleasetaskstatuslist", PREP_FILTER)


@route("POST", "jobs/{jobId}/tasks")
def create_task(server: Server, req: Request) -> Response:
    job_id, task = tasks.create_task(server.account, req.params["jobId"], req.json())
    return written(201, req, f"/jobs/{job_id}/tasks/{task.id}", task.etag, task.last_modified)


def _task_added(req: Request, job_id: str, result: Version | Refused) -> dict[str, Any]:
    if isinstance(result, Refused):
        detail = error_body(result.error, req.base, "-")
        detail.pop("odata.metadata", None)
        # Only "Success" is recorded capitalised; this stays as the REST reference writes it, which is
        # also what the SDK's create_tasks compares with, case-sensitively.
        return {"status": "clienterror", "taskId": result.task_id, "error": detail}
    # "Success" capitalised, as the service writes it (Azure/azure-cli, src/azure-cli/azure/cli/
    # command_modules/batch/tests/latest/recordings/test_batch_task_create_cmd.yaml).
    return {"status": "Success", "taskId": result.id, "eTag": result.etag, "lastModified": iso(result.last_modified),
            "location": f"{req.base}/jobs/{job_id}/tasks/{result.id}"}


@route("POST", "jobs/{jobId}/addtaskcollection")
def add_task_collection(server: Server, req: Request) -> Response:
    job_id, results = tasks.add_task_collection(server.account, req.params["jobId"], req.json())
    return Response(200, {"odata.metadata": f"{req.base}/$metadata#taskaddresult",
                          "value": [_task_added(req, job_id, r) for r in results]})


@route("GET", "jobs/{jobId}/tasks")
def list_tasks(server: Server, req: Request) -> Response:
    def render() -> list[dict[str, Any]]:
        job = get_job(server.account, req.params["jobId"])
        return [wire.task_to_wire(t, job, req.base) for t in job.tasks.values()]
    return listing(req, read(server.account, render), "tasks", TASK_FILTER)


@route("GET", "jobs/{jobId}/tasks/{taskId}")
def get_task_route(server: Server, req: Request) -> Response:
    def render() -> tuple[str, Version, dict[str, Any]]:
        job = get_job(server.account, req.params["jobId"])
        task = get_task(server.account, req.params["jobId"], req.params["taskId"])
        return job.id, version(task), wire.task_to_wire(task, job, req.base)
    job_id, task, body = read(server.account, render)
    response = element(req, body, "tasks/@Element", task.etag, task.last_modified)
    response.headers["DataServiceId"] = f"{req.base}/jobs/{job_id}/tasks/{task.id}"
    return response


@route("DELETE", "jobs/{jobId}/tasks/{taskId}")
def delete_task(server: Server, req: Request) -> Response:
    tasks.delete_task(server.account, server.runtime, req.params["jobId"], req.params["taskId"])
    return Response(200)


@route("POST", "jobs/{jobId}/tasks/{taskId}/terminate")
def terminate_task(server: Server, req: Request) -> Response:
    job_id, task = tasks.terminate_task(server.account, server.runtime, req.params["jobId"], req.params["taskId"])
    return Response(204, None, {"DataServiceId": f"{req.base}/jobs/{job_id}/tasks/{task.id}",
                                "ETag": task.etag, "Last-Modified": wire.rfc1123(task.last_modified)})


@route("POST", "jobs/{jobId}/tasks/{taskId}/reactivate")
def reactivate_task(server: Server, req: Request) -> Response:
    job_id, task = tasks.reactivate_task(server.account, req.params["jobId"], req.params["taskId"])
    return Response(204, None, {"DataServiceId": f"{req.base}/jobs/{job_id}/tasks/{task.id}",
                                "ETag": task.etag, "Last-Modified": wire.rfc1123(task.last_modified)})


@route("GET", "jobs/{jobId}/tasks/{taskId}/subtasksinfo")
def list_subtasks(server: Server, req: Request) -> Response:
    def render() -> list[dict[str, Any]]:
        task = get_task(server.account, req.params["jobId"], req.params["taskId"])
        return [select_properties(copy.deepcopy(s), req.query.get("$select")) for s in task.subtasks]
    items = read(server.account, render)
    return Response(200, {"odata.metadata": f"{req.base}/$metadata#subtaskinformations", "value": items})
