"""check_task.py without a network: options refused by mode, failures in plain words, the display,
riding out an outage, the record, and the file mode of downloads."""

import datetime
import io
import json
import os
import re

import pytest
from azure.batch import models
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

import check_task
from toolkit.errors import ToolkitError
from toolkit.outputs import RECORD_NAME, Record, TaskRecord, load_record, user_file_mode
from toolkit.progress import Display, Outage, failure_reason, running_line, task_result


@pytest.mark.parametrize("args, words", [
    (["--poll_seconds", "5"], "--poll_seconds is used only with --wait or --tail"),
    (["--tail", "t1"], "--tail TASK_ID needs --job_id JOB_ID"),
    (["--job_id", "j", "--tail", "t1", "--wait"], "--tail and --wait cannot be combined"),
    (["--job_id", "j", "--tail", "t1", "--output_dir", "x"], "--tail downloads nothing, so --output_dir does nothing"),
    (["--job_id", "j", "--tail", "t1", "--verbose"], "--verbose lists downloaded files"),
    (["--job_id", "j", "--tail", "t 1"], "--tail 't 1' contains ' '"),
    (["--node_logs", "t1"], "--node_logs TASK_ID needs --job_id JOB_ID"),
    (["--login", "t1"], "--login TASK_ID needs --job_id JOB_ID"),
    (["--job_id", "j", "--login", "t1", "--wait"], "--login cannot be combined with --wait"),
    (["--job_id", "j", "--node_logs", "t1", "--tail", "t1"], "--node_logs cannot be combined with --tail"),
    (["--job_id", "j", "--ssh_key", "k.pub"], "--ssh_key is the key of --login"),
    (["--job_id", "j", "--login", "t/1"], "--login 't/1' contains '/'"),
])
def test_options_that_do_nothing_in_the_mode_given_are_refused(valid_env, capsys, args, words):
    assert check_task.main(args) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def task(result="failure", exit_code=None, code=None, category="usererror", details=None, ran=None, limit=None,
         **fields):
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    failure = models.BatchTaskFailureInfo(category=category, code=code, message="m", details=details) if code else None
    info = models.BatchTaskExecutionInfo(result=result, exit_code=exit_code, failure_info=failure, retry_count=0,
                                         requeue_count=0, start_time=start,
                                         end_time=start + ran if ran is not None else None)
    constraints = models.BatchTaskConstraints(max_wall_clock_time=limit) if limit else None
    return models.BatchTask(id="t", state="completed", execution_info=info, constraints=constraints, **fields)


@pytest.mark.parametrize("made, words", [
    (task(result="success", exit_code=0), "succeeded (exit code 0)"),
    (task(exit_code=3, code="FailureExitCode"), "FAILED (exit code 3)"),
    (task(code="CommandProgramNotFound", details=[models.NameValuePair(name="Message", value="no /x")]),
     "FAILED: the command was not found (CommandProgramNotFound: no /x)"),
    (task(exit_code=-1073741510, code="TaskEnded", category="servererror", ran=datetime.timedelta(seconds=60),
          limit=datetime.timedelta(seconds=60)), "FAILED: ended by its wall clock: it ran 1m00s"),
    (task(exit_code=-1073741510, code="TaskEnded", ran=datetime.timedelta(seconds=5),
          limit=datetime.timedelta(hours=1)), "FAILED: ended by a user or its job's end (TaskEnded)"),
    (task(exit_code=0, code="FileUploadAccessDenied"),
     "FAILED: its outputs could not be uploaded to the blob container (FileUploadAccessDenied: check "
     "BLOB_CONTAINER_URL and the SAS, AZURE_STORAGE_KEY or sign-in send_task.py used)"),
    (task(code="BlobNotFound"), "FAILED: a resource file could not be downloaded to the node (BlobNotFound"),
    (task(exit_code=1, code="SomethingNew"), "FAILED: SomethingNew: m (exit code 1)"),
])
def test_results_in_plain_words(made, words):
    text, failed = task_result(made)
    assert text.startswith(words) and failed == (not words.startswith("succeeded"))
    assert "None" not in text and "-1073741510" not in text


def test_failure_reason_never_shows_a_raw_none():
    assert "None" not in failure_reason(task(code="CommandProgramNotFound"))


def test_running_line_names_the_nodes_and_the_time():
    start = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    running = models.BatchTask(id="mpi", state="running", node_info=models.BatchNodeInfo(node_id="tvm-1"),
                               multi_instance_settings=models.MultiInstanceSettings(number_of_instances=3,
                                                                                     coordination_command_line="x"),
                               execution_info=models.BatchTaskExecutionInfo(start_time=start, retry_count=0,
                                                                            requeue_count=0))
    text, live = running_line(running, start + datetime.timedelta(minutes=3, seconds=5))
    assert text.startswith("task [mpi]: running on node tvm-1 (+2 more nodes) since ")
    assert live == " for 3m05s"


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_piped_wait_prints_only_what_changed_with_the_time():
    out = io.StringIO()
    display = Display(waiting=True, out=out)
    display.status([("j", "Job [j]: running 1", ""), ("j/t", "  task [t]: running", " for 1s")])
    display.status([("j", "Job [j]: running 1", ""), ("j/t", "  task [t]: running", " for 2s")])
    display.status([("j", "Job [j]: completed 1", "")])
    lines = out.getvalue().splitlines()
    assert [line[9:] for line in lines] == ["Job [j]: running 1", "  task [t]: running", "Job [j]: completed 1"]
    assert all(line[2] == ":" and line[5] == ":" and line[8] == " " for line in lines)


