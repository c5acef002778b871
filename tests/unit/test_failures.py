"""toolkit/failures.py: the lines that say why, resize errors, and an upload SAS that had expired."""

import datetime

from azure.batch import models

from toolkit.failures import (
    excerpt,
    excerpt_lines,
    expired_upload,
    file_excerpt,
    last_bytes,
    resize_problem,
    upload_sas_expiry,
)
from toolkit.progress import task_result

UTC = datetime.timezone.utc
CRASH = """\
Hello from rank 0
Traceback (most recent call last):
  File "/usr/lib/python3/runpy.py", line 198, in _run_module_as_main
    return _run_code(code, main_globals, None,
  File "/repo/crash.py", line 9, in <module>
    raise RuntimeError("rank 1 broke")
RuntimeError: rank 1 broke
Abort(1) on node 1 (rank 1 in comm 0): application called MPI_Abort(MPI_COMM_WORLD, 1) - process 1
--------------------------------------------------------------------------
MPI_ABORT was invoked on rank 1 in communicator MPI_COMM_WORLD
with errorcode 1.
--------------------------------------------------------------------------
"""


def test_excerpt_keeps_the_end_of_the_traceback_not_mpiruns_banner():
    assert excerpt(CRASH, limit=3) == ['  File "/repo/crash.py", line 9, in <module>',
                                       '    raise RuntimeError("rank 1 broke")', "RuntimeError: rank 1 broke"]
    lines = excerpt(CRASH)
    assert lines[0] == '  File "/usr/lib/python3/runpy.py", line 198, in _run_module_as_main' and len(lines) == 5
    assert not any("MPI_ABORT" in line or "Traceback" in line or "rank 0" in line for line in lines)


def test_excerpt_leaves_out_the_interpreters_frozen_frames():
    text = ('Traceback (most recent call last):\n  File "<frozen runpy>", line 291, in run_path\n'
            '  File "<frozen runpy>", line 88, in _run_code\n  File "/repo/crash.py", line 9, in <module>\n'
            '    raise RuntimeError("broke")\nRuntimeError: broke\n')
    assert excerpt(text) == ['  File "/repo/crash.py", line 9, in <module>', '    raise RuntimeError("broke")',
                             "RuntimeError: broke"]


def test_excerpt_of_the_last_traceback_when_several_ranks_raised():
    two = CRASH.replace("rank 1 broke", "first") + CRASH.replace("rank 1 broke", "second")
    assert excerpt(two)[-1] == "RuntimeError: second"


def test_excerpt_without_a_traceback_is_the_last_non_blank_lines():
    text = "Collecting nosuchpkg\n\nERROR: Could not find a version that satisfies nosuchpkg==9\n" \
           "ERROR: No matching distribution found for nosuchpkg==9\n\n"
    assert excerpt(text, limit=2) == ["ERROR: Could not find a version that satisfies nosuchpkg==9",
                                      "ERROR: No matching distribution found for nosuchpkg==9"]
    assert excerpt("") == [] and excerpt("\n \n") == []


def test_excerpt_lines_mark_the_programs_words():
    assert excerpt_lines("stderr.txt (last lines)", ["boom"]) == ["    stderr.txt (last lines):", "    | boom"]
    assert excerpt_lines("stderr.txt", []) == []
    assert excerpt_lines("e", ["same", "same", "same", "other"]) == ["    e:", "    | same   [3 times]", "    | other"]


def test_file_excerpt_reads_only_the_end_of_a_large_file(tmp_path):
    path = tmp_path / "stderr.txt"
    path.write_text("noise\n" * 100_000 + "the real error\n")
    assert file_excerpt(path)[-1] == "the real error"
    assert file_excerpt(tmp_path / "missing.txt") == []


def test_last_bytes_keeps_the_tail_of_a_stream():
    chunks = [bytes([65 + i]) * 10 for i in range(10)]
    assert last_bytes(chunks, keep=15) == b"I" * 5 + b"J" * 10
    assert last_bytes([b"abc"], keep=15) == b"abc"
    assert last_bytes([], keep=15) == b""


