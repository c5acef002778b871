"""check_task.py's rounds: the jobs and pools of the account (toolkit/account.py), each job's task counts,
the tasks to download (each as soon as it completes), and the lines that describe them.

Requests per round: one task-counts request per job not yet done, the pools view (node counts of
every pool in one request, and the pools' state in another), and a task listing only for a job
whose counts show tasks that the local record does not hold as complete (or that are running).
A sweep's summary line (toolkit/sweep.py) comes from that listing, so it costs no request of its own:
a round that does not list a job (every task complete and recorded, or only waiting ones) shows none.

The azure packages are imported inside functions (or only for type checking) so that `--help` stays fast.
"""

from __future__ import annotations

import shlex
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.account import Job, PoolsView, pools_view
from toolkit.batch import error_code, wire_value
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.failures import (
    PreparationFailure,
    excerpt_lines,
    fetch_subtask_stderr,
    file_excerpt,
    preparation_failures,
    subtask_stderr_files,
)
from toolkit.outputs import STD_FILES, Downloader, Fetched, Record, TaskRecord
from toolkit.progress import MAX_TASK_LINES, Display, Line, now_utc, running_line, task_result
from toolkit.sweep import progress_line, sweep_progress

if TYPE_CHECKING:
    from azure.batch import BatchClient, models

# environmentSettings holds the submission mark that tells a sweep's tasks (toolkit/sweep.py). Measured on the
# local stack, a page of 1,000 sweep tasks grows from 696 KB to 811 KB (115 bytes a task), its time unchanged.
TASK_FIELDS = ["id", "state", "executionInfo", "nodeInfo", "constraints", "multiInstanceSettings", "outputFiles",
               "environmentSettings"]
DEFAULT_OUTPUT_DIR = Path("outputs")


def describe(job_id: str, counts: models.BatchTaskCounts) -> str:
    return (f"Job [{job_id}]: active {counts.active}, running {counts.running}, completed {counts.completed} "
            f"(succeeded {counts.succeeded}, failed {counts.failed})")


def finished(counts: models.BatchTaskCounts) -> bool:
    """No task of the job waits or runs."""
    return not counts.active and not counts.running


def ended_of(task: models.BatchTask) -> str:
    """When the task's last run ended ('' when it has not)."""
    end = task.execution_info.end_time if task.execution_info else None
    return end.isoformat() if end else ""


def needs_listing(counts: models.BatchTaskCounts, recorded: int, wait: bool, list_always: bool,
                  recorded_failed: int | None = None) -> bool:
    """Whether this round lists the job's tasks (one request per page), given its counts and how many of its
    tasks the local record holds as complete.

    --json (list_always) reports every task, so it always lists. Otherwise a finished job whose completed
    tasks are all recorded needs nothing, except with --wait when it has no task at all (the listing is what
    tells an empty job done). Any other job is listed when that tells something: completed tasks not yet
    recorded (to download), running tasks (their lines), or, with --wait, a finished job (to close it)."""
    if list_always:
        return True
    if recorded_failed is not None and counts.completed == recorded and (counts.failed or 0) != recorded_failed:
        return True   # a recorded task ran again since (send_task.py --retry) and ended otherwise
    done = finished(counts)
    if done and counts.completed == recorded and (counts.completed or not wait):
        return False
    return counts.completed != recorded or bool(counts.running) or (done and wait)


