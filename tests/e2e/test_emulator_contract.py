"""Contract of the Batch emulator: the real azure-batch SDK against `python -m batch_emulator` in a subprocess.

One emulator serves the whole module; each test uses its own pool/job ids. Output files go
to Azurite when tools/local_stack.py can start it, and always to a closed loopback port.
"""

import base64
import contextlib
import datetime
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import urllib.error
import urllib.request
from email.utils import formatdate

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from tests.conftest import process_alive, wait_for
from tests.e2e.emulator_process import VM, start_emulator
from toolkit.batch import wire_value
from tools import local_stack

# Rank 0 prints for all ranks (gathered), so ranks' output cannot interleave.
MPI_COMMAND = ("/bin/bash -c 'mpirun -np 4 --host $AZ_BATCH_HOST_LIST python3 -c "
               "\"from mpi4py import MPI; c = MPI.COMM_WORLD; g = c.gather(c.allreduce(c.rank)); "
               "c.rank or print(\\\"size\\\", c.size, \\\"sums\\\", g)\"'")


def _descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    root = tmp_path_factory.mktemp("emulator-root")
    log = open(root.parent / "emulator-stderr.log", "w+")
    proc, url = start_emulator(root, log)
    yield type("Emulator", (), {"url": url, "proc": proc, "root": root})
    # Leave work running, so shutdown has process trees (bash + sleep) to clean up.
    client = make_client(url)
    client.create_pool(m.BatchPoolCreateOptions(id="shutdown", vm_size="x", virtual_machine_configuration=VM,
                                                target_dedicated_nodes=1))
    client.create_job(m.BatchJobCreateOptions(id="shutdown", pool_info=m.BatchPoolInfo(pool_id="shutdown")))
    client.create_task("shutdown", m.BatchTaskCreateOptions(
        id="sleeper", command_line="/bin/bash -c 'sleep 300 & sleep 301; wait'"))
    wait_for(lambda: len(_descendants(proc.pid)) >= 3, what="the sleeper processes")
    started = _descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert proc.stdout.read() == ""   # exactly one line on stdout
    leftovers = [pid for pid in started if process_alive(pid)]
    assert leftovers == [], f"processes left behind: {leftovers}"
    log.seek(0)
    assert DEFAULT_ACCOUNT_KEY not in log.read()


def make_client(url, key=DEFAULT_ACCOUNT_KEY):
    return BatchClient(url, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, key), retry_total=0)


@pytest.fixture(scope="module")
def client(emulator):
    return make_client(emulator.url)


def fixed_pool(client, pool_id, nodes=1, **extra):
    client.create_pool(m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=VM,
                                                target_dedicated_nodes=nodes, **extra))


def job_with(client, job_id, pool_id, *tasks, **extra):
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id), **extra))
    for task in tasks:
        client.create_task(job_id, task)


def completed(client, job_id, task_id, timeout=30):
    return wait_for(lambda: (t := client.get_task(job_id, task_id)).state == "completed" and t,
                    timeout, f"task {task_id} to complete")


def error_of(call, *args, **kwargs):
    with pytest.raises(HttpResponseError) as caught:
        call(*args, **kwargs)
    return caught.value


# ---- pools ----

def test_pools_create_get_list_page_filter_and_delete(client):
    for suffix in "abc":
        fixed_pool(client, f"page-{suffix}", nodes=0, metadata=[m.BatchMetadataItem(name="maxNodes", value="4")])
    pool = client.get_pool("page-a")
    assert (pool.state, pool.vm_size, pool.target_dedicated_nodes) == ("active", "standard_d2s_v3", 0)
    assert pool.metadata[0].name == "maxNodes" and pool.metadata[0].value == "4"
    # "Spread" capitalised, as the service answers (tests/e2e/test_emulator_recorded_pools.py)
    assert pool.task_scheduling_policy.node_fill_type == "Spread" and pool.enable_auto_scale is False
    assert client.pool_exists("page-b") is True
    paged = client.list_pools(filter="startswith(id,'page-') and state eq 'active'", max_results=1)
    assert [p.id for p in paged] == ["page-a", "page-b", "page-c"]
    selected = list(client.list_pools(filter="id eq 'page-c'", select=["id", "state"]))
    assert [(p.id, p.state, p.vm_size) for p in selected] == [("page-c", "active", None)]
    client.begin_delete_pool("page-c", polling_interval=0).result()
    assert error_of(client.get_pool, "page-c").error.code == "PoolNotFound"


