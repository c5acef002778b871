"""Headers and metadata as the real service writes them in Microsoft's recorded tests (sources and
abbreviations: tests/e2e/recorded_client.py): Location, DataServiceId, odata.metadata, client-request-id, files."""

import uuid
from urllib.parse import quote

import pytest

from tests.e2e.recorded_client import (
    IMAGE,
    add_job,
    uid,
    wait_task,
)

# ---------------------------------------------------------------- 10. headers and metadata

def test_location_on_every_201(raw):
    # CLI-jobs data entries 1-2, CLI-task: every 201 has Location; pool add -> the pool URL, task add -> the task
    # URL, job add -> {account}/jobs/job-1 (as DataServiceId; an internal name, not the job id: see DIFFS.md).
    pool_id = uid("loc")
    answer = raw("POST", "/pools", {"id": pool_id, "vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE,
                                    "targetDedicatedNodes": 0})
    assert answer.status == 201
    assert answer.headers.get("Location") == f"{raw.base}/pools/{pool_id}"
    assert answer.headers["DataServiceId"] == f"{raw.base}/pools/{pool_id}"
    job_id = uid("loc")
    answer = raw("POST", "/jobs", {"id": job_id, "poolInfo": {"poolId": pool_id}})
    assert answer.status == 201
    assert answer.headers.get("Location") == f"{raw.base}/jobs/job-1"
    assert answer.headers["DataServiceId"] == f"{raw.base}/jobs/job-1"
    answer = raw("POST", f"/jobs/{job_id}/tasks", {"id": "aaa", "commandLine": "/bin/true"})
    assert answer.status == 201
    assert answer.headers.get("Location") == f"{raw.base}/jobs/{job_id}/tasks/aaa"
    assert answer.headers["DataServiceId"] == f"{raw.base}/jobs/{job_id}/tasks/aaa"
    assert "ETag" in answer.headers and "Last-Modified" in answer.headers


@pytest.fixture(scope="module")
def metadata_job(raw, node_pool):
    """A job with a preparation task and one completed task, on the node pool."""
    job_id = add_job(raw, pool_id=node_pool, jobPreparationTask={"commandLine": "/bin/true"})
    assert raw("POST", f"/jobs/{job_id}/tasks", {"id": "a", "commandLine": "/bin/true"}).status == 201
    wait_task(raw, job_id, "a", "completed")
    return job_id


def first_node(raw, pool):
    return raw("GET", f"/pools/{pool}/nodes").json["value"][0]["id"]


# Names from the recordings: taskcountsresult/@Element (CLI-task), taskaddresult (CLI-task),
# poolnodecounts (SDK-create entry 2), nodes (SDK-files), jobpreparationandreleasetaskstatuslist (SDK-jobs-25 entry 10),
# jobs / jobs/@Element, pools / pools/@Element, tasks/@Element, files.
METADATA = [
    ("addtaskcollection", "taskaddresult",
     lambda raw, job, pool: raw("POST", f"/jobs/{job}/addtaskcollection",
                                {"value": [{"id": uid("t"), "commandLine": "/bin/true"}]})),
    ("taskcounts", "taskcountsresult/@Element", lambda raw, job, pool: raw("GET", f"/jobs/{job}/taskcounts")),
    ("nodecounts", "poolnodecounts", lambda raw, job, pool: raw("GET", "/nodecounts")),
    ("node list", "nodes", lambda raw, job, pool: raw("GET", f"/pools/{pool}/nodes")),
    ("node", "nodes/@Element",
     lambda raw, job, pool: raw("GET", f"/pools/{pool}/nodes/{first_node(raw, pool)}")),
    ("prep/release status", "jobpreparationandreleasetaskstatuslist",
     lambda raw, job, pool: raw("GET", f"/jobs/{job}/jobpreparationandreleasetaskstatus")),
    ("job list", "jobs", lambda raw, job, pool: raw("GET", "/jobs")),
    ("job", "jobs/@Element", lambda raw, job, pool: raw("GET", f"/jobs/{job}")),
    ("pool list", "pools", lambda raw, job, pool: raw("GET", "/pools")),
    ("pool", "pools/@Element", lambda raw, job, pool: raw("GET", f"/pools/{pool}")),
    ("pool $select", "pools/@Element",
     lambda raw, job, pool: raw("GET", f"/pools/{pool}", query={"$select": "id,state"})),
    ("task", "tasks/@Element", lambda raw, job, pool: raw("GET", f"/jobs/{job}/tasks/a")),
    ("task files", "files", lambda raw, job, pool: raw("GET", f"/jobs/{job}/tasks/a/files")),
]   # evaluateautoscale's AutoScaleRun: in test_pool_actions_answer_with_the_action_data_service_id


