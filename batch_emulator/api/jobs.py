"""Jobs, tasks, task counts, subtasks and job preparation status."""

from __future__ import annotations

import copy

from ..service.errors import BatchServiceError, conflict, error_body, service_error
from ..service.state import Job, Task, get_job, get_task, iso, require_job_writable
from ..service.states import JobState, StopReason, TaskState
from ..service.validation import require_object, validate_job, validate_job_patch, validate_task
from . import wire
from .http import Request, Response, Server, element, entity, listing, route, written
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
        existing = account.jobs.get(body["id"].lower())
        if existing is not None:
            raise conflict("JobBeingDeleted" if existing.state == JobState.DELETING else "JobExists")
        job = Job(id=body["id"], spec=copy.deepcopy(body))
        account.jobs[job.id.lower()] = job
    account.wake()
    return written(201, req, f"/jobs/{job.id}", job.etag, job.last_modified)


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


@route("PATCH", "jobs/{jobId}")
def patch_job(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = get_job(server.account, req.params["jobId"])
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
        job = get_job(server.account, req.params["jobId"])
        if job.state == JobState.DELETING:
            raise conflict("JobBeingDeleted")
        job.transition(JobState.DELETING)
    server.account.wake()
    return Response(202)


@route("POST", "jobs/{jobId}/terminate")
def terminate_job(server: Server, req: Request) -> Response:
    body = require_object(req.json())
    with server.account.lock:
        job = get_job(server.account, req.params["jobId"])
        require_job_writable(job)
        job.terminate_reason = body.get("terminateReason") or "UserTerminate"
        job.transition(JobState.TERMINATING)
    server.account.wake()
    return written(202, req, f"/jobs/{job.id}", job.etag, job.last_modified)


@route("GET", "jobs/{jobId}/taskcounts")
def task_counts(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = get_job(server.account, req.params["jobId"])
        return entity(wire.task_counts_to_wire(job), job.etag, job.last_modified)


@route("GET", "jobs/{jobId}/jobpreparationandreleasetaskstatus")
def prep_status(server: Server, req: Request) -> Response:
    with server.account.lock:
        job = get_job(server.account, req.params["jobId"])
        if job.prep_task() is None:
            raise conflict("JobPreparationTaskNotSpecified")
        items = [wire.prep_status_to_wire(r, req.base) for r in job.prep_runs.values()]
    return listing(req, items, "jobpreparationandreleasetaskstatus", PREP_FILTER)


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
                results.append({"status": "success", "taskId": task.id, "eTag": task.etag,
                                "lastModified": iso(task.last_modified),
                                "location": f"{req.base}/jobs/{job.id}/tasks/{task.id}"})
            except BatchServiceError as err:
                detail = error_body(err, req.base, "-")
                detail.pop("odata.metadata", None)
                results.append({"status": "clienterror", "taskId": task_id, "error": detail})
    server.account.wake()
    response = written(200, req, f"/jobs/{job.id}/addtaskcollection", job.etag, job.last_modified,
                       body={"value": results})
    response.headers.pop("DataServiceId", None)
    return response


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
