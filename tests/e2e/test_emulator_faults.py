"""Fault injection, end to end: the real azure-batch SDK (and azure-core's retry policy) against
`python -m batch_emulator --fault ...` in a subprocess, with rules added through the control endpoint.

One emulator serves the module; every test clears the rules it added and uses its own ids.
Clients set short timeouts and small retry budgets, so no test can stall.
"""

import json
import random
import time
import urllib.error
import urllib.request

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)

from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from batch_emulator.faults import FaultControlError, add_fault, clear_faults, list_faults
from tests.conftest import wait_for
from tests.e2e.emulator_process import VM, start_emulator

# Given on the command line, so the flag is tested too: the first read of pool "cli-pool" gets a 503.
CLI_FAULT = "503 GET /pools/cli-pool count=1 retry-after=2"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults-root")
    log = open(root.parent / "faults-emulator-stderr.log", "w+")
    proc, url = start_emulator(root, log, "--verbose", "--fault", CLI_FAULT)
    try:
        yield type("Emulator", (), {"url": url, "proc": proc, "log": log})
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        log.seek(0)
        assert DEFAULT_ACCOUNT_KEY not in log.read()
        log.close()


@pytest.fixture(autouse=True)
def no_rules_left(emulator):
    yield
    clear_faults(emulator.url)


def make_client(url, **retry):
    """A client that cannot stall: 5 s timeouts, and retries only as the test asks (none by default)."""
    retry.setdefault("retry_total", 0)
    return BatchClient(url, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY),
                       connection_timeout=5, read_timeout=5, **retry)


@pytest.fixture(scope="module")
def client(emulator):
    return make_client(emulator.url)


@pytest.fixture(scope="module")
def retrying(emulator):
    """azure-core's default retry policy (3 status retries, Retry-After honoured), a shorter backoff."""
    return make_client(emulator.url, retry_total=4, retry_backoff_factor=0.1)


def new_job(client, job_id):
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="nowhere")))


def rule(emulator, rule_id):
    return next(r for r in list_faults(emulator.url) if r["id"] == rule_id)