@pytest.mark.parametrize("what,name,fetch", METADATA, ids=[m[0] for m in METADATA])
def test_odata_metadata_names_match_the_service(raw, node_pool, metadata_job, what, name, fetch):
    answer = fetch(raw, metadata_job, node_pool)
    assert answer.status == 200, answer
    assert answer.json.get("odata.metadata") == f"{raw.base}/$metadata#{name}", what


def test_task_counts_carry_no_etag(raw, metadata_job):
    # CLI-task: GET /jobs/{j}/taskcounts -> 200 with no ETag / Last-Modified.
    answer = raw("GET", f"/jobs/{metadata_job}/taskcounts")
    assert "ETag" not in answer.headers and "Last-Modified" not in answer.headers


def test_client_request_id_is_echoed_only_when_asked(raw):
    # Every recording: requests carry client-request-id, responses have none (CLI sends return-client-request-id
    # false). REST reference: echoed when return-client-request-id is true.
    rid = str(uuid.uuid4())
    answer = raw("GET", "/jobs", headers={"client-request-id": rid})
    assert "client-request-id" not in answer.headers
    answer = raw("GET", "/jobs", headers={"client-request-id": rid, "return-client-request-id": "false"})
    assert "client-request-id" not in answer.headers
    answer = raw("GET", "/jobs", headers={"client-request-id": rid, "return-client-request-id": "true"})
    assert answer.headers.get("client-request-id") == rid


def test_text_files_are_text_plain_and_file_headers_are_written_as_the_service_does(raw, node_pool):
    # SDK-files: list contentType text/plain; HEAD/GET stdout.txt -> Content-Type text/plain,
    # ocp-batch-file-isdirectory "False", ocp-batch-file-url the whole URL percent-encoded, ocp-creation-time.
    job_id = add_job(raw, pool_id=node_pool)
    raw("POST", f"/jobs/{job_id}/tasks", {"id": "test_task", "commandLine": "/bin/sh -c 'echo hello world'"})
    wait_task(raw, job_id, "test_task", "completed")
    listed = {f["name"]: f for f in raw("GET", f"/jobs/{job_id}/tasks/test_task/files").json["value"]}
    assert listed["stdout.txt"]["properties"]["contentType"] == "text/plain"
    assert listed["stdout.txt"]["properties"]["contentLength"] == "12"
    url = f"{raw.base}/jobs/{job_id}/tasks/test_task/files/stdout.txt"
    for method in ("HEAD", "GET"):
        answer = raw(method, f"/jobs/{job_id}/tasks/test_task/files/stdout.txt")
        assert answer.status == 200, answer
        assert answer.headers["Content-Type"] == "text/plain"
        assert answer.headers["ocp-batch-file-isdirectory"] == "False"
        assert answer.headers["ocp-batch-file-url"] == quote(url, safe="")
        assert "ocp-creation-time" in answer.headers
    directory = raw("HEAD", f"/jobs/{job_id}/tasks/test_task/files/wd")
    assert directory.headers["ocp-batch-file-isdirectory"] == "True"


def test_add_task_collection_status_is_success_capitalised(raw):
    # CLI-task: addtaskcollection -> {"status":"Success","taskId":...,"eTag":...,"lastModified":...,"location":...}.
    job_id = add_job(raw)
    answer = raw("POST", f"/jobs/{job_id}/addtaskcollection",
                 {"value": [{"id": "xplatTask1", "commandLine": "/bin/true"},
                            {"id": "xplatTask2", "commandLine": "/bin/true"}]})
    assert answer.status == 200, answer
    for item in answer.json["value"]:
        assert item["status"] == "Success"
        assert item["location"] == f"{raw.base}/jobs/{job_id}/tasks/{item['taskId']}"