def test_autoscale_settings_round_trip_and_evaluate(client):
    client.create_pool(m.BatchPoolCreateOptions(
        id="auto", vm_size="standard_d2s_v3", virtual_machine_configuration=VM, enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes = 1;", auto_scale_evaluation_interval="PT5M"))
    pool = wait_for(lambda: (p := client.get_pool("auto")).auto_scale_run and p, what="autoScaleRun")
    assert pool.enable_auto_scale and pool.auto_scale_formula == "$TargetDedicatedNodes = 1;"
    assert pool.auto_scale_run.results.startswith("$TargetDedicatedNodes=1;")   # evaluated an interval after creation
    run = client.evaluate_pool_auto_scale("auto", m.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula="x=1;"))
    assert run.results == "$TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;x=1"
    client.disable_pool_auto_scale("auto")
    assert error_of(client.evaluate_pool_auto_scale, "auto",
                    m.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula="x=1;")).status_code == 409
    wait_for(lambda: client.get_pool("auto").allocation_state == "steady", what="its node")   # no enable while resizing
    client.enable_pool_auto_scale("auto",
                                  m.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes=0;"))
    assert client.get_pool("auto").enable_auto_scale is True
    bad = error_of(client.create_pool, m.BatchPoolCreateOptions(
        id="bad", vm_size="x", virtual_machine_configuration=VM, enable_auto_scale=True, target_dedicated_nodes=1,
        auto_scale_formula="x"))
    assert (bad.status_code, bad.error.code) == (400, "InvalidPropertyValue")


def test_resize_nodes_counts_and_images(client):
    fixed_pool(client, "resize", nodes=0)
    client.begin_resize_pool("resize", m.BatchPoolResizeOptions(target_dedicated_nodes=2), polling_interval=0).result()
    pool = client.get_pool("resize")
    assert (pool.allocation_state, pool.current_dedicated_nodes) == ("steady", 2)
    nodes = list(client.list_nodes("resize"))
    assert {n.state for n in nodes} == {"idle"} and all(n.id.startswith("tvmps_") for n in nodes)
    assert client.get_node("resize", nodes[0].id).ip_address.startswith("127.")
    counts = [c for c in client.list_pool_node_counts(filter="poolId eq 'resize'")]
    assert counts[0].dedicated.idle == 2 and counts[0].dedicated.total == 2
    images = list(client.list_supported_images(filter="osType eq 'linux' and verificationType eq 'verified'"))
    skus = {(i.image_reference.sku, i.node_agent_sku_id) for i in images}
    assert ("server", "batch.node.ubuntu 24.04") in skus and ("server-gen1", "batch.node.ubuntu 24.04") in skus
    assert all(i.node_agent_sku_id != "batch.node.ubuntu 20.04" for i in images)
    eol = {i.image_reference.sku: i.batch_support_end_of_life for i in images}
    assert eol["22_04-lts"].year == 2027 and eol["server"] is None


def test_start_task_runs_on_every_node_before_it_is_idle(client):
    fixed_pool(client, "started", nodes=1, start_task=m.BatchStartTask(
        command_line="/bin/bash -c 'echo ready > $AZ_BATCH_NODE_SHARED_DIR/ready.txt'", wait_for_success=True))
    fixed_pool(client, "broken", nodes=1,
               start_task=m.BatchStartTask(command_line="/bin/false", max_task_retry_count=1))
    node = wait_for(lambda: [n for n in client.list_nodes("started") if n.state == "idle"], what="idle node")[0]
    assert (node.start_task_info.state, node.start_task_info.exit_code) == ("completed", 0)
    assert b"".join(client.download_node_file("started", node.id, "shared/ready.txt")) == b"ready\n"
    broken = wait_for(lambda: [n for n in client.list_nodes("broken") if n.state == "starttaskfailed"],
                      what="starttaskfailed")[0]
    info = broken.start_task_info
    assert (info.result, info.exit_code, info.retry_count, info.failure_info.code) == \
        ("failure", 1, 1, "FailureExitCode")


# ---- errors and authentication ----

def test_conflicts_and_missing_resources_use_the_service_codes(client):
    fixed_pool(client, "codes", nodes=0)
    assert error_of(fixed_pool, client, "CODES", 0).error.code == "PoolExists"
    job_with(client, "codes", "codes", m.BatchTaskCreateOptions(id="t", command_line="true"))
    err = error_of(job_with, client, "Codes", "codes")
    assert isinstance(err, ResourceExistsError) and err.error.code == "JobExists"
    assert error_of(client.create_task, "codes", m.BatchTaskCreateOptions(id="T", command_line="x")).error.code \
        == "TaskExists"
    for call, args, code in ((client.get_pool, ("nope",), "PoolNotFound"), (client.get_job, ("nope",), "JobNotFound"),
                             (client.get_task, ("codes", "nope"), "TaskNotFound"),
                             (client.get_node, ("codes", "nope"), "NodeNotFound")):
        err = error_of(call, *args)
        assert isinstance(err, ResourceNotFoundError) and err.error.code == code
    bad = error_of(fixed_pool, client, "bad id!", 0)
    assert (bad.status_code, bad.error.code) == (400, "InvalidPropertyValue")
    assert {d.code for d in bad.error.details} >= {"PropertyName", "PropertyValue", "Reason"}


def test_wrong_key_is_refused_with_403(emulator):
    other = base64.b64encode(b"not the key of this emulator at all!").decode()
    err = error_of(lambda: list(make_client(emulator.url, other).list_pools()))
    assert (err.status_code, err.error.code) == (403, "AuthenticationFailed")


def _signed_get(url, path_and_query):
    date = formatdate(usegmt=True)
    text = f"GET\n\n\n\n\n\n\n\n\n\n\n\nocp-date:{date}\n/{DEFAULT_ACCOUNT_NAME}{path_and_query.split('?')[0]}"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path_and_query).query)
    text += "".join(f"\n{k}:{query[k][0]}" for k in sorted(query))
    sig = base64.b64encode(hmac.new(base64.b64decode(DEFAULT_ACCOUNT_KEY), text.encode(), hashlib.sha256).digest())
    request = urllib.request.Request(url + path_and_query, headers={
        "ocp-date": date, "Authorization": f"SharedKey {DEFAULT_ACCOUNT_NAME}:{sig.decode()}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_older_api_version_signed_by_hand_and_missing_api_version(emulator):
    status, body = _signed_get(emulator.url, "/pools?api-version=2024-02-01.19.0&maxresults=2")
    assert status == 200 and isinstance(body["value"], list)
    status, body = _signed_get(emulator.url, "/pools")
    assert (status, body["code"]) == (400, "MissingRequiredQueryParameter")


# ---- running work ----

def test_task_collection_failure_counts_and_files(client):
    fixed_pool(client, "work", nodes=1, task_slots_per_node=4)
    job_with(client, "work", "work", m.BatchTaskCreateOptions(id="exists", command_line="true"))
    result = client.create_tasks("work", [
        m.BatchTaskCreateOptions(id="ok", command_line="/bin/bash -c 'mkdir -p out; echo -n 0123456789 > out/x.txt'"),
        m.BatchTaskCreateOptions(id="fail", command_line="/bin/bash -c 'echo oops >&2; exit 3'"),
        m.BatchTaskCreateOptions(id="missing", command_line="/no/such/program"),
        m.BatchTaskCreateOptions(id="retried", command_line="/bin/false",
                                 constraints=m.BatchTaskConstraints(max_task_retry_count=2)),
        m.BatchTaskCreateOptions(id="exists", command_line="true")])
    # The service writes "Success" capitalised (tests/e2e/test_emulator_recorded_headers.py): compare as clients must.
    assert {r.task_id: wire_value(r.status) for r in result.result_values} == {
        "ok": "success", "fail": "success", "missing": "success", "retried": "success", "exists": "clienterror"}
    ok = completed(client, "work", "ok")
    assert (ok.execution_info.result, ok.execution_info.exit_code, ok.node_info.pool_id) == ("success", 0, "work")
    fail = completed(client, "work", "fail")
    info = fail.execution_info
    assert (info.result, info.exit_code, info.failure_info.code, info.failure_info.category) == \
        ("failure", 3, "FailureExitCode", "usererror")
    assert b"".join(client.download_task_file("work", "fail", "stderr.txt")) == b"oops\n"
    missing = completed(client, "work", "missing")
    assert missing.execution_info.failure_info.code == "CommandProgramNotFound"
    assert missing.execution_info.exit_code is None
    retried = completed(client, "work", "retried")
    assert (retried.execution_info.retry_count, retried.execution_info.exit_code) == (2, 1)
    names = {f.name: f for f in client.list_task_files("work", "ok", recursive=True)}
    assert {"stdout.txt", "stderr.txt", "wd", "wd/out", "wd/out/x.txt"} <= set(names)
    assert names["wd"].is_directory and names["wd/out/x.txt"].properties.content_length == 10
    top = {f.name for f in client.list_task_files("work", "ok", filter="startswith(name,'std')")}
    assert top == {"stdout.txt", "stderr.txt"}
    assert b"".join(client.download_task_file("work", "ok", "wd/out/x.txt", ocp_range="bytes=2-4")) == b"234"
    props = client.get_task_file_properties("work", "ok", "wd/out/x.txt")
    assert props.content_length == 10 and props.is_directory is False
    counts = client.get_job_task_counts("work")
    assert (counts.task_counts.completed, counts.task_counts.succeeded, counts.task_counts.failed) == (5, 2, 3)
    assert counts.task_slot_counts.completed == 5
    failed = [t.id for t in client.list_tasks("work", filter="executionInfo/result eq 'failure'")]
    assert sorted(failed) == ["fail", "missing", "retried"]
    client.delete_task("work", "fail")
    assert error_of(client.get_task, "work", "fail").error.code == "TaskNotFound"


def test_max_wall_clock_and_terminate_end_running_tasks(client):
    fixed_pool(client, "limits", nodes=2)
    job_with(client, "limits", "limits", m.BatchTaskCreateOptions(
        id="slow", command_line="/bin/sleep 30", constraints=m.BatchTaskConstraints(max_wall_clock_time="PT1S")),
        m.BatchTaskCreateOptions(id="stopme", command_line="/bin/sleep 30"))
    slow = completed(client, "limits", "slow", timeout=10)
    assert (slow.execution_info.result, slow.execution_info.failure_info.code) == ("failure", "TaskEnded")
    wait_for(lambda: client.get_task("limits", "stopme").state == "running", what="stopme to run")
    client.terminate_task("limits", "stopme")
    stopped = completed(client, "limits", "stopme", timeout=10)
    assert stopped.execution_info.failure_info.code == "TaskEnded"
    assert error_of(client.terminate_task, "limits", "stopme").error.code == "TaskCompleted"
    job_with(client, "slowprep", "limits", m.BatchTaskCreateOptions(id="t", command_line="/bin/true"),
             job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/sleep 1"))
    wait_for(lambda: client.get_task("slowprep", "t").state == "preparing", what="preparing")
    client.terminate_task("slowprep", "t")
    ended = completed(client, "slowprep", "t", timeout=10)
    assert (ended.execution_info.exit_code, ended.execution_info.failure_info.code) == (None, "TaskEnded")
    # azure.batch.models does not export BatchJobTerminateOptions: the body goes as the REST JSON it stands for.
    client.begin_terminate_job("limits", {"terminateReason": "Enough"},
                               polling_interval=0).result()
    job = client.get_job("limits")
    assert (job.state, job.execution_info.termination_reason) == ("completed", "Enough")
    client.begin_delete_job("limits", polling_interval=0).result()
    assert error_of(client.get_job, "limits").error.code == "JobNotFound"


def test_mpi_multi_instance_task_with_job_preparation_on_an_autoscale_pool(client):
    client.create_pool(m.BatchPoolCreateOptions(
        id="mpi", vm_size="standard_d2s_v3", virtual_machine_configuration=VM, enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes = min(2, $PendingTasks.GetSample(1));",
        enable_inter_node_communication=True, task_slots_per_node=1))
    job_with(client, "mpi", "mpi", job_preparation_task=m.BatchJobPreparationTask(
        command_line="/bin/bash -c 'echo prepared > $AZ_BATCH_NODE_SHARED_DIR/prep.txt'", wait_for_success=True))
    client.create_task("mpi", m.BatchTaskCreateOptions(
        id="hello", command_line=MPI_COMMAND,
        multi_instance_settings=m.MultiInstanceSettings(
            number_of_instances=2,
            coordination_command_line="/bin/bash -c 'cat $AZ_BATCH_NODE_SHARED_DIR/prep.txt; echo $CCP_NODES'")))
    client.update_job("mpi", m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    task = completed(client, "mpi", "hello", timeout=40)
    assert (task.execution_info.result, task.execution_info.exit_code) == ("success", 0), task.execution_info
    stdout = b"".join(client.download_task_file("mpi", "hello", "stdout.txt")).decode()
    assert "size 4 sums [6, 6, 6, 6]" in stdout, stdout
    assert "prepared" in stdout and stdout.count("127.0.0.") >= 2
    # CCP_NODES: the node count, then each node's address and cores (standard_d2s_v3: 2).
    assert re.search(r"^2 127\.0\.0\.\d+ 2 127\.0\.0\.\d+ 2$", stdout, re.MULTILINE), stdout
    subtasks = list(client.list_subtasks("mpi", "hello"))
    assert [(s.id, s.state, s.exit_code) for s in subtasks] == [(1, "completed", 0)]
    assert subtasks[0].node_info.node_id != task.node_info.node_id
    sub_out = b"".join(client.download_node_file("mpi", subtasks[0].node_info.node_id,
                                                 f"{subtasks[0].node_info.task_root_directory}/stdout.txt"))
    assert sub_out.startswith(b"prepared")
    preps = list(client.list_job_preparation_and_release_task_status("mpi"))
    assert len(preps) == 2 and {p.job_preparation_task_execution_info.exit_code for p in preps} == {0}
    wait_for(lambda: client.get_job("mpi").state == "completed", what="terminatejob")
    assert client.get_job("mpi").execution_info.termination_reason == "AllTasksComplete"
    wait_for(lambda: not list(client.list_nodes("mpi")), what="the autoscale pool to shrink to 0")


def test_failing_job_preparation_keeps_the_task_active_and_is_reported(client):
    fixed_pool(client, "badprep", nodes=1)
    job_with(client, "badprep", "badprep", m.BatchTaskCreateOptions(id="t", command_line="true"),
             job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/bash -c 'exit 7'"))
    status = wait_for(lambda: [s for s in client.list_job_preparation_and_release_task_status("badprep")
                               if s.job_preparation_task_execution_info.state == "completed"], what="prep to end")
    info = status[0].job_preparation_task_execution_info
    assert (info.result, info.exit_code, info.failure_info.code) == ("failure", 7, "FailureExitCode")
    # A task of another job on the same node runs only in a scheduler pass that looked at t first (older
    # job, same priority): once it completed, t had its chances to be placed again and its prep to rerun.
    job_with(client, "afterprep", "badprep", m.BatchTaskCreateOptions(id="marker", command_line="true"))
    completed(client, "afterprep", "marker", timeout=10)
    assert client.get_task("badprep", "t").state == "active"
    assert len(list(client.list_job_preparation_and_release_task_status("badprep"))) == 1   # not retried
    job_with(client, "noprep", "badprep")   # a job of its own: no preparation, no release task
    no_prep = error_of(lambda: list(client.list_job_preparation_and_release_task_status("noprep")))
    assert no_prep.error.code == "JobPreparationTaskOrReleaseTaskNotSpecified"   # recorded (js)


# ---- output files ----

def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def output(pattern, container_url, path=None, condition="taskcompletion"):
    return m.OutputFile(file_pattern=pattern, destination=m.OutputFileDestination(
        container=m.OutputFileBlobContainerDestination(container_url=container_url, path=path)),
        upload_options=m.OutputFileUploadConfiguration(upload_condition=condition))


def test_upload_failure_completes_the_task_with_file_upload_failure(client):
    fixed_pool(client, "upload", nodes=1, task_slots_per_node=2)
    url = f"http://127.0.0.1:{_closed_port()}/devstoreaccount1/out?sv=2025-01-05&sp=racwl&sig=SECRETSIG"
    job_with(client, "upload", "upload", m.BatchTaskCreateOptions(
        id="t", command_line="/bin/bash -c 'echo hi'", output_files=[output("../std*.txt", url, "logs")]))
    task = completed(client, "upload", "t")
    info = task.execution_info
    assert (info.exit_code, info.result, info.failure_info.code) == (0, "failure", "FileUploadMiscError")
    errors = b"".join(client.download_task_file("upload", "t", "fileuploaderr.txt")).decode()
    assert "Failed to upload" in errors and "SECRETSIG" not in errors


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    with contextlib.ExitStack() as stack:
        try:
            endpoint = local_stack.start_azurite(tmp_path_factory.mktemp("azurite"), stack)
        except local_stack.LocalStackError as error:
            pytest.fail(f"Azurite cannot start: {error}", pytrace=False)
        local_stack.create_container(endpoint, "emulator")
        yield local_stack, endpoint


def test_output_and_resource_files_through_azurite(client, azurite):
    from azure.storage.blob import BlobServiceClient, generate_container_sas
    local_stack, endpoint = azurite
    service = BlobServiceClient(endpoint, credential={"account_name": local_stack.AZURITE_ACCOUNT,
                                                      "account_key": local_stack.AZURITE_KEY})
    container = service.get_container_client("emulator")
    container.upload_blob("in/a.txt", b"alpha", overwrite=True)
    container.upload_blob("other/b.txt", b"beta", overwrite=True)
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)

    def sas_url(permission):
        sas = generate_container_sas(local_stack.AZURITE_ACCOUNT, "emulator", account_key=local_stack.AZURITE_KEY,
                                     permission=permission, expiry=expiry)
        return f"{endpoint}/emulator?{sas}"
    write_url, read_url = sas_url("racwl"), sas_url("rl")

    def blob_url(name):
        return read_url.replace("/emulator?", f"/emulator/{name}?")
    fixed_pool(client, "blobs", nodes=1, task_slots_per_node=2)
    job_with(client, "blobs", "blobs", m.BatchTaskCreateOptions(
        id="t", command_line="/bin/bash -c 'cat in/a.txt; mkdir -p res/sub; echo r > res/sub/r.dat; cp in/a.txt one'",
        resource_files=[m.ResourceFile(storage_container_url=read_url, blob_prefix="in/"),
                        m.ResourceFile(http_url=blob_url("other/b.txt"), file_path="copies/b.txt")],
        output_files=[output("../std*.txt", write_url, "t-logs"), output("res/**/*.dat", write_url, "t-res"),
                      output("one", write_url, "exact/name.txt"),
                      output("../stdout.txt", write_url, "never", condition="taskfailure")]),
        m.BatchTaskCreateOptions(id="denied", command_line="/bin/bash -c 'echo x'",
                                 output_files=[output("../stdout.txt", read_url, "denied.txt")]),
        m.BatchTaskCreateOptions(id="nosuchblob", command_line="/bin/true",
                                 resource_files=[m.ResourceFile(http_url=blob_url("nope.txt"), file_path="x")]))
    task = completed(client, "blobs", "t")
    assert (task.execution_info.result, task.execution_info.exit_code) == ("success", 0), task.execution_info
    names = sorted(b.name for b in container.list_blobs())
    assert names == ["exact/name.txt", "in/a.txt", "other/b.txt", "t-logs/stderr.txt", "t-logs/stdout.txt",
                     "t-res/sub/r.dat"]
    assert container.download_blob("t-logs/stdout.txt").readall() == b"alpha"
    assert b"".join(client.download_task_file("blobs", "t", "wd/copies/b.txt")) == b"beta"
    denied = completed(client, "blobs", "denied")
    assert (denied.execution_info.exit_code, denied.execution_info.failure_info.code) == (0, "FileUploadAccessDenied")
    missing = completed(client, "blobs", "nosuchblob")
    assert (missing.execution_info.exit_code, missing.execution_info.failure_info.code) == (None, "BlobNotFound")