def pool(code, message="", vm_size="standard_d2s_v5"):
    return models.BatchPool(id="p", vm_size=vm_size, resize_errors=[models.ResizeError(code=code, message=message)])


def test_a_quota_resize_error_is_lasting_and_names_the_quota_and_size():
    problem = resize_problem(pool("AccountCoreQuotaReached"))
    assert problem.lasting and problem.code == "AccountCoreQuotaReached"
    assert "dedicated core quota" in problem.advice and "standard_d2s_v5" in problem.advice
    assert "Request quota increase" in problem.advice
    spot = resize_problem(pool("AccountLowPriorityCoreQuotaReached"))
    assert spot.lasting and "Spot (low-priority) core quota" in spot.advice


def test_an_allocation_failure_may_cure_itself_and_an_unknown_code_keeps_the_services_words():
    failed = resize_problem(pool("AllocationFailed"))
    assert not failed.lasting and "--vm_size" in failed.advice
    assert not resize_problem(pool("AllocationTimedout")).lasting
    other = resize_problem(pool("SomethingNew", "The service says this.\nSecond line"))
    assert other.advice == "The service says this." and not other.lasting
    assert resize_problem(models.BatchPool(id="p")) is None


def uploaded_task(container_url, end, code="FileUploadAccessDenied", exit_code=0):
    return models.BatchTask(
        id="t", state="completed",
        execution_info=models.BatchTaskExecutionInfo(
            retry_count=0, requeue_count=0, exit_code=exit_code, result="failure", end_time=end,
            failure_info=models.BatchTaskFailureInfo(category="usererror", code=code, message="upload refused")),
        output_files=[models.OutputFile(
            file_pattern="../std*.txt",
            destination=models.OutputFileDestination(container=models.OutputFileBlobContainerDestination(
                container_url=container_url)),
            upload_options=models.OutputFileUploadConfiguration(upload_condition="taskcompletion"))])


URL = "http://127.0.0.1:10000/devstoreaccount1/c?sv=2025-01-05&se=2026-12-02T10%3A00%3A00Z&sp=cw&sig=abc"


def test_upload_sas_expiry_is_the_earlier_of_the_sas_and_its_delegation_key():
    end = datetime.datetime(2026, 12, 2, 11, tzinfo=UTC)
    assert upload_sas_expiry(uploaded_task(URL, end)) == datetime.datetime(2026, 12, 2, 10, tzinfo=UTC)
    keyed = URL + "&ske=2026-12-02T09%3A30%3A00Z"
    assert upload_sas_expiry(uploaded_task(keyed, end)) == datetime.datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    assert upload_sas_expiry(uploaded_task("http://127.0.0.1:10000/devstoreaccount1/c", end)) is None


def test_an_upload_refused_after_the_sas_expired_is_named_with_the_time_and_the_fix():
    task = uploaded_task(URL, datetime.datetime(2026, 12, 2, 10, 5, tzinfo=UTC))
    said = expired_upload(task)
    assert "expired at 2026-12-02 10:00:00 UTC, before the task ended at 2026-12-02 10:05:00 UTC" in said
    assert "TASK_MAX_WALL_CLOCK_MINUTES" in said and "sig=" not in said and "abc" not in said
    result, failed = task_result(task)
    assert failed and result == f"FAILED: {said}"


def test_an_upload_refused_while_the_sas_was_valid_is_not_blamed_on_expiry():
    before = uploaded_task(URL, datetime.datetime(2026, 12, 2, 9, 59, tzinfo=UTC))
    assert expired_upload(before) is None
    assert "could not be uploaded to the blob container (FileUploadAccessDenied" in task_result(before)[0]
    other = uploaded_task(URL, datetime.datetime(2026, 12, 2, 10, 5, tzinfo=UTC), code="FileUploadContainerNotFound")
    assert expired_upload(other) is None
