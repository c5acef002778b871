"""One run of a task on its assigned node(s), in a worker thread (see executor.py).

Order, as on the service: job preparation on each node -> (multi-instance: common
resource files into AZ_BATCH_TASK_SHARED_DIR and the coordination command on every
instance, which must all exit 0) -> resource files -> command line on the primary ->
output-file upload -> completed (or retried / requeued / back to active).
"""

import os

from . import blobio, scheduler, wire
from .executor import ENDED, EXIT_CODE_FAILURE, deadline_for, launch_failure, max_retries
from .processes import ENDED_EXIT_CODE
from .state import utcnow


def run_task(ex, job, task, nodes):
    account = ex.account
    if job.prep_task() is not None:
        for node in nodes:
            if task.stop_reason:
                break
            if not ex._ensure_prep(job, node):
                # Prep failed here: this node never runs the job's tasks; the task tries another node.
                with account.lock:
                    back_to_active(account, job, task)
                account.wake()
                return
    with account.lock:
        reason = task.stop_reason   # stopped while its job preparation ran: it never started
        if reason in ("requeue", "delete"):
            return _stopped(ex, job, task, reason, [])
        if reason:
            complete(ex, job, task, None, dict(ENDED[reason]), [])
            account.wake()
            return
        if task.state == "preparing":
            task.set_state("running")
            task.execution["startTime"] = wire.iso(utcnow())
    deadline = deadline_for(task)   # maxWallClockTime counts from the start, resource downloads included
    stop = lambda: task.stop_reason
    rel = f"workitems/{job.id}/job-1/{task.id}"
    multi = task.spec.get("multiInstanceSettings")
    shared = [os.path.join(n.root, rel) for n in nodes]
    task_dirs = [shared[0]] + [os.path.join(shared[i], str(i)) for i in range(1, len(nodes))]
    wds = [os.path.join(d, "wd") for d in task_dirs]
    for wd in wds:
        os.makedirs(wd, exist_ok=True)
    envs = [ex._task_env(job, task, n, task_dirs[i], wds[i], nodes, shared[i]) for i, n in enumerate(nodes)]
    out = [os.path.join(d, "stdout.txt") for d in task_dirs]
    err = [os.path.join(d, "stderr.txt") for d in task_dirs]
    exit_code, failure, reason, sub_codes = None, None, None, []
    try:
        if multi is not None:
            _start_subtasks(account, task, nodes, rel)
            for directory in shared:
                blobio.download_resource_files(multi.get("commonResourceFiles"), directory)
            coordination = multi.get("coordinationCommandLine")
            if coordination:
                procs = [ex.launcher.start(coordination, wds[i], envs[i], out[i], err[i]) for i in range(len(nodes))]
                sub_codes, reason = ex.launcher.wait(procs, deadline, stop)
                bad = [code for code in sub_codes if code != 0]
                if bad and not reason:
                    exit_code, failure = bad[0], dict(EXIT_CODE_FAILURE)
                sub_codes = sub_codes[1:]
        if failure is None and not reason:
            blobio.download_resource_files(task.spec.get("resourceFiles"), wds[0])
            # The primary's coordination output stays at the top of its stdout/stderr ([inferred]).
            proc = ex.launcher.start(task.spec["commandLine"], wds[0], envs[0], out[0], err[0],
                                     append=bool(multi and multi.get("coordinationCommandLine")))
            codes, reason = ex.launcher.wait([proc], deadline, stop)
            exit_code = codes[0]
    except blobio.TaskFailure as pre:
        failure = pre.info
    except (OSError, ValueError) as exc:
        failure = launch_failure(exc)
    if reason in ("requeue", "delete", "shutdown"):
        return _stopped(ex, job, task, reason, shared)
    if reason:
        exit_code, failure = ENDED_EXIT_CODE, dict(ENDED[reason])
    try:
        blobio.upload_output_files(task.spec.get("outputFiles"), wds[0], exit_code, envs[0], task_dirs[0])
    except blobio.TaskFailure as upload:
        failure = failure or upload.info   # an upload failure fails the task even with exit code 0
    if failure is None and exit_code not in (0, None):
        failure = dict(EXIT_CODE_FAILURE)
    with account.lock:
        if task.deleted:
            return _stopped(ex, job, task, "delete", shared)
        retries = max_retries(job, task)
        retryable = failure is not None and failure.get("code") == "FailureExitCode" and not reason
        if retryable and (retries == -1 or task.execution["retryCount"] < retries):
            back_to_active(account, job, task, retry=True)
        else:
            complete(ex, job, task, exit_code, failure, sub_codes)
    account.wake()


