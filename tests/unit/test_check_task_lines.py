"""check_task.py's lines of a job without a network (toolkit.status.JobChecker): the failed tasks capped with the
command that lists them all, the files that could not be downloaded capped, and the result files --json reports."""

from pathlib import Path

from azure.batch import models

from toolkit.account import Job
from toolkit.outputs import Record, TaskRecord
from toolkit.progress import MAX_TASK_LINES
from toolkit.status import JobChecker

JOB = Job("job-1", "pool-1", "active", "2026-01-01T00:00:00+00:00")
COUNTS = models.BatchTaskCounts(active=0, running=0, completed=13, succeeded=1, failed=12)


def checker(output_dir: Path, record: Record, verbose: bool = False) -> JobChecker:
    """A checker for composing lines only: none of these calls asks the service or downloads."""
    return JobChecker(client=None, downloader=None, record=record, output_dir=output_dir, display=None,
                      executor=None, jobs=[JOB], verbose=verbose)


def failed_record(tmp_path: Path) -> Record:
    record = Record(tmp_path / "record.json")
    tasks = record.tasks(JOB.id, JOB.created)
    tasks["ok"] = TaskRecord("succeeded (exit code 0)", False, {"stdout.txt": 1, "stderr.txt": 0})
    for n in range(1, 12):
        tasks[f"s-{n:02d}"] = TaskRecord("FAILED (exit code 2)", True, {"stdout.txt": 0, "stderr.txt": 0})
    return record


def test_failed_tasks_are_capped_with_the_command_that_lists_them_all(tmp_path):
    output_dir = tmp_path / "my outputs"
    checking = checker(output_dir, failed_record(tmp_path))
    failed_now = {"s-12": "FAILED (exit code 2)"}  # its files did not all come: its line comes first
    texts = [text for _, text, _ in checking.task_lines(JOB, checking.record.jobs[JOB.id], failed_now, [],
                                                         COUNTS)]
    assert texts[0] == "  task [s-12]: FAILED (exit code 2)"
    assert texts[1:MAX_TASK_LINES] == [f"  task [s-{n:02d}]: FAILED (exit code 2)" for n in range(1, MAX_TASK_LINES)]
    assert texts[MAX_TASK_LINES:] == [f"  ... and 2 more failed: python3 check_task.py --job_id {JOB.id} "
                                      f"--output_dir '{output_dir}' --verbose"]


def test_with_the_default_output_dir_the_command_names_none_and_verbose_lists_every_task(tmp_path):
    record = failed_record(tmp_path)
    [*_, more] = checker(Path("outputs"), record).task_lines(JOB, record.jobs[JOB.id], {}, [], COUNTS)
    assert more[1] == f"  ... and 1 more failed: python3 check_task.py --job_id {JOB.id} --verbose"
    every = checker(Path("outputs"), record, verbose=True).task_lines(JOB, record.jobs[JOB.id], {}, [], COUNTS)
    tasks = [text for _, text, _ in every if text.startswith("  task [")]
    assert len(tasks) == 12 and "  task [ok]: succeeded (exit code 0)" in tasks
    assert not [text for _, text, _ in every if "more failed" in text]


def test_files_that_could_not_be_downloaded_are_capped_but_not_with_verbose(tmp_path):
    unavailable = [(f"{JOB.id}/t{n}/stdout.txt", f"  task [t{n}]: stdout.txt not available", "") for n in range(25)]
    capped = checker(tmp_path, Record(tmp_path / "r.json")).capped(JOB, unavailable)
    assert capped == [*unavailable[:MAX_TASK_LINES], (f"{JOB.id}/more-unavailable",
                                                      "  ... and 15 more files not available", "")]
    assert checker(tmp_path, Record(tmp_path / "r.json"), verbose=True).capped(JOB, unavailable) == unavailable
    assert checker(tmp_path, Record(tmp_path / "r.json")).capped(JOB, unavailable[:3]) == unavailable[:3]


def test_the_result_files_of_a_task_are_its_recorded_files_but_the_std_files(tmp_path):
    record = Record(tmp_path / "record.json")
    record.tasks(JOB.id, JOB.created)["t"] = TaskRecord("succeeded (exit code 0)", False, {
        "stdout.txt": 1, "stderr.txt": 0, "results/sub/b.bin": 1025, "results/a.txt": 9})
    checking = checker(tmp_path, record)
    assert checking.result_files(JOB.id, "t") == ["results/a.txt", "results/sub/b.bin"]
    assert checking.result_files(JOB.id, "never-listed") == []
