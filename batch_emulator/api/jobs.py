"""Jobs, tasks, task counts, subtasks and job preparation status."""

from __future__ import annotations

import copy

from ..service import jobs
from ..service.errors import BatchServiceError, conflict, error_body, service_error
from ..service.state import Job, Task, get_job, get_task, iso, require_job_writable
from ..service.states import JobState, StopReason, TaskState
from ..service.validation import require_object, validate_disable, validate_job, validate_job_patch, validate_task
from . import wire
from .http import Request, Response, Server, check_conditions, element, entity, listing, route, written
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
MAX_TASKS_PER_COLLECTION = 100


@route("POST", "jobs")
def create_job(server: Server, req: Request) -> Response:
    body = validate_job(req.json())
    account = server.account
    with account.lock:
        job = jobs.add_job(account, body)
    account.wake()
    # Every recorded job add answers DataServiceId and Location {account}/jobs/job-1, whatever the job's id
    # ("job-1" is the service's internal name of a job's first run, as in the node path workitems/<job>/job-1):
    # Azure/azure-cli, src/azure-cli/azure/cli/command_modules/batch/tests/latest/recordings/
    # test_batch_jobs_and_tasks.yaml, and Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/
    # test_batch.pyTestBatchtest_batch_jobs[sync].json. A client following it gets 404, there as here.
    return written(201, req, "/jobs/job-1", job.etag, job.last_modified)


@route("GET", "jobs")
def list_jobs(server: Server, req: Request) -> Response:
    with server.account.lock:
        items = [wire.job_to_wire(j, req.base) for j in server.account.jobs.values()]
    return listing(req, items, "jobs", JOB_FILTER)


