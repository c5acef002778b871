"""check_task.py --json: what a round of checks found, as one JSON document for pipelines.

    {"output_dir": "outputs",
     "pools": [{"id", "state", "autoscale", "nodes": {"idle": 2, ...}, "resize_error": {"code", "advice"} | null}],
     "jobs": [{"id", "pool_id", "state", "exists", "task_counts": {...} | null, "problem": str | null,
               "preparation_failures": [{"node_id", "exit_code", "failure", "file", "last_lines"}],
               "sweeps": [{"mark", "first_id", "last_id", "tasks", "completed", "succeeded", "failed",
                           "running", "waiting"}],
               "tasks": [{"id", "state", "node_id", "exit_code", "result", "reason",
                          "failure": {"category", "code", "message"} | null, "outputs": [paths],
                          "result_files": [paths below OUTPUT_DIR/JOB/TASK/]}]}]}

`result` is "succeeded", "failed" or null (not completed); `reason` the words check_task prints for it.
`outputs` are the std files (and a failed MPI task's other nodes' stderr) as paths from the current directory;
`result_files` the task's downloaded result files (OUTPUT_FILES), e.g. "results/a.txt". `sweeps` are the job's
parameter sweeps (send_task.py --sweep), recognised by their tasks' submission mark.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.batch import wire_value
from toolkit.failures import subtask_stderr_files
from toolkit.outputs import STD_FILES
from toolkit.progress import task_result
from toolkit.sweep import sweep_progress

if TYPE_CHECKING:
    from azure.batch import models

    from toolkit.status import JobChecker


def task_entry(task: models.BatchTask, task_dir: Path, result_files: list[str]) -> dict[str, Any]:
    info = task.execution_info
    failure = info.failure_info if info else None
    completed = wire_value(task.state) == "completed"
    reason, failed = task_result(task) if completed else ("", False)
    outputs = [str(task_dir / name) for name in STD_FILES if (task_dir / name).is_file()]
    return {
        "id": task.id,
        "state": wire_value(task.state),
        "node_id": task.node_info.node_id if task.node_info else None,
        "exit_code": info.exit_code if info else None,
        "result": ("failed" if failed else "succeeded") if completed else None,
        "reason": reason or None,
        "failure": {"category": wire_value(failure.category) or None, "code": failure.code,
                    "message": failure.message} if failure else None,
        "outputs": outputs + [str(path) for path in subtask_stderr_files(task_dir)],
        "result_files": result_files,
    }


def document(checker: JobChecker) -> dict[str, Any]:
    """The jobs, pools and tasks of the checker's last round."""
    pools = checker.pools.shown if checker.pools else []
    jobs = []
    for job in checker.jobs:
        counts = checker.counts.get(job.id)
        tasks = checker.last_listing(job.id)
        jobs.append({
            "id": job.id,
            "pool_id": job.pool_id,
            "state": job.state,
            "exists": job.id not in checker.gone,
            "task_counts": None if counts is None else {
                "active": counts.active, "running": counts.running, "completed": counts.completed,
                "succeeded": counts.succeeded, "failed": counts.failed},
            "problem": checker.stuck.get(job.id),
            "preparation_failures": [{"node_id": failure.node_id, "exit_code": failure.exit_code,
                                      "failure": failure.failure or None, "file": failure.shown_file or None,
                                      "last_lines": list(failure.lines)}
                                     for failure in checker.preparation.get(job.id, [])],
            "sweeps": [dataclasses.asdict(sweep) for sweep in sweep_progress(tasks)],
            "tasks": [task_entry(task, checker.output_dir / job.id / task.id, checker.result_files(job.id, task.id))
                      for task in tasks],
        })
    return {
        "output_dir": str(checker.output_dir),
        "pools": [{"id": pool.id, "state": pool.state, "autoscale": pool.autoscale, "nodes": pool.nodes,
                   "resize_error": None if pool.resize is None else {"code": pool.resize.code,
                                                                     "advice": pool.resize.advice}}
                  for pool in pools],
        "jobs": jobs,
    }
