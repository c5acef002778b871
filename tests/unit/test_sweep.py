"""toolkit/sweep.py: reading a sweep file into tasks, telling a re-run's own tasks from clashes, and check_task.py's
summary of a sweep from a job's listed tasks."""

from types import SimpleNamespace

import pytest
from azure.batch import models

from toolkit.batch import SUBMISSION_MARK
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.sweep import (
    MAX_SWEEP_TASKS,
    SweepProgress,
    batches,
    clashes_and_missing,
    progress_line,
    read_sweep,
    sweep_progress,
)


def _write(tmp_path, text):
    path = tmp_path / "sweep.txt"
    path.write_text(text)
    return str(path)


def test_one_task_per_line_with_ids_padded_to_the_count(tmp_path):
    lines = "".join(f"--intervals {n}\n" for n in range(1, 11))
    sweep = read_sweep(_write(tmp_path, "# intervals\n\n" + lines + "   \n"), "t")
    assert [task.task_id for task in sweep.tasks] == [f"t-{n:02d}" for n in range(1, 11)]
    assert sweep.tasks[0].program_args == "--intervals 1" and sweep.tasks[0].line_number == 3
    assert sweep.tasks[-1].program_args == "--intervals 10"


def test_the_mark_follows_the_content_and_the_task_id(tmp_path):
    path = _write(tmp_path, "a\nb\n")
    assert read_sweep(path, "t").mark == read_sweep(path, "t").mark
    assert read_sweep(path, "t").mark != read_sweep(path, "u").mark
    assert read_sweep(path, "t").mark != read_sweep(_write(tmp_path, "a\nc\n"), "t").mark


@pytest.mark.parametrize(("text", "message"), [
    ("# only a comment\n\n", "has no task line: write one line of program arguments per task (# starts a comment)."),
    ("--x 1\n--name 'quoted'\n", "line 2: contains a single quote or a carriage return"),
])
def test_a_sweep_file_without_tasks_or_with_a_bad_line_is_refused(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ToolkitError) as raised:
        read_sweep(path, "t")
    assert raised.value.exit_code == ExitStatus.USAGE
    assert message in str(raised.value)


def test_more_than_the_limit_is_refused(tmp_path):
    path = _write(tmp_path, "x\n" * (MAX_SWEEP_TASKS + 1))
    with pytest.raises(ToolkitError, match="has 10,001 task lines, more than 10,000: split it"):
        read_sweep(path, "t")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ToolkitError, match=r"--sweep .*nope.txt: cannot read it \(No such file or directory\)"):
        read_sweep(str(tmp_path / "nope.txt"), "t")


def _task(task_id, mark):
    return SimpleNamespace(id=task_id, environment_settings=[SimpleNamespace(name=SUBMISSION_MARK, value=mark)])


def test_a_rerun_adds_only_what_is_missing_and_names_clashes(tmp_path):
    sweep = read_sweep(_write(tmp_path, "a\nb\nc\n"), "t")
    clashes, missing = clashes_and_missing([_task("T-1", sweep.mark), _task("t-3", "someone-else")], sweep)
    assert clashes == ["t-3"]
    assert [task.task_id for task in missing] == ["t-2"]


def test_task_collections_hold_at_most_100_tasks():
    assert [len(batch) for batch in batches(list(range(250)))] == [100, 100, 50]


# --- check_task.py's summary of a sweep, from typed task values ------------------------------------------------

def _listed(task_id, mark, state, result=None):
    """A task as check_task.py's listing gives it (id, state, executionInfo, environmentSettings)."""
    info = models.BatchTaskExecutionInfo(result=result, retry_count=0, requeue_count=0) if result else None
    return models.BatchTask(id=task_id, state=state, execution_info=info,
                            environment_settings=[models.EnvironmentSetting(name=SUBMISSION_MARK, value=mark)])


def test_a_sweep_is_summarised_by_its_mark_and_other_tasks_are_left_out():
    mark, other = "sweep-" + "a" * 32, "sweep-" + "b" * 32
    tasks = [
        *(_listed(f"T-{n:02d}", mark, "completed", "success") for n in (3, 1, 2, 4, 5, 6, 7, 8)),
        _listed("T-09", mark, "completed", "failure"),
        _listed("T-10", mark, "running"), _listed("T-11", mark, "preparing"), _listed("T-12", mark, "active"),
        _listed("single", "0123456789abcdef0123456789abcdef", "completed", "failure"),  # send_task.py's own mark
        models.BatchTask(id="bare", state="completed"),
        _listed("A-1", other, "active"),
    ]
    first, second = sweep_progress(tasks)
    assert first == SweepProgress("sweep-" + "b" * 32, "A-1", "A-1", tasks=1, completed=0, succeeded=0, failed=0,
                                  running=0, waiting=1)
    assert second == SweepProgress(mark, "T-01", "T-12", tasks=12, completed=9, succeeded=8, failed=1, running=2,
                                   waiting=1)
    assert progress_line(second) == "Sweep [T-01] .. [T-12]: 12 tasks: 9 completed (8 succeeded, 1 failed), " \
                                    "2 running, 1 waiting"
    assert progress_line(first) == "Sweep [A-1] .. [A-1]: 1 task: 0 completed (0 succeeded, 0 failed), 1 waiting"


def test_a_finished_sweep_says_no_running_or_waiting_and_none_is_found_among_plain_tasks():
    mark = "sweep-" + "c" * 32
    [done] = sweep_progress([_listed("s-1", mark, "completed", "success"), _listed("s-2", mark, "completed")])
    assert progress_line(done) == "Sweep [s-1] .. [s-2]: 2 tasks: 2 completed (2 succeeded, 0 failed)"
    assert sweep_progress([models.BatchTask(id="t", state="completed"), _listed("u", "f" * 32, "running")]) == []