def test_terminal_wait_redraws_the_status_in_place():
    out = FakeTerminal()
    display = Display(waiting=True, out=out)
    display.status([("j", "Job [j]: running 1", " for 1s")])
    display.event("something happened")
    display.status([("j", "Job [j]: running 1", " for 2s")])
    text = out.getvalue()
    assert text.count("\x1b[2F\x1b[J") == 2  # the job line and the footer, erased twice
    assert "Job [j]: running 1 for 2s" in text and "something happened" in text
    # The footer is the time waited so far, not a countdown, and Ctrl-C ends only the waiting.
    assert re.search(r"\nwaited \d+s so far \(Ctrl-C stops waiting; the tasks keep running\)\n", text), text


def test_terminal_wait_cuts_lines_to_the_width_and_ends_with_the_lines_in_full():
    out = FakeTerminal()
    display = Display(waiting=True, out=out, columns=lambda: 30)
    long_line = "  task [a-rather-long-task-id]: running on node tvmps_0123456789abcdef_d"
    display.status([("j", "Job [j]: running 1", ""), ("j/t", long_line, " for 1s")])
    display.status([("j", "Job [j]: running 1", ""), ("j/t", long_line, " for 2s")])
    text = out.getvalue()
    drawn = [line for part in text.split("\x1b[J") for line in part.split("\n")]
    assert drawn.count("  task [a-rather-long-task...") == 2
    assert all(len(line) <= 29 for line in text.split("\x1b[3F\x1b[J")[-1].splitlines())
    display.finish()
    after_the_last_erase = out.getvalue().split("\x1b[3F\x1b[J")[-1]
    assert after_the_last_erase == f"Job [j]: running 1\n{long_line} for 2s\n"  # no 'waiting for' line left
    display.event("downloaded")
    assert out.getvalue().endswith(" downloaded\n")  # no block drawn again after the end


def test_one_shot_prints_every_line_plainly():
    out = io.StringIO()
    Display(waiting=False, out=out).status([("j", "Job [j]", ""), ("j/t", "  task [t]: running", " for 1s")])
    assert out.getvalue() == "Job [j]\n  task [t]: running for 1s\n"


def test_outage_is_said_once_retried_and_its_end_said():
    out = io.StringIO()
    failures = [ServiceRequestError("refused"), HttpResponseError(response=None, message="busy"),
                ServiceRequestError("refused")]

    def poll():
        if failures:
            raise failures.pop(0)
        return "ok"
    assert Outage(Display(waiting=True, out=out), sleep=lambda _: None).attempt(poll, 0.1) == "ok"
    text = out.getvalue()
    assert text.count("cannot be reached or is busy") == 1 and text.count("answers again") == 1


class SteppingClock:
    """Outage's clock: each reading 100 s after the last (as if every poll took that long); sleeping takes
    no time, and is recorded."""

    def __init__(self):
        self.readings = iter(range(0, 10_000, 100))
        self.slept = []

    def now(self):
        return next(self.readings)

    def sleep(self, seconds):
        self.slept.append(seconds)


def test_outage_gives_up_after_its_limit():
    clock, polls = SteppingClock(), []

    def poll():
        polls.append(1)
        raise ServiceRequestError("refused")
    # Failures at 0, 100, ..., 700 s: the eighth is past the 600 s limit; the message reads the clock once more.
    with pytest.raises(ToolkitError, match="could not be reached for 13m20s; stopped waiting"):
        Outage(Display(waiting=True, out=io.StringIO()), limit=600, clock=clock).attempt(poll, 1)
    assert len(polls) == 8 and clock.slept == [1, 2, 4, 8, 16, 30, 30]


def test_outage_does_not_retry_what_waiting_cannot_change():
    calls = []

    def poll():
        calls.append(1)
        err = ResourceNotFoundError("JobNotFound")
        err.status_code = 404
        raise err
    with pytest.raises(ResourceNotFoundError):
        Outage(Display(waiting=True, out=io.StringIO()), sleep=lambda _: None).attempt(poll, 1)
    assert len(calls) == 1


