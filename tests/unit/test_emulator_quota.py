"""The emulator's core quotas and pool resize errors (service/quota.py, scheduler.py), and a node's files going
with it (runtime/executor.py), driven without a server."""

import pytest

from batch_emulator.__main__ import parse_args
from batch_emulator.api import wire
from batch_emulator.runtime.executor import Executor
from batch_emulator.service import autoscale, jobs, quota, scheduler
from batch_emulator.service.errors import ResizeError
from batch_emulator.service.state import Account, Node
from batch_emulator.service.states import AllocationState, NodeState, PoolState

VM = {"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
      "nodeAgentSKUId": "batch.node.ubuntu 24.04"}


@pytest.mark.parametrize("vm_size, cores", [
    ("standard_d2s_v5", 2), ("Standard_HB120rs_v3", 120), ("standard_d16ads_v5", 16),
    ("STANDARD_F4", 4), ("Standard_NC24ads_A100_v4", 24), ("Standard_HB120-16rs_v3", 120), ("d8s_v5", 8),
    ("Standard_A0", 1), ("x", 1), ("", 1),
])
def test_cores_come_from_the_number_after_the_family_letters(vm_size, cores):
    assert quota.vm_cores(vm_size) == cores


def add_pool(account, pool_id="p1", vm_size="standard_d2s_v5", dedicated=0, low_priority=0):
    return jobs.add_pool(account, {"id": pool_id, "vmSize": vm_size, "virtualMachineConfiguration": VM,
                                   "targetDedicatedNodes": dedicated, "targetLowPriorityNodes": low_priority})


def settle(account, ticks=3):
    """Tick the scheduler; nodes finish starting at once. Returns the actions."""
    actions = []
    for _ in range(ticks):
        actions += scheduler.tick(account)
        for pool in account.pools.values():
            for node in pool.nodes.values():
                if node.state == NodeState.CREATING:
                    node.set_state(NodeState.IDLE)
    return actions


def counts(pool):
    return (sum(1 for n in pool.nodes.values() if n.dedicated), sum(1 for n in pool.nodes.values() if not n.dedicated))


def codes(pool):
    return [e.code for e in pool.resize_errors]


def quota_account(dedicated=None, low_priority=None):
    return Account(name="a", root="/nonexistent", dedicated_core_quota=dedicated, low_priority_core_quota=low_priority)


def test_a_pool_beyond_the_dedicated_quota_gets_the_nodes_that_fit_and_a_resize_error():
    account = quota_account(dedicated=4)
    pool = add_pool(account, dedicated=3)       # 3 x 2 cores asked, 4 allowed
    settle(account)
    assert counts(pool) == (2, 0)
    assert pool.target_dedicated == 3            # the target keeps what was asked
    assert pool.allocation_state == AllocationState.STEADY
    assert pool.resize_errors == [ResizeError("AccountCoreQuotaReached",
                                              "The specified account has reached core quota")]
    body = wire.pool_to_wire(pool, "http://h")
    assert body["resizeErrors"] == [{"code": "AccountCoreQuotaReached",
                                     "message": "The specified account has reached core quota"}]
    assert (body["currentDedicatedNodes"], body["targetDedicatedNodes"]) == (2, 3)


def test_the_low_priority_quota_is_separate_and_has_its_own_code():
    account = quota_account(dedicated=100, low_priority=5)
    pool = add_pool(account, dedicated=2, low_priority=3)
    settle(account)
    assert counts(pool) == (2, 2)
    assert codes(pool) == ["AccountLowPriorityCoreQuotaReached"]
    assert pool.resize_errors[0].message == "The specified account has reached low priority core quota"


def test_both_quotas_reached_give_both_errors():
    account = quota_account(dedicated=2, low_priority=0)
    pool = add_pool(account, dedicated=2, low_priority=1)
    settle(account)
    assert counts(pool) == (1, 0)
    assert codes(pool) == ["AccountCoreQuotaReached", "AccountLowPriorityCoreQuotaReached"]


def test_the_quota_counts_the_cores_of_every_pool_of_the_account():
    account = quota_account(dedicated=20)
    first = add_pool(account, "big", vm_size="Standard_D16ads_v5", dedicated=1)
    settle(account)
    second = add_pool(account, "small", vm_size="standard_d2s_v5", dedicated=3)
    settle(account)
    assert (counts(first), counts(second)) == ((1, 0), (2, 0))
    assert (codes(first), codes(second)) == ([], ["AccountCoreQuotaReached"])


def test_no_quota_means_no_limit_and_no_resize_errors():
    account = quota_account()
    pool = add_pool(account, vm_size="Standard_HB120rs_v3", dedicated=5)
    settle(account)
    assert counts(pool) == (5, 0) and pool.resize_errors == []
    assert "resizeErrors" not in wire.pool_to_wire(pool, "http://h")


def test_a_resize_that_ended_short_does_not_grow_when_cores_are_freed(monkeypatch):
    monkeypatch.setattr(scheduler, "LEAVING_SECONDS", 0)
    account = quota_account(dedicated=4)
    other = add_pool(account, "other", dedicated=1)
    pool = add_pool(account, dedicated=2)
    settle(account)
    assert counts(pool) == (1, 0) and codes(pool) == ["AccountCoreQuotaReached"]
    other.transition(PoolState.DELETING)      # frees 2 cores once its node is gone
    account.deleting_seconds = 0
    settle(account)
    assert "other" not in account.pools
    assert counts(pool) == (1, 0) and codes(pool) == ["AccountCoreQuotaReached"]   # the resize is over


