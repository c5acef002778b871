"""What the scripts send, as JSON, through the SDK's own serialisation (what goes on the wire)."""

import json

import pytest
from azure.core.serialization import AzureJSONEncoder

import create_pool_job
import send_task
from config_resources import ENV_FILE_VARIABLE, pool_settings, read_settings, task_settings
from tests.conftest import VALID_ENV
from toolkit.batch import MAX_NODES_METADATA, SUBMISSION_MARK
from toolkit.dryrun import wire_json
from toolkit.jobs import PREPARATION_METADATA, REPOSITORY_METADATA, preparation_hash
from toolkit.redaction import PLACEHOLDER


def wire(model) -> dict:
    """The JSON the SDK sends for ``model`` (its public as_dict, without read-only fields)."""
    return json.loads(json.dumps(model.as_dict(exclude_readonly=True), cls=AzureJSONEncoder))


@pytest.fixture
def settings():
    return read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV})


def test_pool_is_an_autoscaled_mpi_pool_on_ubuntu_24_04(settings):
    body = wire(create_pool_job.build_pool(pool_settings(settings), "p1", "standard_d2s_v5", 5, "run-7"))
    assert body["id"] == "p1" and body["vmSize"] == "standard_d2s_v5"
    assert body["virtualMachineConfiguration"] == {
        "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server",
                           "version": "latest"},
        "nodeAgentSKUId": "batch.node.ubuntu 24.04"}
    assert body["enableInterNodeCommunication"] is True
    assert body["taskSlotsPerNode"] == 1
    assert body["enableAutoScale"] is True
    assert body["autoScaleEvaluationInterval"] == "PT05M00S"
    assert "targetDedicatedNodes" not in body and "targetLowPriorityNodes" not in body
    assert body["metadata"] == [{"name": MAX_NODES_METADATA, "value": "5"}, {"name": SUBMISSION_MARK, "value": "run-7"}]
    # The pool starts held at 0 nodes; the real formula is enabled once the service has evaluated it.
    assert body["autoScaleFormula"] == create_pool_job.HOLD_FORMULA
    formula = create_pool_job.autoscale_formula(5)
    assert "$PendingTasks" in formula
    assert "$TargetDedicatedNodes = min(5," in formula
    assert "$NodeDeallocationOption = taskcompletion;" in formula


def test_pool_options_change_size_and_cap(settings):
    body = wire(create_pool_job.build_pool(pool_settings(settings), "p1", "standard_d4s_v5", 3))
    assert body["vmSize"] == "standard_d4s_v5"
    assert "min(3," in create_pool_job.autoscale_formula(3)
    assert body["metadata"][0]["value"] == "3"


def test_job_prepares_each_node_with_the_repository(settings):
    body = wire(create_pool_job.build_job(pool_settings(settings), "j1", "p1", "run-7"))
    assert body["id"] == "j1" and body["poolInfo"] == {"poolId": "p1"}
    prep = body["jobPreparationTask"]
    assert prep["commandLine"] == settings.cmd_prep_task
    assert prep["waitForSuccess"] is True
    assert prep["rerunOnNodeRebootAfterSuccess"] is True
    assert prep["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}
    # The submission mark, then what the preparation task does (toolkit/jobs.py compares these on a re-run).
    assert body["metadata"] == [{"name": SUBMISSION_MARK, "value": "run-7"},
                                {"name": PREPARATION_METADATA, "value": preparation_hash(settings.cmd_prep_task)},
                                {"name": REPOSITORY_METADATA, "value": VALID_ENV["REPOSITORY_URL"]}]


def test_task_is_multi_instance_with_uploaded_outputs(settings):
    body = wire(send_task.build_task(task_settings(settings), "j1", "t1", 3, "run-42"))
    assert body["id"] == "t1"
    assert body["commandLine"] == settings.start_command
    assert body["multiInstanceSettings"] == {"numberOfInstances": 3,
                                             "coordinationCommandLine": settings.coordination_command}
    # mpirun runs as the pool's non-admin auto-user (_azbatch), which Batch sets up SSH between nodes for.
    assert body["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
    assert body["constraints"] == {"maxWallClockTime": "PT01H00M00S", "maxTaskRetryCount": 0}
    assert "requiredSlots" not in body or body["requiredSlots"] == 1
    [output] = body["outputFiles"]
    assert output["filePattern"] == "../std*.txt"
    assert output["uploadOptions"] == {"uploadCondition": "taskcompletion"}
    container = output["destination"]["container"]
    assert container["path"] == "j1/t1"
    assert container["containerUrl"] == VALID_ENV["BLOB_CONTAINER_URL"]
    # Marks this run's request, so a retried POST recognises its own task.
    assert body["environmentSettings"] == [{"name": SUBMISSION_MARK, "value": "run-42"}]


def test_task_wall_clock_follows_settings():
    settings = read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV, "TASK_MAX_WALL_CLOCK_MINUTES": "90"})
    body = wire(send_task.build_task(task_settings(settings), "j1", "t1", 2))
    assert body["constraints"]["maxWallClockTime"] == "PT01H30M00S"


@pytest.mark.parametrize("build", [
    lambda settings: create_pool_job.build_pool(pool_settings(settings), "p1", "standard_d2s_v5", 5, "run-7"),
    lambda settings: create_pool_job.build_job(pool_settings(settings), "j1", "p1", "run-7"),
    lambda settings: send_task.build_task(task_settings(settings), "j1", "t1", 3, "run-42"),
])
def test_dry_run_prints_the_wire_json_with_the_sas_signature_redacted(settings, build):
    model = build(settings)
    printed = wire_json(model)
    assert "SECRETSIGNATURE" not in printed
    assert json.loads(printed) == json.loads(json.dumps(wire(model)).replace("SECRETSIGNATURE", PLACEHOLDER))