def test_record_round_trip_and_local_check(tmp_path):
    record = Record(tmp_path / RECORD_NAME)
    record.tasks("j", "2026-11-27T00:00:00+00:00")["t"] = TaskRecord("succeeded (exit code 0)", False,
                                                                     {"stdout.txt": 3, "stderr.txt": 0})
    (tmp_path / "j" / "t").mkdir(parents=True)
    (tmp_path / "j" / "t" / "stdout.txt").write_bytes(b"abc")
    (tmp_path / "j" / "t" / "stderr.txt").write_bytes(b"")
    record.save()
    again = load_record(tmp_path)
    assert again.jobs == record.jobs and again.incomplete_files("j", tmp_path) == []
    assert again.created == {"j": "2026-11-27T00:00:00+00:00"}
    (tmp_path / "j" / "t" / "stdout.txt").write_bytes(b"ab")
    (tmp_path / "j" / "t" / "stderr.txt").unlink()
    assert sorted(again.incomplete_files("j", tmp_path)) == [("t", "stderr.txt"), ("t", "stdout.txt")]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_a_job_made_again_under_the_same_id_is_not_taken_for_the_recorded_one(tmp_path):
    record = Record(tmp_path / RECORD_NAME)
    record.tasks("j", "2026-11-27T00:00:00+00:00")["t"] = TaskRecord("succeeded (exit code 0)", False,
                                                                     {"stdout.txt": 3})
    record.save()
    again = load_record(tmp_path)
    assert again.tasks("j", "2026-11-27T00:00:00+00:00") != {}
    assert again.tasks("j", "2026-11-27T01:00:00+00:00") == {}  # deleted and created again: nothing is complete
    assert again.incomplete_files("j", tmp_path) == []


@pytest.mark.parametrize("content", ["", "{not json", json.dumps({"version": 99, "jobs": {}}),
                                     json.dumps({"version": 1, "jobs": {"j": {"t": {"files": 3}}}}),
                                     json.dumps({"version": 2, "jobs": {"j": {"t": {"files": 3}}}}), "[]"])
def test_unreadable_record_is_an_empty_one(tmp_path, content):
    (tmp_path / RECORD_NAME).write_text(content)
    assert load_record(tmp_path).jobs == {}


def test_file_mode_follows_the_umask():
    old = os.umask(0o027)
    try:
        assert user_file_mode() == 0o640
        assert os.umask(0o027) == 0o027  # left as it was
    finally:
        os.umask(old)


class RangeAnswer:
    """An azure-core response to a ranged read, as the SDK raises it when the status is not 200."""

    def __init__(self, status, body=b""):
        self.status_code, self.reason, self._body = status, "x", body
        self.headers, self.content_type, self.request = {}, "application/octet-stream", None

    @property
    def content(self):
        return self._body

    def text(self, encoding=None):
        return self._body.decode()


class RangeClient:
    def __init__(self, answer):
        self.answer, self.ranges = answer, []

    def download_task_file(self, job_id, task_id, path, ocp_range=None):
        self.ranges.append(ocp_range)
        raise HttpResponseError(response=self.answer)


@pytest.mark.parametrize("answer, expected", [(RangeAnswer(416), b""), (RangeAnswer(206, b"new bytes"), b"new bytes")])
def test_ranged_read_past_the_end_or_partial_content(answer, expected):
    from toolkit.tail import read_from

    client = RangeClient(answer)
    assert read_from(client, "j", "t", 42) == expected
    assert client.ranges == ["bytes=42-"]


def test_ranged_read_refused_otherwise_is_raised():
    from toolkit.tail import read_from

    with pytest.raises(HttpResponseError):
        read_from(RangeClient(RangeAnswer(500)), "j", "t", 0)


def test_tail_lines_are_as_they_are_while_only_one_stream_has_output():
    from toolkit.tail import StreamLines

    lines = StreamLines()
    assert lines.feed("stdout.txt", b"one\ntw") == b"one\n"  # a partial line waits for its end
    assert lines.feed("stderr.txt", b"") == b""
    assert lines.feed("stdout.txt", b"o\n") == b"two\n"
    assert lines.finish() == b""


def test_tail_lines_are_marked_once_both_streams_have_output_and_never_split():
    from toolkit.tail import StreamLines

    lines = StreamLines()
    assert lines.feed("stdout.txt", b"rank 0 says hi\n") == b"rank 0 says hi\n"
    assert lines.feed("stderr.txt", b"Traceback\n  File x\nRuntimeEr") == b"stderr| Traceback\nstderr|   File x\n"
    assert lines.feed("stdout.txt", b"rank 2\nrank 3\n") == b"stdout| rank 2\nstdout| rank 3\n"
    assert lines.feed("stderr.txt", b"ror: boom") == b""
    assert lines.finish() == b"stderr| RuntimeError: boom\n"  # the last line, without its end, at the end


def test_a_recorded_task_that_ran_again_and_ended_otherwise_makes_the_job_listed():
    """send_task.py --retry: the counts alone tell that a recorded failure is a success now (its files come again)."""
    from toolkit.status import needs_listing

    now = models.BatchTaskCounts(active=0, running=0, completed=1, succeeded=1, failed=0)
    assert needs_listing(now, 1, wait=False, list_always=False, recorded_failed=1)
    assert not needs_listing(now, 1, wait=False, list_always=False, recorded_failed=0)