def timed(call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


def test_command_line_fault_answers_the_service_error_body_with_retry_after(emulator, client):
    with pytest.raises(HttpResponseError) as caught:
        client.get_pool("cli-pool")
    err = caught.value
    assert (err.status_code, err.error.code) == (503, "ServerBusy")
    assert err.response.headers["Retry-After"] == "2"
    assert err.error.message.startswith("The server is currently unable to receive requests.")
    with pytest.raises(ResourceNotFoundError):   # count=1: the next read reaches the emulator
        client.get_pool("cli-pool")
    [cli_rule] = [r for r in list_faults(emulator.url) if r["path"] == "/pools/cli-pool"]
    assert (cli_rule["kind"], cli_rule["retry_after"], cli_rule["fired"], cli_rule["active"]) == ("503", 2, 1, False)


def test_503_with_retry_after_on_a_get_is_retried_after_waiting(emulator, client, retrying):
    new_job(client, "busy")
    added = add_fault(emulator.url, kind="503", method="GET", path="/jobs/busy", count=1, retry_after=1)
    job, elapsed = timed(retrying.get_job, "busy")
    assert job.id == "busy" and elapsed >= 1.0
    assert (rule(emulator, added["id"])["fired"], rule(emulator, added["id"])["active"]) == (1, False)


def test_429_on_a_post_is_retried_because_it_carries_retry_after(emulator, retrying):
    add_fault(emulator.url, kind="429", method="POST", path="/jobs", count=1, retry_after=1)
    _, elapsed = timed(new_job, retrying, "throttled")
    assert retrying.get_job("throttled").id == "throttled" and elapsed >= 1.0
    assert list_faults(emulator.url)[0]["fired"] == 1


def test_500_on_a_post_is_retried_three_times_then_raised(emulator, client, retrying):
    add_fault(emulator.url, kind="500", method="POST", path="/jobs", count=2)
    new_job(retrying, "flaky")                       # two 500s, then the third try creates it
    assert client.get_job("flaky").id == "flaky"
    clear_faults(emulator.url)
    added = add_fault(emulator.url, kind="500", method="POST", path="/jobs", count=10)
    with pytest.raises(HttpResponseError) as caught:
        new_job(retrying, "broken")
    assert (caught.value.status_code, caught.value.error.code) == (500, "InternalError")
    assert rule(emulator, added["id"])["fired"] == 4  # 1 try + azure-core's 3 status retries
    with pytest.raises(ResourceNotFoundError):
        client.get_job("broken")                     # before: the request was never applied


def test_close_after_a_create_cuts_the_answer_but_the_task_exists(emulator, client):
    new_job(client, "cut")
    add_fault(emulator.url, kind="close", method="POST", path="/jobs/cut/tasks", when="after", count=1)
    with pytest.raises(ServiceResponseError):
        client.create_task("cut", m.BatchTaskCreateOptions(id="t1", command_line="true"))
    assert client.get_task("cut", "t1").id == "t1"   # it reached the service before the connection broke
    with pytest.raises(HttpResponseError) as caught:   # so a blind retry of the POST meets a conflict
        client.create_task("cut", m.BatchTaskCreateOptions(id="t1", command_line="true"))
    assert caught.value.error.code == "TaskExists"


def test_close_and_drop_before_leave_nothing_behind(emulator, client):
    new_job(client, "nothing")
    add_fault(emulator.url, kind="close", method="POST", path="/jobs/nothing/tasks", count=1)
    add_fault(emulator.url, kind="drop", method="POST", path="/jobs/nothing/tasks", count=1)
    for _ in range(2):
        with pytest.raises(AzureError) as caught:
            client.create_task("nothing", m.BatchTaskCreateOptions(id="t1", command_line="true"))
        assert getattr(caught.value, "status_code", None) is None   # a broken exchange, not an HTTP error
    with pytest.raises(ResourceNotFoundError):
        client.get_task("nothing", "t1")
    assert [r["fired"] for r in list_faults(emulator.url)] == [1, 1]


def test_drop_after_applying_and_a_get_cut_then_retried(emulator, client, retrying):
    new_job(client, "dropped")
    add_fault(emulator.url, kind="drop", method="POST", path="/jobs/dropped/tasks", when="after", count=1)
    with pytest.raises(ServiceResponseError):
        client.create_task("dropped", m.BatchTaskCreateOptions(id="t1", command_line="true"))
    add_fault(emulator.url, kind="close", method="GET", path="/jobs/dropped/tasks/t1", count=1)
    assert retrying.get_task("dropped", "t1").id == "t1"   # azure-core retries a GET whose answer broke


def test_delay_longer_than_the_read_timeout_times_out(emulator, client):
    new_job(client, "slow")
    add_fault(emulator.url, kind="delay", method="GET", path="/jobs/slow", delay=1.5, count=1)
    with pytest.raises(ServiceResponseTimeoutError):
        client.get_job("slow", read_timeout=0.5)
    add_fault(emulator.url, kind="delay", method="GET", path="/jobs/slow", delay=0.3, count=1)
    job, elapsed = timed(client.get_job, "slow")
    assert job.id == "slow" and elapsed >= 0.3


def test_a_seeded_share_of_requests_fails_as_predicted(emulator, client):
    new_job(client, "share")
    rate, seed, n = 0.3, 2024, 40
    draws = random.Random(seed)
    expected = sum(draws.random() < rate for _ in range(n))
    add_fault(emulator.url, kind="503", method="GET", path="/jobs/share/taskcounts", rate=rate, seed=seed)
    busy = 0
    for _ in range(n):
        try:
            client.get_job_task_counts("share")
        except HttpResponseError as err:
            assert err.error.code == "ServerBusy"
            busy += 1
    assert busy == expected and 0 < busy < n
    [shown] = list_faults(emulator.url)
    assert (shown["matched"], shown["fired"], shown["active"]) == (n, expected, True)


def test_a_file_download_cut_mid_body_fails_instead_of_returning_less(emulator, client):
    client.create_pool(m.BatchPoolCreateOptions(id="files", vm_size="standard_d2s_v3",
                                                virtual_machine_configuration=VM, target_dedicated_nodes=1))
    client.create_job(m.BatchJobCreateOptions(id="files", pool_info=m.BatchPoolInfo(pool_id="files")))
    client.create_task("files", m.BatchTaskCreateOptions(id="t1", command_line="/bin/bash -c 'seq 1 20000'"))
    wait_for(lambda: client.get_task("files", "t1").state == "completed", 20, "task t1 to complete")
    whole = b"".join(client.download_task_file("files", "t1", "stdout.txt"))
    assert len(whole) > 100_000
    add_fault(emulator.url, kind="close", method="GET", path="/jobs/files/tasks/t1/files/stdout.txt", count=1)
    with pytest.raises(AzureError):
        b"".join(client.download_task_file("files", "t1", "stdout.txt"))
    assert b"".join(client.download_task_file("files", "t1", "stdout.txt")) == whole


def test_control_endpoint_lists_clears_is_signed_and_never_faulted(emulator, client):
    clear_faults(emulator.url)   # the command line's rule too, when this test runs alone
    everything = add_fault(emulator.url, kind="503", retry_after=0)   # every request... but its own
    assert everything["kind"] == "503" and everything["path"] is None
    with pytest.raises(HttpResponseError):
        client.list_pools().next()
    listed = list_faults(emulator.url)
    assert [(r["id"], r["fired"], r["active"]) for r in listed] == [(everything["id"], 1, True)]
    assert clear_faults(emulator.url, rule_id=everything["id"]) == 1
    assert list_faults(emulator.url) == []
    add_fault(emulator.url, kind="500")
    add_fault(emulator.url, kind="delay", delay=0.1)
    assert clear_faults(emulator.url) == 2
    with pytest.raises(FaultControlError, match=r"400 InvalidRequestBody.*kind must be one of"):
        add_fault(emulator.url, kind="418")
    with pytest.raises(FaultControlError, match="403 AuthenticationFailed"):
        add_fault(emulator.url, key="c2VjcmV0LWtleS10aGF0LWlzLW5vdC10aGUtZW11bGF0b3JzLWtleQ==", kind="503")
    unsigned = urllib.request.Request(emulator.url + "/_emulator/faults", method="DELETE")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(unsigned, timeout=5)
    assert caught.value.code == 403 and json.loads(caught.value.read())["code"] == "AuthenticationFailed"
    assert list_faults(emulator.url) == []
