"""--dry_run DIR's bodies: the pool that az creates in one request as create_pool_job.py leaves it (its formula
enabled from the start, no target counts), and write_body's files (whole or not at all, 0600, the secret named).

Expected values are literals (the REST API's names and formats), as in tests/unit/test_wire.py."""

import json
import stat

import pytest

import create_pool_job
from config_resources import ENV_FILE_VARIABLE, pool_settings, read_settings
from tests.conftest import VALID_ENV
from tests.unit.test_wire import FORMULA_5, wire
from toolkit.autoscale import HOLD_FORMULA
from toolkit.dryrun import autoscaled_at_creation, write_body


def pool_body(**variables):
    settings = pool_settings(read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV, **variables}))
    return create_pool_job.build_pool(settings, "p1", "standard_d2s_v5", 5, "run-7")


def test_the_az_pool_body_enables_the_formula_at_creation_with_the_interval_and_no_target_counts():
    pool = pool_body(AUTOSCALE_EVALUATION_MINUTES="7")
    body = wire(autoscaled_at_creation(pool, FORMULA_5))
    assert (body["enableAutoScale"], body["autoScaleFormula"]) == (True, FORMULA_5)
    assert body["autoScaleEvaluationInterval"] == "PT07M00S"
    assert "targetDedicatedNodes" not in body and "targetLowPriorityNodes" not in body
    assert (body["id"], body["enableInterNodeCommunication"], body["taskSlotsPerNode"]) == ("p1", True, 1)
    assert body["metadata"] == [{"name": "mpi-toolkit-max-nodes", "value": "5"},
                                {"name": "MPI_TOOLKIT_SUBMISSION_ID", "value": "run-7"}]
    assert pool.auto_scale_formula == HOLD_FORMULA  # the body create_pool_job.py sends itself is left as it was


def test_a_fixed_size_pool_body_is_not_made_an_autoscale_one():
    pool = pool_body()
    pool.enable_auto_scale, pool.auto_scale_formula, pool.target_dedicated_nodes = False, None, 2
    with pytest.raises(ValueError):
        autoscaled_at_creation(pool, FORMULA_5)


class Body:
    """A request model as write_body reads it (its as_dict), or one whose serialisation fails midway."""

    def __init__(self, data):
        self.data = data

    def as_dict(self, exclude_readonly=False):
        return self.data


def test_write_body_replaces_an_earlier_file_whole_readable_by_the_user_only(tmp_path, capsys):
    target = tmp_path / "bodies" / "job-j1.json"
    target.parent.mkdir()
    target.write_text("an earlier run's body")
    target.chmod(0o644)
    path = write_body(str(tmp_path / "bodies"), "job-j1.json", Body({"id": "j1"}), secret=True, holds="a SAS")
    assert path == target and json.loads(target.read_text()) == {"id": "j1"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert capsys.readouterr().out == (f"Wrote {target} (it holds a secret, a SAS: readable by you only; delete it "
                                       "when done)\n")
    assert [p.name for p in target.parent.iterdir()] == ["job-j1.json"]


def test_write_body_that_fails_keeps_the_earlier_file_and_leaves_no_partial_one(tmp_path, capsys):
    target = tmp_path / "pool-p1.json"
    target.write_text('{"id": "p1"}\n')
    with pytest.raises(TypeError):
        write_body(str(tmp_path), "pool-p1.json", Body({"id": "p1", "value": object()}))  # not JSON
    assert target.read_text() == '{"id": "p1"}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["pool-p1.json"]
    assert capsys.readouterr().out == ""


def test_write_body_without_a_secret_says_only_which_file(tmp_path, capsys):
    write_body(str(tmp_path), "pool-p1.json", Body({"id": "p1"}))
    assert capsys.readouterr().out == f"Wrote {tmp_path / 'pool-p1.json'}\n"