def test_a_later_resize_within_quota_clears_the_resize_errors():
    account = quota_account(dedicated=4)
    pool = add_pool(account, dedicated=3)
    settle(account)
    pool.target_dedicated = 2                   # what POST /pools/p1/resize does (api/pools.py)
    pool.begin_resize()
    settle(account)
    assert counts(pool) == (2, 0) and pool.resize_errors == []
    assert "resizeErrors" not in wire.pool_to_wire(pool, "http://h")


def test_a_later_resize_beyond_quota_reports_its_own_error():
    account = quota_account(dedicated=4)
    pool = add_pool(account, dedicated=1)
    settle(account)
    assert pool.resize_errors == []
    pool.target_dedicated = 5
    pool.begin_resize()
    settle(account)
    assert counts(pool) == (2, 0) and codes(pool) == ["AccountCoreQuotaReached"]


def test_each_autoscale_run_is_a_new_resize_that_checks_the_quota_again():
    account = quota_account(dedicated=4)
    account.time_scale = 60.0
    pool = jobs.add_pool(account, {"id": "p1", "vmSize": "standard_d2s_v5", "virtualMachineConfiguration": VM,
                                   "enableAutoScale": True, "autoScaleFormula": "$TargetDedicatedNodes = 3;"})
    now = 1_800_000_000.0
    autoscale.run(account, pool, now)
    settle(account)
    assert counts(pool) == (2, 0) and pool.target_dedicated == 3 and codes(pool) == ["AccountCoreQuotaReached"]
    pool.auto_scale_formula = "$TargetDedicatedNodes = 1;"
    autoscale.run(account, pool, now + 5)
    settle(account)
    assert pool.resize_errors == [] and pool.target_dedicated == 1


def test_a_failed_autoscale_run_keeps_the_last_resize_errors():
    account = quota_account(dedicated=2)
    pool = jobs.add_pool(account, {"id": "p1", "vmSize": "standard_d2s_v5", "virtualMachineConfiguration": VM,
                                   "enableAutoScale": True, "autoScaleFormula": "$TargetDedicatedNodes = 2;"})
    autoscale.run(account, pool, 1_800_000_000.0)
    settle(account)
    pool.auto_scale_formula = "$TargetDedicatedNodes = nosuchvariable;"
    assert autoscale.run(account, pool, 1_800_000_005.0).error is not None
    settle(account)
    assert codes(pool) == ["AccountCoreQuotaReached"] and counts(pool) == (1, 0)


def test_resize_errors_are_shown_only_when_the_pool_is_steady():
    account = quota_account(dedicated=2)
    pool = add_pool(account, dedicated=2)
    settle(account)
    pool.set_allocation_state(AllocationState.RESIZING)
    assert "resizeErrors" not in wire.pool_to_wire(pool, "http://h")


def test_resize_error_values_are_name_value_pairs():
    error = ResizeError("AllocationFailed", "Desired number of dedicated nodes could not be allocated",
                        (("Reason", "The server encountered an internal error."),))
    assert wire.resize_error_to_wire(error)["values"] == [{"name": "Reason",
                                                          "value": "The server encountered an internal error."}]


def test_a_node_that_leaves_its_pool_is_handed_to_the_runtime_for_removal(monkeypatch):
    monkeypatch.setattr(scheduler, "LEAVING_SECONDS", 0)
    account = quota_account()
    pool = add_pool(account, dedicated=2)
    settle(account)
    pool.target_dedicated = 1
    pool.begin_resize()
    actions = settle(account)
    removed = [a.node for a in actions if isinstance(a, scheduler.RemoveNode)]
    assert len(removed) == 1 and removed[0].id not in pool.nodes and len(pool.nodes) == 1


def test_the_runtime_removes_a_gone_node_directory(tmp_path):
    account = Account(name="a", root=str(tmp_path))
    executor = Executor(account)
    pool = add_pool(account)
    node = Node(id="tvmps_gone_d", pool_id="p1", ip="127.0.0.2", dedicated=True, root=account.node_dir("tvmps_gone_d"))
    (tmp_path / "nodes" / node.id / "workitems" / "j1").mkdir(parents=True)
    executor._dispatch(scheduler.RemoveNode(node))
    for thread in list(executor.threads):
        thread.join(5)
    assert not (tmp_path / "nodes" / node.id).exists()
    assert pool.nodes == {}


def test_a_node_that_left_while_starting_leaves_no_directory_behind(tmp_path):
    # The scheduler removed it before its start-up thread made its directories: the start-up removes them.
    account = Account(name="a", root=str(tmp_path))
    pool = add_pool(account)
    node = Node(id="tvmps_early_d", pool_id="p1", ip="127.0.0.2", dedicated=True,
                root=account.node_dir("tvmps_early_d"), state=NodeState.LEAVING_POOL)
    Executor(account)._provision_node(pool, node)
    assert not (tmp_path / "nodes" / node.id).exists()


def test_the_quota_options_reach_the_command_line():
    args = parse_args(["--dedicated-core-quota", "4", "--low-priority-core-quota", "0"])
    assert (args.dedicated_core_quota, args.low_priority_core_quota) == (4, 0)
    assert (parse_args([]).dedicated_core_quota, parse_args([]).low_priority_core_quota) == (None, None)


@pytest.mark.parametrize("option", ["--dedicated-core-quota", "--low-priority-core-quota"])
def test_a_negative_quota_is_a_usage_error_naming_the_option(option, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args([option, "-1"])
    assert exited.value.code == 2
    assert f"{option} must be >= 0" in capsys.readouterr().err
