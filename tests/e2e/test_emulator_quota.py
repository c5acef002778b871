"""The emulator's core quota and a removed node's files, seen through the azure-batch SDK.

One emulator (`python -m batch_emulator --dedicated-core-quota 4`) serves the module: standard_d2s_v5 nodes
have 2 cores, so the account holds at most 2 dedicated nodes over all its pools.
"""

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceNotFoundError

from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from tests.conftest import wait_for
from tests.e2e.emulator_process import VM, start_emulator
from toolkit.batch import error_code

QUOTA = "4"
VM_SIZE = "standard_d2s_v5"     # 2 cores


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    root = tmp_path_factory.mktemp("emulator-root")
    with open(root.parent / "emulator-stderr.log", "w+") as log:
        proc, url = start_emulator(root, log, "--dedicated-core-quota", QUOTA)
        yield type("Emulator", (), {"url": url, "root": root})
        proc.terminate()
        assert proc.wait(timeout=15) == 0


@pytest.fixture(scope="module")
def client(emulator):
    return BatchClient(emulator.url, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY),
                       retry_total=0)


def create_pool(client, pool_id, nodes):
    client.create_pool(m.BatchPoolCreateOptions(id=pool_id, vm_size=VM_SIZE, virtual_machine_configuration=VM,
                                                target_dedicated_nodes=nodes))


def steady(client, pool_id):
    return wait_for(lambda: (p := client.get_pool(pool_id)).allocation_state == "steady" and p,
                    what=f"pool {pool_id} to be steady")


def delete_pool(client, pool_id):
    """Give the cores back to the account for the next test."""
    client.begin_delete_pool(pool_id, polling_interval=0).result()


def not_found_code(call, *args):
    with pytest.raises(ResourceNotFoundError) as caught:
        list(call(*args))   # download iterators and listings alike raise on the first read
    return error_code(caught.value)   # a streamed download's error body is read here (err.error is None)


def test_a_pool_beyond_the_core_quota_gets_the_nodes_that_fit_and_a_resize_error(client):
    create_pool(client, "quota", nodes=3)
    pool = steady(client, "quota")
    assert (pool.current_dedicated_nodes, pool.target_dedicated_nodes) == (2, 3)
    assert [(e.code, e.message) for e in pool.resize_errors] == \
        [("AccountCoreQuotaReached", "The specified account has reached core quota")]
    counts = list(client.list_pool_node_counts(filter="poolId eq 'quota'"))
    assert counts[0].dedicated.total == 2
    assert len(list(client.list_nodes("quota"))) == 2
    # A later resize within the quota replaces the errors of the last one: none.
    client.begin_resize_pool("quota", m.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=0).result()
    pool = steady(client, "quota")
    assert (pool.current_dedicated_nodes, pool.resize_errors) == (1, None)
    delete_pool(client, "quota")


def test_a_second_pool_gets_what_the_first_left_of_the_quota(client):
    create_pool(client, "first", nodes=1)
    steady(client, "first")
    create_pool(client, "second", nodes=2)
    second = steady(client, "second")
    assert second.current_dedicated_nodes == 1 and second.resize_errors[0].code == "AccountCoreQuotaReached"
    assert client.get_pool("first").resize_errors is None
    delete_pool(client, "first")
    delete_pool(client, "second")


def test_a_node_takes_its_files_when_it_leaves_the_pool(client, emulator):
    create_pool(client, "shrink", nodes=1)
    client.create_job(m.BatchJobCreateOptions(id="shrink", pool_info=m.BatchPoolInfo(pool_id="shrink")))
    client.create_task("shrink", m.BatchTaskCreateOptions(id="t", command_line="/bin/bash -c 'echo hi'"))
    task = wait_for(lambda: (t := client.get_task("shrink", "t")).state == "completed" and t, what="the task")
    node_id = task.node_info.node_id
    assert b"".join(client.download_task_file("shrink", "t", "stdout.txt")) == b"hi\n"
    assert (emulator.root / "nodes" / node_id / "workitems").is_dir()
    client.begin_resize_pool("shrink", m.BatchPoolResizeOptions(target_dedicated_nodes=0), polling_interval=0).result()
    wait_for(lambda: not list(client.list_nodes("shrink")), what="the node to leave")
    assert not_found_code(client.download_task_file, "shrink", "t", "stdout.txt") == "NodeNotFound"
    assert not_found_code(client.list_task_files, "shrink", "t") == "NodeNotFound"
    assert not_found_code(client.download_node_file, "shrink", node_id, "startup/stdout.txt") == "NodeNotFound"
    wait_for(lambda: not (emulator.root / "nodes" / node_id).exists(), what="the node's directory to go")
    client.begin_delete_job("shrink", polling_interval=0).result()
    delete_pool(client, "shrink")


def test_deleting_a_pool_removes_its_nodes_directories(client, emulator):
    create_pool(client, "gone", nodes=2)
    node_ids = [n.id for n in wait_for(lambda: [n for n in client.list_nodes("gone") if n.state == "idle"][1:] and
                                       list(client.list_nodes("gone")), what="two idle nodes")]
    assert all((emulator.root / "nodes" / node_id).is_dir() for node_id in node_ids)
    delete_pool(client, "gone")
    wait_for(lambda: not any((emulator.root / "nodes" / node_id).exists() for node_id in node_ids),
             what="the nodes' directories to go")
