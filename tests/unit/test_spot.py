"""Spot nodes: SPOT and create_pool_job.py --spot give the autoscale formula's target to
$TargetLowPriorityNodes (same growth and cap, no dedicated node), the emulator's scheduler grows such a
pool with low-priority nodes and runs an MPI task on them, and a pool of the other kind is not reused."""

from types import SimpleNamespace

import pytest

import create_pool_job
from config_resources import ConfigError, pool_settings, read_settings
from tests.conftest import VALID_ENV
from tests.unit.test_autoscale_formula import history, run
from tests.unit.test_autoscale_service import add_job, advance, autoscale_pool, clock, live_nodes, mpi_task
from tests.unit.test_autoscale_service import start_now as start_autoscale
from toolkit.autoscale import autoscale_formula

__all__ = ["clock"]  # the fixture, used by name


def settings_from(**values):
    return read_settings({"BATCH_TOOLKIT_ENV_FILE": "", **VALID_ENV, **values})


@pytest.mark.parametrize("value, spot", [("true", True), (" TRUE ", True), ("false", False), ("", False)])
def test_spot_is_true_or_false_in_any_case(value, spot):
    assert pool_settings(settings_from(SPOT=value)).spot is spot


def test_spot_defaults_to_dedicated_nodes():
    assert pool_settings(read_settings({"BATCH_TOOLKIT_ENV_FILE": "", **VALID_ENV})).spot is False


@pytest.mark.parametrize("value", ["yes", "1", "spot"])
def test_any_other_spot_value_is_refused_in_one_line(value):
    with pytest.raises(ConfigError) as caught:
        pool_settings(settings_from(SPOT=value))
    assert str(caught.value).startswith(f"SPOT is {value!r}, not true or false. Set it to true or false in ")
    assert "\n" not in str(caught.value) and caught.value.variables == ("SPOT",)


def test_the_spot_formula_targets_low_priority_nodes_with_the_same_growth_and_cap():
    spot, dedicated = autoscale_formula(5, spot=True), autoscale_formula(5)
    assert autoscale_formula(5, spot=False) == dedicated
    for pending, nodes in ((0, 0), (2, 2), (12, 5)):
        samples = history(10, **{"$PendingTasks": pending})
        assert (run(spot, samples).target_dedicated, run(spot, samples).target_low_priority) == (0, nodes)
        assert (run(dedicated, samples).target_dedicated, run(dedicated, samples).target_low_priority) == (nodes, 0)
    assert run(spot).target_low_priority == 0                      # a new pool: no sample yet, no error


def test_a_spot_pool_grows_with_low_priority_nodes_that_run_the_mpi_task(clock):
    account, pool = autoscale_pool(autoscale_formula(3, spot=True))
    start_autoscale(account, pool)
    job = add_job(account, mpi_task("mpi", 2), mpi_task("more", 2), mpi_task("most", 2))
    advance(account, clock, 5.1)                                    # the next run sees 6 instances pending
    assert (pool.target_dedicated, pool.target_low_priority) == (0, 3)   # capped at 3, as dedicated would be
    advance(account, clock, 0.3)
    nodes = live_nodes(pool)
    assert len(nodes) == 3 and not any(node.dedicated for node in nodes)
    task = job.tasks["mpi"]
    assert task.state == "running" and set(task.node_ids) <= {node.id for node in nodes}


def test_the_parser_takes_spot():
    args = create_pool_job.build_parser().parse_args(["--pool_id", "p", "--job_id", "j", "--spot"])
    assert args.spot is True
    assert create_pool_job.build_parser().parse_args(["--pool_id", "p", "--job_id", "j"]).spot is False


@pytest.mark.parametrize("existing_spot, asked_spot, problem", [
    (False, True, "has dedicated nodes, not the Spot nodes asked for (--spot or SPOT)"),
    (True, False, "has Spot nodes, not the dedicated nodes asked for (--spot or SPOT)"),
    (True, True, None), (False, False, None)])
def test_an_existing_pool_of_the_other_kind_is_not_reused(existing_spot, asked_spot, problem):
    pool = SimpleNamespace(enable_auto_scale=True, auto_scale_formula=autoscale_formula(4, existing_spot),
                           vm_size="standard_d2s_v5", metadata=[])
    assert create_pool_job.settings_problem(pool, "standard_d2s_v5", 4, asked_spot) == problem
