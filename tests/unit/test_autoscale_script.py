"""create_pool_job.py's autoscale steps against a fake Batch client: evaluate before enable, refusals,
the 30-second enable limit, interrupted runs and --check_formula (the real flow is in tests/e2e/test_autoscale.py)."""

import datetime
from types import SimpleNamespace

import pytest
from azure.batch import models
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

import create_pool_job
from batch_helpers import ToolkitError
from config_resources import ENV_FILE_VARIABLE, read_settings
from tests.conftest import VALID_ENV

RESULTS = "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;pendingNow=0"


def service_error(status, code, details=()):
    err = HttpResponseError(message=code)
    err.status_code = status
    err.error = SimpleNamespace(code=code, message=f"message of {code}",
                                details=[SimpleNamespace(code="Message", message=d) for d in details])
    return err


class FakeBatch:
    """Records calls; `pool` is what get_pool returns (None: not found)."""

    def __init__(self, pool=None, run=None, enable_errors=()):
        self.pool, self.calls = pool, []
        self.run = run or models.AutoScaleRun({"timestamp": "2026-01-01T00:00:00Z", "results": RESULTS})
        self.enable_errors = list(enable_errors)

    def get_pool(self, pool_id, select=None):
        if self.pool is None:
            raise ResourceNotFoundError("no pool")
        return self.pool

    def list_supported_images(self, filter=None):
        return [models.BatchSupportedImage({"nodeAgentSKUId": "batch.node.ubuntu 24.04", "osType": "linux",
                                            "verificationType": "verified", "imageReference": {
                                                "publisher": "canonical", "offer": "ubuntu-24_04-lts",
                                                "sku": "server", "version": "latest"}})]

    def create_pool(self, pool):
        self.calls.append(("create", pool.auto_scale_formula))

    def evaluate_pool_auto_scale(self, pool_id, options):
        self.calls.append(("evaluate", options.auto_scale_formula))
        if isinstance(self.run, Exception):
            raise self.run
        return self.run

    def enable_pool_auto_scale(self, pool_id, options):
        self.calls.append(("enable", options.auto_scale_formula, options.auto_scale_evaluation_interval))
        if self.enable_errors:
            raise self.enable_errors.pop(0)


@pytest.fixture
def settings():
    return read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV})


def existing(formula, auto=True):
    return models.BatchPool({"id": "p1", "state": "active", "enableInterNodeCommunication": True,
                             "taskSlotsPerNode": 1, "enableAutoScale": auto, "autoScaleFormula": formula})


def ensure(client, settings, **kwargs):
    create_pool_job.ensure_pool(client, settings, "p1", "standard_d2s_v5", 5, **kwargs)


def test_new_pool_is_held_at_zero_evaluated_then_enabled(settings, capsys):
    client = FakeBatch()
    ensure(client, settings)
    formula = create_pool_job.autoscale_formula(5)
    assert client.calls == [("create", create_pool_job.HOLD_FORMULA), ("evaluate", formula),
                            ("enable", formula, datetime.timedelta(minutes=5))]
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "Creating pool [p1]...",
        "Checking autoscale formula on pool [p1]...",
        "The formula evaluates to (nothing applied by this check):",
        "    $TargetDedicatedNodes=0", "    $TargetLowPriorityNodes=0",
        "    $NodeDeallocationOption=taskcompletion", "    pendingNow=0",
        "Enabling the autoscale formula on pool [p1]...",
        "Pool [p1] created: standard_d2s_v5 nodes, autoscale from 0 to 5 nodes."]


def test_a_formula_that_fails_to_evaluate_is_never_enabled(settings):
    run = models.AutoScaleRun({"timestamp": "2026-01-01T00:00:00Z", "results": "$TargetDedicatedNodes=0",
                               "error": {"code": "InsufficientSampleData",
                                         "message": "Autoscale evaluation failed due to insufficient sample data",
                                         "values": [{"name": "Message", "value": "Line 1, Col 5: Insufficient data"}]}})
    client = FakeBatch(run=run)
    with pytest.raises(ToolkitError) as caught:
        ensure(client, settings)
    assert [c[0] for c in client.calls] == ["create", "evaluate"]
    assert caught.value.exit_code == 1
    assert str(caught.value) == (
        "The autoscale formula of pool [p1] fails to evaluate: InsufficientSampleData: Autoscale evaluation failed "
        "due to insufficient sample data (Line 1, Col 5: Insufficient data) Pool [p1] was created but stays at "
        "0 nodes; delete it (az batch pool delete --pool-id p1).")