@route("GET", "jobs/{jobId}")
def get_job_route(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = get_job(server.account, req.params["jobId"])
        body = wire.job_to_wire(job, req.base)
    return element(req, body, "jobs/@Element", job.etag, job.last_modified)


def _writable(server: Server, req: Request) -> Job:
    """The job a write or action changes (account lock held), once its preconditions are met."""
    job = get_job(server.account, req.params["jobId"])
    check_conditions(req, job.etag, job.last_modified)
    return job


@route("PUT", "jobs/{jobId}")
def replace_job(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = _writable(server, req)
        body = validate_job_patch(req.json(), job, replace=True)
        require_job_writable(job)
        jobs.replace_job(job, body)
    server.account.wake()
    return written(200, req, f"/jobs/{job.id}", job.etag, job.last_modified)


@route("PATCH", "jobs/{jobId}")
def patch_job(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = _writable(server, req)
        body = validate_job_patch(req.json(), job)
        require_job_writable(job)
        for key, value in body.items():
            if key in ("onAllTasksComplete", "onTaskFailure"):
                value = str(value).lower()
            job.spec[key] = copy.deepcopy(value)
        job.touch()
    server.account.wake()
    return written(200, req, f"/jobs/{job.id}", job.etag, job.last_modified)


@route("DELETE", "jobs/{jobId}")
def delete_job(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = _writable(server, req)
        if job.state == JobState.DELETING:
            raise conflict("JobBeingDeleted")
        job.transition(JobState.DELETING)
    server.account.wake()
    return Response(202)


@route("POST", "jobs/{jobId}/terminate")
def terminate_job(server: Server, req: Request) -> Response:
    body = require_object(req.json())
    with server.account.lock:
        job = _writable(server, req)
        require_job_writable(job)
        jobs.begin_terminate(job, body.get("terminateReason") or "UserTerminate")
    server.account.wake()
    return written(202, req, f"/jobs/{job.id}/terminate", job.etag, job.last_modified)


@route("POST", "jobs/{jobId}/disable")
def disable_job(server: Server, req: Request) -> Response:
    option = validate_disable(req.json())
    with server.account.lock:
        job = _writable(server, req)
        require_job_writable(job)
        jobs.disable_job(job, option)
    server.account.wake()
    return written(202, req, f"/jobs/{job.id}/disable", job.etag, job.last_modified)


@route("POST", "jobs/{jobId}/enable")
def enable_job(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = _writable(server, req)
        require_job_writable(job)
        jobs.enable_job(job)
    server.account.wake()
    return written(202, req, f"/jobs/{job.id}/enable", job.etag, job.last_modified)


@route("GET", "jobs/{jobId}/taskcounts")
def task_counts(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = get_job(server.account, req.params["jobId"])
        return entity(wire.task_counts_to_wire(job), metadata="taskcountsresult/@Element", base=req.base)


@route("GET", "jobs/{jobId}/jobpreparationandreleasetaskstatus")
def prep_status(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = get_job(server.account, req.params["jobId"])
        if job.prep_task() is None:
            raise conflict("JobPreparationTaskNotSpecified")
        items = [wire.prep_status_to_wire(r, req.base) for r in job.prep_runs.values()]
    return listing(req, items, "jobpreparationandreleasetaskstatuslist", PREP_FILTER)


def _add_task(job, body):
    task = Task(id=body["id"], job_key=job.id.lower(), spec=copy.deepcopy(body))
    if task.id.lower() in job.tasks:
        raise conflict("TaskExists")
    job.tasks[task.id.lower()] = task
    return task


@route("POST", "jobs/{jobId}/tasks")
def create_task(server: Server, req: Request) -> Response:
    body = req.json()
    with server.account.lock:
        job = get_job(server.account, req.params["jobId"])
        require_job_writable(job, for_new_tasks=True)
        task = _add_task(job, validate_task(body, job))
    server.account.wake()
    return written(201, req, f"/jobs/{job.id}/tasks/{task.id}", task.etag, task.last_modified)


@route("POST", "jobs/{jobId}/addtaskcollection")
def add_task_collection(server: Server, req: Request) -> Response:
    body = require_object(req.json())
    values = body.get("value")
    if not isinstance(values, list):
        raise service_error(400, "MissingRequiredProperty", PropertyName="value")
    if len(values) > MAX_TASKS_PER_COLLECTION:
        raise service_error(400, "InvalidPropertyValue", PropertyName="value", PropertyValue=len(values),
                            Reason=f"A task collection can hold at most {MAX_TASKS_PER_COLLECTION} tasks.")
    results = []
    with server.account.lock:
        job = get_job(server.account, req.params["jobId"])
        require_job_writable(job, for_new_tasks=True)
        for item in values:
            task_id = item.get("id") if isinstance(item, dict) else None
            try:
                task = _add_task(job, validate_task(item, job))
                # "Success" capitalised, as the service writes it (Azure/azure-cli, src/azure-cli/azure/cli/
                # command_modules/batch/tests/latest/recordings/test_batch_task_create_cmd.yaml).
                results.append({"status": "Success", "taskId": task.id, "eTag": task.etag,
                                "lastModified": iso(task.last_modified),
                                "location": f"{req.base}/jobs/{job.id}/tasks/{task.id}"})
            except BatchServiceError as err:
                detail = error_body(err, req.base, "-")
                detail.pop("odata.metadata", None)
                # Only "Success" is recorded capitalised; this stays as the REST reference writes it, which is
                # also what the SDK's create_tasks compares with, case-sensitively.
                results.append({"status": "clienterror", "taskId": task_id, "error": detail})
    server.account.wake()
    return Response(200, {"odata.metadata": f"{req.base}/$metadata#taskaddresult", "value": results})


@route("GET", "jobs/{jobId}/tasks")
def list_tasks(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = get_job(server.account, req.params["jobId"])
        items = [wire.task_to_wire(t, job, req.base) for t in job.tasks.values()]
    return listing(req, items, "tasks", TASK_FILTER)


@route("GET", "jobs/{jobId}/tasks/{taskId}")
def get_task_route(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = get_job(server.account, req.params["jobId"])
        task = get_task(server.account, req.params["jobId"], req.params["taskId"])
        body = wire.task_to_wire(task, job, req.base)
    response = element(req, body, "tasks/@Element", task.etag, task.last_modified)
    response.headers["DataServiceId"] = f"{req.base}/jobs/{job.id}/tasks/{task.id}"
    return response


@route("DELETE", "jobs/{jobId}/tasks/{taskId}")
def delete_task(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = get_job(server.account, req.params["jobId"])
        task = get_task(server.account, req.params["jobId"], req.params["taskId"])
        del job.tasks[task.id.lower()]
        task.deleted = True
        server.runtime.end_task(job, task, StopReason.DELETE)   # its run stops, its files go
    server.account.wake()
    return Response(200)


@route("POST", "jobs/{jobId}/tasks/{taskId}/terminate")
def terminate_task(server: Server, req: Request) -> Response:
    account = server.account
    with account.lock:
        job = get_job(account, req.params["jobId"])
        task = get_task(account, req.params["jobId"], req.params["taskId"])
        if task.state == TaskState.COMPLETED:
            raise conflict("TaskCompleted")
        server.runtime.end_task(job, task, StopReason.TERMINATE)   # completes with TaskEnded, at once if it never ran
    account.wake()
    return Response(204, None, {"DataServiceId": f"{req.base}/jobs/{job.id}/tasks/{task.id}",
                                "ETag": task.etag, "Last-Modified": wire.rfc1123(task.last_modified)})


@route("GET", "jobs/{jobId}/tasks/{taskId}/subtasksinfo")
def list_subtasks(server: Server, req: Request) -> Response:
    with server.account.lock:
        task = get_task(server.account, req.params["jobId"], req.params["taskId"])
        items = [select_properties(copy.deepcopy(s), req.query.get("$select")) for s in task.subtasks]
    return Response(200, {"odata.metadata": f"{req.base}/$metadata#subtaskinformations", "value": items})
