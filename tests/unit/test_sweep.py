"""toolkit/sweep.py: reading a sweep file into tasks, and telling a re-run's own tasks from clashes."""

from types import SimpleNamespace

import pytest

from toolkit.batch import SUBMISSION_MARK
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.sweep import MAX_SWEEP_TASKS, batches, clashes_and_missing, read_sweep


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