def _start_subtasks(account, task, nodes, rel):
    now = wire.iso(utcnow())
    with account.lock:
        task.subtasks = [{"id": i, "nodeInfo": wire.node_info(account.url, n.pool_id, n.id, f"{rel}/{i}"),
                          "startTime": now, "state": "running", "stateTransitionTime": now,
                          "previousState": "preparing", "previousStateTransitionTime": now}
                         for i, n in enumerate(nodes) if i > 0]


def _stopped(ex, job, task, reason, shared_dirs):
    """Work ended without completing the task: requeue it, or drop it because it was deleted."""
    account = ex.account
    with account.lock:
        if reason == "requeue" and not task.deleted:
            back_to_active(account, job, task, requeue=True)
        else:
            scheduler.release_nodes(account, job.id.lower(), task)
    if task.deleted or reason == "delete":
        ex.discard_files(shared_dirs)
    account.wake()


def back_to_active(account, job, task, retry=False, requeue=False):
    scheduler.release_nodes(account, job.id.lower(), task)
    execution = task.execution
    for key in ("startTime", "endTime", "exitCode", "result", "failureInfo"):
        execution.pop(key, None)
    now = wire.iso(utcnow())
    if retry:
        execution["retryCount"] += 1
        execution["lastRetryTime"] = now
    if requeue:
        execution["requeueCount"] += 1
        execution["lastRequeueTime"] = now
    task.node_ids, task.node_info, task.subtasks, task.stop_reason = [], None, [], None
    task.set_state("active")


def complete(ex, job, task, exit_code, failure, sub_codes):
    """Record the end of the task (account lock held)."""
    account = ex.account
    now = wire.iso(utcnow())
    if not task.deleted:
        execution = task.execution
        execution["endTime"] = now
        if exit_code is not None:
            execution["exitCode"] = exit_code
        execution["result"] = "failure" if failure else "success"
        if failure:
            execution["failureInfo"] = failure
        for sub, code in zip(task.subtasks, sub_codes + [None] * len(task.subtasks)):
            code = ENDED_EXIT_CODE if code is None else code
            sub.update(state="completed", previousState="running", previousStateTransitionTime=sub["stateTransitionTime"],
                       stateTransitionTime=now, endTime=now, exitCode=code, result="success" if code == 0 else "failure")
        task.stop_reason = None
        task.set_state("completed")
        _record_on_nodes(account, job, task, failure is None)
        _job_action(job, task, exit_code, failure)
    scheduler.release_nodes(account, job.id.lower(), task)


def _record_on_nodes(account, job, task, succeeded):
    for pool in account.pools.values():
        for index, node_id in enumerate(task.node_ids):
            node = pool.nodes.get(node_id)
            if node is None:
                continue
            node.total_run += 1
            node.total_succeeded += 1 if succeeded else 0
            entry = {"taskUrl": f"{account.url}/jobs/{job.id}/tasks/{task.id}", "jobId": job.id, "taskId": task.id,
                     "taskState": "completed", "executionInfo": dict(task.execution)}
            if task.spec.get("multiInstanceSettings") is not None:
                entry["subtaskId"] = index
            node.recent_tasks = (node.recent_tasks + [entry])[-10:]


def _job_action(job, task, exit_code, failure):
    """onTaskFailure=performexitoptionsjobaction: apply the task's exitConditions jobAction.

    The service's default jobAction is none for exit code 0 and terminate for every other condition.
    'disable' is not emulated (jobs cannot be disabled here) and is treated as none.
    """
    if failure is None or str(job.spec.get("onTaskFailure", "noaction")).lower() != "performexitoptionsjobaction":
        return
    conditions = task.spec.get("exitConditions") or {}
    default = "none" if exit_code == 0 else "terminate"
    options = None
    if str(failure.get("code", "")).startswith("FileUpload"):
        options = conditions.get("fileUploadError")
    elif exit_code is None:
        options = conditions.get("preProcessingError")
    else:
        for item in conditions.get("exitCodes") or []:
            if item.get("code") == exit_code:
                options = item.get("exitOptions") or {}
                break
        else:
            for item in conditions.get("exitCodeRanges") or []:
                if int(item.get("start", 0)) <= exit_code <= int(item.get("end", -1)):
                    options = item.get("exitOptions") or {}
                    break
            else:
                options = conditions.get("default")
    action = str((options or {}).get("jobAction") or default).lower()
    if action == "terminate" and job.state == "active":
        scheduler.begin_terminate(job, "TaskFailed")


def remove_task_files(ex, job, task):
    """Directories of a deleted task on every node it ran on (the files go with the task)."""
    rel = os.path.join("workitems", job.id, "job-1", task.id)
    paths = [os.path.join(ex.account.node_dir(node_id), rel) for node_id in task.node_ids]
    ex.discard_files(paths)

