"""OUTPUT_FILES: the patterns accepted and refused, the OutputFiles send_task.py builds from them (as JSON on
the wire), and that the emulator's node-agent upload (batch_emulator/runtime/blobio.py) names the blobs
JOB/TASK/<path relative to the program's directory>, which is what check_task.py downloads them as.

Expected values are literals (the REST API's field names, the blob names a user sees)."""

import json
import os
from pathlib import Path

import pytest
from azure.batch import models
from azure.core.serialization import AzureJSONEncoder

import send_task
from batch_emulator.runtime.blobio import match_output_files
from config_resources import ENV_FILE_VARIABLE, read_settings, task_settings
from tests.conftest import VALID_ENV
from toolkit.outputs import STD_FILES_PATTERN, is_result_name, result_file_upload, result_patterns
from toolkit.settings import ConfigError


def settings_with(patterns: str):
    return read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV, "OUTPUT_FILES": patterns})


def wire(model) -> dict:
    return json.loads(json.dumps(model.as_dict(exclude_readonly=True), cls=AzureJSONEncoder))


def test_patterns_are_split_on_spaces():
    settings = settings_with("  results/*   out/**/*.h5\tfinal.csv ")
    assert "OUTPUT_FILES" not in settings.problems
    assert task_settings(settings).output_files == ("results/*", "out/**/*.h5", "final.csv")


def test_no_output_files_by_default():
    assert task_settings(read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV})).output_files == ()


@pytest.mark.parametrize("pattern", ["/tmp/results/*", "../wd/out.txt", "results/../../x", "..",
                                     "$AZ_BATCH_NODE_SHARED_DIR/x", "${HOME}/x", "results\\..\\x"])
def test_a_pattern_that_leaves_the_working_directory_is_one_line_naming_it_and_the_fix(pattern):
    settings = settings_with(f"results/* {pattern}")
    with pytest.raises(ConfigError) as raised:
        task_settings(settings)
    message = str(raised.value)
    assert raised.value.variable == "OUTPUT_FILES"
    assert "\n" not in message
    assert message.startswith(f"OUTPUT_FILES has {pattern!r}, which leaves the program's working directory")
    assert "Set it to patterns relative to the program's working directory" in message


@pytest.mark.parametrize("pattern", ["a..b/*", "results/..hidden", "./results/*", "out/**/*.h5"])
def test_names_that_only_look_like_escapes_are_accepted(pattern):
    assert "OUTPUT_FILES" not in settings_with(pattern).problems


@pytest.mark.parametrize(("pattern", "file_pattern", "path"), [
    # Wildcards: path is the prefix, and Batch keeps each file's path below the leading fixed directories.
    ("results/**/*", "../results/**/*", "j1/t1/results"),
    ("results/*", "../results/*", "j1/t1/results"),
    ("out/run*/*.h5", "../out/run*/*.h5", "j1/t1/out"),
    ("*.csv", "../*.csv", "j1/t1"),
    ("./results//a?.txt", "../results/a?.txt", "j1/t1/results"),
    # No wildcard: path is the blob's whole name.
    ("results/final.txt", "../results/final.txt", "j1/t1/results/final.txt"),
])
def test_each_pattern_becomes_a_file_pattern_above_wd_and_a_path_under_job_task(pattern, file_pattern, path):
    assert result_file_upload(pattern, "j1/t1") == (file_pattern, path)


def test_build_task_adds_one_output_file_per_pattern_after_the_std_files():
    settings = task_settings(settings_with("results/**/* final.txt"))
    body = wire(send_task.build_task(settings, "j1", "t1", 2, "run-42"))
    url = ("https://mystorage.blob.core.windows.net/outputs?sv=2025-01-05&se=2099-01-01T00%3A00%3A00Z&sr=c"
           "&sp=racwl&sig=SECRETSIGNATURE")
    assert body["outputFiles"] == [
        {"filePattern": "../std*.txt", "destination": {"container": {"containerUrl": url, "path": "j1/t1"}},
         "uploadOptions": {"uploadCondition": "taskcompletion"}},
        {"filePattern": "../results/**/*",
         "destination": {"container": {"containerUrl": url, "path": "j1/t1/results"}},
         "uploadOptions": {"uploadCondition": "taskcompletion"}},
        {"filePattern": "../final.txt",
         "destination": {"container": {"containerUrl": url, "path": "j1/t1/final.txt"}},
         "uploadOptions": {"uploadCondition": "taskcompletion"}},
    ]


def test_without_output_files_the_task_uploads_only_the_std_files():
    body = wire(send_task.build_task(task_settings(settings_with("")), "j1", "t1", 2))
    assert [output["filePattern"] for output in body["outputFiles"]] == ["../std*.txt"]


def write(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)


@pytest.mark.parametrize(("pattern", "blobs"), [
    ("results/**/*", {"results/a.txt", "results/sub/b.bin", "results/sub/deeper/c.h5"}),
    ("results/*", {"results/a.txt"}),
    ("results/**/*.h5", {"results/sub/deeper/c.h5"}),
    ("*.csv", {"top.csv"}),
    ("results/a.txt", {"results/a.txt"}),
])
def test_the_emulators_upload_names_each_blob_job_task_and_its_path_in_the_program_directory(
        tmp_path, pattern, blobs):
    # The primary's task directory is $AZ_BATCH_TASK_SHARED_DIR (where the program runs); wd is below it.
    task_dir = tmp_path / "task"
    write(task_dir, "results/a.txt", "results/sub/b.bin", "results/sub/deeper/c.h5", "results/.hidden",
          "top.csv", "stdout.txt", "wd/results/not-this.txt")
    file_pattern, path = result_file_upload(pattern, "j1/t1")
    found = match_output_files(file_pattern, str(task_dir / "wd"), {})
    wildcard = any(c in file_pattern for c in "*?[")
    names = {f"{path}/{relative}" if wildcard else path for _, relative in found}
    assert names == {f"j1/t1/{blob}" for blob in blobs}
    assert all(os.path.isfile(full) for full, _ in found)


def test_a_tasks_result_patterns_are_its_output_files_but_the_std_files():
    def output(file_pattern: str) -> models.OutputFile:
        return models.OutputFile(file_pattern=file_pattern, destination=models.OutputFileDestination(
            container=models.OutputFileBlobContainerDestination(container_url="https://x/c", path="j/t")),
            upload_options=models.OutputFileUploadConfiguration(upload_condition="taskcompletion"))

    task = models.BatchTask(id="t", output_files=[output(STD_FILES_PATTERN), output("../results/**/*")])
    assert result_patterns(task) == ["results/**/*"]
    assert result_patterns(models.BatchTask(id="t", output_files=[output(STD_FILES_PATTERN)])) == []


@pytest.mark.parametrize(("name", "kept"), [
    ("results/a.txt", True), ("a.bin", True), ("stdout.txt", False), ("stderr.txt", False),
    ("../x", False), ("results/../../x", False), ("/etc/passwd", False), ("a//b", False), ("", False),
    ("subtasks/1/stderr.txt", False),
])
def test_only_names_that_stay_under_the_tasks_output_directory_are_downloaded(name, kept):
    assert is_result_name(name) is kept
