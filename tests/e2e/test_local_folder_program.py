"""A local folder as the program (REPOSITORY_URL names a plain folder, not git), end to end against the local
stack: create_pool_job.py packs it and uploads it once to Azurite, the nodes unpack it where the clone would
be, the task runs it; no command line a node runs names the folder; the same content reuses the blob, changed
content is a job that no longer fits."""

import pytest
from azure.storage.blob import ContainerClient

from tests.e2e.conftest import ScriptRunner, batch_client
from tests.git_repos import NODE_FILES, write_files
from tools import local_stack as stack_module

POLL = ("--poll_seconds", "0.3")
HELLO = "from mpi4py import MPI\nprint(f'hello from rank {MPI.COMM_WORLD.rank} of {MPI.COMM_WORLD.size}')\n"


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory):
    """A stack of its own: its container holds only this module's programs."""
    try:
        with stack_module.start_stack(tmp_path_factory.mktemp("folder-stack")) as stack:
            yield stack
    except stack_module.LocalStackError as error:
        pytest.fail(str(error), pytrace=False)


def program_blobs(stack) -> list[str]:
    container = ContainerClient.from_container_url(stack_module.container_sas_url(stack))
    return [blob.name for blob in container.list_blobs(name_starts_with="programs/")]


def test_a_plain_folder_is_packed_uploaded_once_and_run(own_stack, ids, tmp_path):
    run_script, batch = ScriptRunner(own_stack, tmp_path), batch_client(own_stack)
    folder = tmp_path / "my program"  # not a git repository; a space, as in any user's path
    write_files(folder, {**NODE_FILES, "src/hello.py": HELLO})
    env = {"REPOSITORY_URL": str(folder), "PROGRAM": "src/hello.py"}

    def create(job_id, **more):
        return run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", job_id, env={**env, **more})

    def run_task(job_id, **more):
        sent = run_script("send_task.py", "--job_id", job_id, "--task_id", ids.task_id, env={**env, **more})
        assert sent.returncode == 0, sent.stdout + sent.stderr
        checked = run_script("check_task.py", "--job_id", job_id, "--wait", *POLL, env={**env, **more})
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "completed 1 (succeeded 1, failed 0)" in checked.stdout
        return (tmp_path / "outputs" / job_id / ids.task_id / "stdout.txt").read_text()

    created = create(ids.job_id)
    assert created.returncode == 0, created.stdout + created.stderr
    assert f"Packed REPOSITORY_URL {folder} for the nodes: 4 files, " in created.stdout
    assert "Uploaded the program to the container as programs/" in created.stdout
    assert "Note: the nodes download the program with the configured container SAS, until " in created.stdout
    [blob] = program_blobs(own_stack)
    assert "hello from rank 0 of 4" in run_task(ids.job_id)

    job = batch.get_job(ids.job_id)
    preparation = job.job_preparation_task
    [resource] = preparation.resource_files
    assert resource.http_url.split("?")[0] == f"{own_stack.container_url}/{blob}"
    assert "tar -xzf program-" in preparation.command_line
    task = batch.get_task(ids.job_id, ids.task_id)
    for line in (preparation.command_line, task.command_line, task.multi_instance_settings.coordination_command_line):
        assert str(folder) not in line and str(tmp_path) not in line

    # The same content on another job, this time with the storage key (the nodes get a SAS of the blob only).
    with_key = {"BLOB_CONTAINER_URL": own_stack.container_url, "AZURE_STORAGE_KEY": own_stack.storage_key}
    again = create(ids.job_id + "-2", **with_key)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"The program is already in the container as {blob} (same content); reusing it." in again.stdout
    assert "Note: the nodes download the program with a read-only link of its blob until " in again.stdout
    assert program_blobs(own_stack) == [blob]
    assert "hello from rank 1 of 4" in run_task(ids.job_id + "-2", **with_key)
    [resource] = batch.get_job(ids.job_id + "-2").job_preparation_task.resource_files
    assert "sr=b" in resource.http_url and "sp=r&" in resource.http_url  # read-only, this blob only

    write_files(folder, {"src/hello.py": HELLO + "print('changed')\n"})
    changed = create(ids.job_id)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert f"Job [{ids.job_id}] already exists but its preparation task unpacks {folder} with content sha256 " \
        in changed.stderr
    assert "(the folder changed since the job was made): its tasks would not run what you asked for." \
        in changed.stderr
    assert program_blobs(own_stack) == [blob]  # the drift check comes before any upload