def test_a_formula_the_service_refuses_with_400_shows_its_details(settings):
    client = FakeBatch(run=service_error(400, "AutoScalingFormulaSyntaxError", ["Line 1, Col 3: expected a value"]))
    with pytest.raises(ToolkitError) as caught:
        ensure(client, settings)
    assert "AutoScalingFormulaSyntaxError: message of AutoScalingFormulaSyntaxError (Line 1, Col 3: " \
           "expected a value)" in str(caught.value)
    assert caught.value.exit_code == 1 and [c[0] for c in client.calls] == ["create", "evaluate"]


def test_other_evaluate_failures_go_to_the_common_handler(settings):
    client = FakeBatch(run=service_error(409, "OperationInvalidForCurrentState"))
    with pytest.raises(HttpResponseError):
        ensure(client, settings)


def test_too_many_enable_requests_are_waited_out(settings, capsys, monkeypatch):
    waits = []
    monkeypatch.setattr(create_pool_job.time, "sleep", waits.append)
    client = FakeBatch(enable_errors=[service_error(503, "TooManyEnableAutoScaleRequests")] * 2)
    ensure(client, settings)
    assert [c[0] for c in client.calls] == ["create", "evaluate", "enable", "enable", "enable"]
    assert waits == [create_pool_job.ENABLE_RETRY_SECONDS] * 2
    assert capsys.readouterr().out.count("one autoscale change per pool every 30 seconds") == 2


def test_the_enable_limit_is_not_waited_forever(settings, monkeypatch):
    moments = iter([0, 10, 20, 30, 41])
    monkeypatch.setattr(create_pool_job.time, "monotonic", lambda: next(moments))
    monkeypatch.setattr(create_pool_job.time, "sleep", lambda seconds: None)
    client = FakeBatch(enable_errors=[service_error(503, "TooManyEnableAutoScaleRequests")] * 10)
    with pytest.raises(HttpResponseError):
        ensure(client, settings)
    assert [c[0] for c in client.calls].count("enable") == 4


def test_other_enable_errors_are_not_retried(settings):
    client = FakeBatch(enable_errors=[service_error(409, "PoolBeingResized")])
    with pytest.raises(HttpResponseError):
        ensure(client, settings)
    assert [c[0] for c in client.calls].count("enable") == 1


def test_a_pool_left_held_by_an_interrupted_run_gets_its_formula(settings, capsys):
    client = FakeBatch(pool=existing(create_pool_job.HOLD_FORMULA))
    ensure(client, settings)
    assert [c[0] for c in client.calls] == ["evaluate", "enable"]
    out = capsys.readouterr().out
    assert "a run was interrupted before it enabled the autoscale formula" in out
    assert out.endswith("Pool [p1] already exists and can run MPI tasks; reusing it.\n")


def test_an_existing_pool_is_reused_without_a_check_unless_asked(settings, capsys):
    client = FakeBatch(pool=existing("$TargetDedicatedNodes = 1;"))
    ensure(client, settings)
    assert client.calls == []
    ensure(client, settings, check_existing=True)
    assert client.calls == [("evaluate", "$TargetDedicatedNodes = 1;")]     # its own formula, not applied
    assert "    pendingNow=0" in capsys.readouterr().out


def test_check_on_a_fixed_size_pool_says_there_is_no_formula(settings):
    client = FakeBatch(pool=existing(None, auto=False))
    with pytest.raises(ToolkitError, match=r"has a fixed size \(autoscale is off\): it has no formula to check"):
        ensure(client, settings, check_existing=True)
    assert client.calls == []


def test_check_formula_option_is_parsed():
    assert create_pool_job.build_parser().parse_args(["--pool_id", "p", "--job_id", "j", "--check_formula"]).check_formula
    assert not create_pool_job.build_parser().parse_args(["--pool_id", "p", "--job_id", "j"]).check_formula
