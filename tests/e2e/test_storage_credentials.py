"""send_task.py stops before adding the task when the storage service refuses the credential the task's
uploads would use (Azurite checks keys and SAS signatures as Azure does): a wrong AZURE_STORAGE_KEY or a
SAS whose signature does not match. A SAS that merely may not list still gets only a note."""

import base64
import re

from tools import local_stack as stack_module

WRONG_KEY = base64.b64encode(bytes(range(64))).decode()


def send(run_script, ids, env):
    return run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, env=env)


def tampered(sas_url: str) -> str:
    """The SAS URL with one character of its signature changed (still valid base64)."""
    def flip(match: re.Match) -> str:
        signature = match.group(2)
        return match.group(1) + ("B" if signature[0] != "B" else "C") + signature[1:]
    return re.sub(r"(sig=)([^&]+)", flip, sas_url)


def test_refused_storage_credentials_stop_before_the_task_is_added(run_script, ids, local_stack, batch):
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    assert created.returncode == 0, created.stderr
    try:
        check_refusals(run_script, ids, local_stack, batch)
    finally:
        deleted = run_script("delete_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, "--yes",
                             "--poll_seconds", "0.2")
        assert deleted.returncode == 0, deleted.stderr


def check_refusals(run_script, ids, local_stack, batch):
    wrong_key = send(run_script, ids, {"BLOB_CONTAINER_URL": local_stack.container_url,
                                       "AZURE_STORAGE_KEY": WRONG_KEY})
    assert wrong_key.returncode == 2, wrong_key.stdout + wrong_key.stderr
    assert wrong_key.stderr.count("\n") == 1
    assert "refused the SAS signed with AZURE_STORAGE_KEY" in wrong_key.stderr
    assert "az storage account keys list --account-name devstoreaccount1" in wrong_key.stderr

    bad_signature = send(run_script, ids, {"BLOB_CONTAINER_URL": tampered(stack_module.container_sas_url(local_stack))})
    assert bad_signature.returncode == 2, bad_signature.stdout + bad_signature.stderr
    assert bad_signature.stderr.count("\n") == 1
    assert "refused the container SAS in BLOB_CONTAINER_URL or AZURE_STORAGE_SAS_TOKEN" in bad_signature.stderr
    assert "AZURE_STORAGE_KEY (" not in bad_signature.stderr

    assert list(batch.list_tasks(ids.job_id)) == []