@dataclass
class JobChecker:
    """One round (poll) over the jobs: counts, downloads of newly completed tasks, lines to show."""

    client: BatchClient
    downloader: Downloader
    record: Record
    output_dir: Path
    display: Display
    executor: ThreadPoolExecutor
    jobs: list[Job]
    wait: bool = False
    verbose: bool = False
    whole_account: bool = True
    list_always: bool = False  # --json: every task's state is reported, so each job's tasks are listed
    done: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    lines: dict[str, list[Line]] = field(default_factory=dict)
    pools: PoolsView | None = None
    counts: dict[str, models.BatchTaskCounts] = field(default_factory=dict)
    stuck: dict[str, str] = field(default_factory=dict)  # job id -> why its tasks cannot start
    preparation: dict[str, list[PreparationFailure]] = field(default_factory=dict)
    _listed: dict[str, tuple[tuple[int, ...], list[models.BatchTask]]] = field(default_factory=dict)
    _fetched: set[tuple[str, str, str]] = field(default_factory=set)  # (job, task, file) fetched in this run
    # (job, task) -> the files that came in this run, for a task whose files did not all come (so not recorded)
    _came: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def poll(self) -> bool:
        """Check every job not yet done; True when none has work left."""
        pending = [job for job in self.jobs if job.id not in self.done and job.id not in self.gone]
        view: Future[PoolsView] = self.executor.submit(pools_view, self.client, self.jobs, self.whole_account)
        counts = {job.id: self.executor.submit(self.client.get_job_task_counts, job.id) for job in pending}
        self.pools = view.result()
        for job in pending:
            try:
                job_counts = counts[job.id].result().task_counts
            except Exception as err:
                if error_code(err) != "JobNotFound":
                    raise
                self.job_gone(job)
                continue
            self.counts[job.id] = job_counts
            self.lines[job.id] = self.check_job(job, job_counts)
        self.display.status([*self.pools.lines, *(line for job in self.jobs for line in self.lines.get(job.id, []))])
        if self.wait and self.stuck:  # waiting cannot change it: say so now, after the lines that say why
            job_id, problem = next(iter(self.stuck.items()))
            missing_pool = job_id not in self.preparation or not self.preparation[job_id]
            raise ToolkitError(problem, ExitStatus.FAILED if missing_pool else ExitStatus.TASKS_FAILED)
        return all(job.id in self.done or job.id in self.gone for job in self.jobs)

    def exit_code(self) -> int:
        """--wait: OK when every followed task succeeded, TASKS_FAILED when one failed, FAILED when a job
        went away; without --wait a status report always succeeds."""
        if not self.wait:
            return ExitStatus.OK
        if self.gone:
            return ExitStatus.FAILED
        return ExitStatus.TASKS_FAILED if any(counts.failed for counts in self.counts.values()) else ExitStatus.OK

    def job_gone(self, job: Job) -> None:
        message = f"Job [{job.id}] no longer exists (deleted, or the service lost it): nothing to wait for."
        if not self.whole_account:
            raise ToolkitError(message)
        self.gone.add(job.id)
        self.lines[job.id] = [(job.id, message, "")]

    def check_job(self, job: Job, counts: models.BatchTaskCounts) -> list[Line]:
        recorded = self.record.tasks(job.id, job.created)
        fetched: Counter[Fetched] = Counter()
        lines: list[Line] = [(job.id, describe(job.id, counts), "")]
        self.fetch_again(job, recorded, fetched)
        running: list[models.BatchTask] = []
        unavailable: list[Line] = []
        failed_now: dict[str, str] = {}  # failed tasks whose files did not all come: task id -> result
        if needs_listing(counts, len(recorded), self.wait, self.list_always,
                         sum(task.failed for task in recorded.values())):
            running = self.follow_listing(job, counts, recorded, fetched, lines, unavailable, failed_now)
        elif finished(counts):
            self.finish(job, counts, lines, counts.completed == 0)
        if fetched:
            self.record.save()
        lines[1:1] = [(f"{job.id}/sweep/{sweep.mark}", f"  {progress_line(sweep)}", "")
                      for sweep in sweep_progress(self.current_listing(job.id, counts))]
        lines += self.task_lines(job, recorded, failed_now, running, counts) + self.capped(job, unavailable)
        if recorded:
            lines.append((f"{job.id}/outputs", self.outputs_line(job, recorded, fetched), ""))
        return lines + self.stuck_lines(job, counts)

    def fetch_again(self, job: Job, recorded: dict[str, TaskRecord], fetched: Counter[Fetched]) -> None:
        """Download again the recorded files deleted or truncated on disk since they were recorded."""
        redo = self.record.incomplete_files(job.id, self.output_dir)
        for (task_id, name), again in zip(redo, self.fetch(job.id, redo), strict=True):
            fetched[again.origin()] += 1
            if again.size is None:
                recorded.pop(task_id, None)  # no longer complete: the next run lists the job again
            elif task_id in recorded:
                recorded[task_id].files[name] = again.size

    def follow_listing(self, job: Job, counts: models.BatchTaskCounts, recorded: dict[str, TaskRecord],
                       fetched: Counter[Fetched], lines: list[Line], unavailable: list[Line],
                       failed_now: dict[str, str]) -> list[models.BatchTask]:
        """List the job's tasks, download the newly completed ones, and close the job when all are done;
        returns its running tasks."""
        tasks = self.list_tasks(job.id, counts)
        again = [task.id for task in tasks if task.id in recorded and (
            wire_value(task.state) != "completed" or recorded[task.id].ended not in ("", ended_of(task)))]
        for task_id in again:   # reactivated (send_task.py --retry) since it was recorded: its outputs come again
            del recorded[task_id]
        if again:
            self.record.save()
        new = [task for task in tasks if wire_value(task.state) == "completed" and task.id not in recorded]
        self.download_completed(job, new, recorded, fetched, unavailable, failed_now)
        if finished(counts) and all(wire_value(task.state) == "completed" for task in tasks):
            listed = {task.id for task in tasks}
            for task_id in [t for t in recorded if t not in listed]:  # deleted tasks
                del recorded[task_id]
            self.finish(job, counts, lines, not tasks)
        return [task for task in tasks if wire_value(task.state) in ("running", "preparing")]

    def download_completed(self, job: Job, new: list[models.BatchTask], recorded: dict[str, TaskRecord],
                           fetched: Counter[Fetched], unavailable: list[Line], failed_now: dict[str, str]) -> None:
        """Fetch the std files and result files (OUTPUT_FILES) of newly completed tasks (and a failed MPI task's
        other nodes' stderr); a task whose files all came is recorded, a failed one without them goes into
        failed_now (its result line)."""
        listed = self.executor.map(lambda task: self.downloader.result_names(job.id, task), new)  # in parallel
        names = {task.id: (*STD_FILES, *results) for task, results in zip(new, listed, strict=True)}
        files = [(task.id, name) for task in new for name in names[task.id]]
        got = dict(zip(files, self.fetch(job.id, files), strict=True))
        for task in new:
            sizes = {name: got[(task.id, name)].size for name in names[task.id]}
            for name in names[task.id]:
                fetched[got[(task.id, name)].origin()] += 1
                if sizes[name] is None:
                    unavailable.append((f"{job.id}/{task.id}/{name}", f"  task [{task.id}]: {name} "
                                        f"{got[(task.id, name)].how}", ""))
            result, failed = task_result(task)
            instances = task.multi_instance_settings.number_of_instances if task.multi_instance_settings else 1
            if failed and (instances or 1) > 1:  # the other nodes' stderr, while those nodes still have it
                fetch_subtask_stderr(self.client, job.id, task.id, self.output_dir / job.id / task.id,
                                     self.downloader.cancelled)
            if all(size is not None for size in sizes.values()):
                recorded[task.id] = TaskRecord(result, failed, {k: v for k, v in sizes.items() if v is not None},
                                               ended_of(task))
                continue
            self._came[(job.id, str(task.id))] = [name for name, size in sizes.items() if size is not None]
            if failed:
                failed_now[task.id] = result

    def stuck_lines(self, job: Job, counts: models.BatchTaskCounts) -> list[Line]:
        """Why the job's tasks all wait, when waiting cannot change it (kept in self.stuck for --wait)."""
        self.stuck.pop(job.id, None)
        found = self.stuck_reason(job, counts) if counts.active and not counts.running else None
        if found is None:
            return []
        problem, details = found
        self.stuck[job.id] = problem
        shown = details if self.wait else [f"  {problem}", *details]  # --wait ends on the problem itself
        return [(f"{job.id}/stuck/{i}", text, "") for i, text in enumerate(shown)]

    def finish(self, job: Job, counts: models.BatchTaskCounts, lines: list[Line], empty: bool) -> None:
        self.done.add(job.id)
        if empty and (self.wait or counts.completed == 0) and not counts.active:
            lines.append((f"{job.id}/empty", "  no tasks in this job", ""))

    def list_tasks(self, job_id: str, counts: models.BatchTaskCounts) -> list[models.BatchTask]:
        """The job's tasks; with --wait, listed again only when its counts have changed."""
        key = (counts.active, counts.running, counts.completed, counts.failed)
        cached = self._listed.get(job_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        tasks = list(self.client.list_tasks(job_id, select=TASK_FIELDS))
        self._listed[job_id] = (key, tasks)
        return tasks

    def last_listing(self, job_id: str) -> list[models.BatchTask]:
        """The job's tasks as last listed in this run ([] when they were not listed)."""
        cached = self._listed.get(job_id)
        return cached[1] if cached else []

    def current_listing(self, job_id: str, counts: models.BatchTaskCounts) -> list[models.BatchTask]:
        """The job's last listing when its counts have not changed since, or when it showed every task of the job
        completed (counts read before that listing differ, but nothing changes after it); [] otherwise."""
        cached = self._listed.get(job_id)
        key = (counts.active, counts.running, counts.completed, counts.failed)
        if cached is None:
            return []
        all_done = finished(counts) and len(cached[1]) == counts.completed and all(
            wire_value(task.state) == "completed" for task in cached[1])
        return cached[1] if cached[0] == key or all_done else []

    def result_files(self, job_id: str, task_id: str) -> list[str]:
        """The task's result files (OUTPUT_FILES) downloaded under OUTPUT_DIR/JOB/TASK/, as paths below it: those
        recorded, or those that came in this run for a task whose files did not all come."""
        recorded = self.record.jobs.get(job_id, {}).get(task_id)
        names = list(recorded.files) if recorded is not None else self._came.get((job_id, task_id), [])
        return sorted(name for name in names if name not in STD_FILES)

    def fetch(self, job_id: str, files: list[tuple[str, str]]) -> list[Fetched]:
        self._fetched.update((job_id, task_id, name) for task_id, name in files)

        def one(task_id: str, name: str) -> Fetched:
            target = self.output_dir / job_id / task_id / name
            result = self.downloader.fetch(job_id, task_id, name, target, check_existing=target.exists())
            if self.verbose:
                self.display.event(f"  {target}: {result.how}")
            return result
        return list(self.executor.map(one, *zip(*files, strict=True))) if files else []

    def task_lines(self, job: Job, recorded: dict[str, TaskRecord], failed_now: dict[str, str],
                   running: list[models.BatchTask], counts: models.BatchTaskCounts) -> list[Line]:
        """A line per failed task (every task with --verbose), at most MAX_TASK_LINES of them then a line that
        says how to see them all; a line per running task; the waiting ones' count; with --verbose the files."""
        listed = [*failed_now, *(task_id for task_id, task in recorded.items() if task.failed or self.verbose)]
        lines: list[Line] = []
        for task_id in listed if self.verbose else listed[:MAX_TASK_LINES]:
            if task_id in failed_now:  # its files did not all come: no excerpt of them
                lines.append((f"{job.id}/{task_id}", f"  task [{task_id}]: {failed_now[task_id]}", ""))
                continue
            text = f"  task [{task_id}]: {recorded[task_id].result}"
            lines.append((f"{job.id}/{text}", text, ""))
            if recorded[task_id].failed:
                lines += [(f"{job.id}/{task_id}/why/{i}", why, "")
                          for i, why in enumerate(self.failure_excerpts(job.id, task_id))]
        if len(listed) > MAX_TASK_LINES and not self.verbose:
            lines.append((f"{job.id}/more-failed", f"  ... and {len(listed) - MAX_TASK_LINES} more failed: "
                                                   f"{self.every_task_command(job.id)}", ""))
        now = now_utc()
        shown = [running_line(task, now) for task in running]
        for text, live in shown if self.verbose else shown[:10]:
            lines.append((f"{job.id}/{text}", f"  {text}", live))
        if len(shown) > 10 and not self.verbose:
            lines.append((f"{job.id}/more-running", f"  ... and {len(shown) - 10} more running", ""))
        if counts.active:
            lines.append((f"{job.id}/active", f"  {counts.active} task(s) waiting for a node", ""))
        if self.verbose and not self.wait:
            for task_id, task in recorded.items():
                for name in task.files:
                    if (job.id, task_id, name) in self._fetched:
                        continue  # its line came when it was fetched
                    target = self.output_dir / job.id / task_id / name
                    lines.append((str(target), f"  {target}: already downloaded", ""))
        return lines

    def every_task_command(self, job_id: str) -> str:
        """The command that prints a line for every task of the job, reading this run's OUTPUT_DIR (its record
        holds the finished tasks' results, so a finished job is not listed again)."""
        where = "" if self.output_dir == DEFAULT_OUTPUT_DIR else f" --output_dir {shlex.quote(str(self.output_dir))}"
        return f"python3 check_task.py --job_id {job_id}{where} --verbose"

    def capped(self, job: Job, unavailable: list[Line]) -> list[Line]:
        """The lines of files that could not be downloaded, at most MAX_TASK_LINES unless --verbose."""
        if self.verbose or len(unavailable) <= MAX_TASK_LINES:
            return unavailable
        more = f"  ... and {len(unavailable) - MAX_TASK_LINES} more files not available"
        return [*unavailable[:MAX_TASK_LINES], (f"{job.id}/more-unavailable", more, "")]

    def outputs_line(self, job: Job, recorded: dict[str, TaskRecord], fetched: Counter[Fetched]) -> str:
        files = sum(len(task.files) for task in recorded.values())
        text = f"  outputs of {len(recorded)} completed task(s) in {self.output_dir / job.id}/ ({files} files"
        now = {got.how: n for got, n in fetched.items() if got.source.downloaded_now}
        if now and not self.wait:
            text += "; downloaded now: " + ", ".join(f"{n} {how}" for how, n in sorted(now.items()))
        return text + ")"

    def failure_excerpts(self, job_id: str, task_id: str) -> list[str]:
        """What the failed task's downloaded stderr.txt says, and its other nodes' (a local read each)."""
        task_dir = self.output_dir / job_id / task_id
        lines = excerpt_lines("stderr.txt (last lines)", file_excerpt(task_dir / "stderr.txt"))
        for path in subtask_stderr_files(task_dir):
            lines += excerpt_lines(f"stderr.txt of subtask {path.parent.name} on another node ({path})",
                                   file_excerpt(path))
        return lines

    def short_of_nodes(self, job: Job, counts: models.BatchTaskCounts) -> tuple[str, list[str]] | None:
        """Tasks that need more nodes than the job's pool has while a lasting resize error (a core quota used
        up) keeps it from getting more: they can never start until the quota is raised."""
        summary = next((pool for pool in self.pools.shown if job.pool_id and pool.id.lower() == job.pool_id.lower()),
                       None) if self.pools else None
        if summary is None or summary.resize is None or not summary.resize.lasting:
            return None
        waiting = [task for task in self.list_tasks(job.id, counts) if wire_value(task.state) == "active"]
        needs = min(((task.multi_instance_settings.number_of_instances or 1) if task.multi_instance_settings else 1)
                    for task in waiting) if waiting else 0
        have = sum(summary.nodes.values())
        if needs <= have:
            return None
        return (f"Job [{job.id}]: its tasks need {needs} node(s) and pool [{summary.id}] has {have}, which it cannot "
                f"grow beyond ({summary.resize.code}): {summary.resize.advice}."), []

    def stuck_reason(self, job: Job, counts: models.BatchTaskCounts) -> tuple[str, list[str]] | None:
        """Why tasks wait (the job's pool is gone, or its preparation task failed) and the lines that show the
        cause and what to do, or None."""
        if job.pool_id is None or self.pools is None:  # an auto pool, which create_pool_job.py never makes
            return None
        if job.pool_id.lower() not in self.pools.existing:
            return (f"Job [{job.id}]: its pool [{job.pool_id}] does not exist, so its tasks cannot start. Create "
                    f"it: python3 create_pool_job.py --pool_id {job.pool_id} --job_id {job.id}"), []
        failures = preparation_failures(self.client, job.id)
        self.preparation[job.id] = failures
        if not failures:
            return self.short_of_nodes(job, counts)
        first = failures[0]
        cause = f", {first.failure}" if first.failure else ""
        problem = (f"Job [{job.id}]: the job preparation task failed on {len(failures)} node(s), e.g. {first.node_id} "
                   f"(exit code {first.exit_code}{cause}), so its tasks cannot start there.")
        waiting = [task.id for task in self.list_tasks(job.id, counts) if wire_value(task.state) == "active"]
        file = first.shown_file or "stderr.txt"
        return problem, [
            *excerpt_lines(f"{file} of the preparation on {first.node_id} (last lines)", list(first.lines)),
            "    The pool's nodes keep running, and costing, while the job's tasks wait. Fix the cause in the "
            "repository (or CMD_PREP_TASK), commit and push it, then make the job again and send its task(s) again:",
            f"      python3 delete_pool_job.py --job_id {job.id} --yes",
            f"      python3 create_pool_job.py --pool_id {job.pool_id} --job_id {job.id}",
            *(f"      python3 send_task.py --job_id {job.id} --task_id {task_id}" for task_id in waiting[:3]),
            f"    The preparation's whole {file}: az batch node file download --pool-id {job.pool_id} --node-id "
            f"{first.node_id} --file-path {first.task_root}/{file} --destination ./prep-{file}",
        ]

