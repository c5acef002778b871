"""What the scripts send, as JSON, through the SDK's own serialisation (what goes on the wire).

Expected values are literals (the REST API's field names and formats, the toolkit's metadata names that a
re-run reads back), never values computed by the code under test: a change to what is sent must show here."""

import hashlib
import json

import pytest
from azure.core.serialization import AzureJSONEncoder

import create_pool_job
import send_task
from config_resources import ENV_FILE_VARIABLE, pool_settings, read_settings, task_settings
from tests.conftest import VALID_ENV
from toolkit.dryrun import wire_json
from toolkit.redaction import PLACEHOLDER

# The default commands with VALID_ENV's settings (REPOSITORY_URL https://example.org/me/mpi-demo.git,
# NB_PROCESSES 4, PROGRAM demo_azure_batch/script.py).
PREP_COMMAND = (
    "/bin/bash -c 'set -e; command -v git >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive "
    "apt-get install -y -q git; }; rm -rf repo; git clone --quiet \"https://example.org/me/mpi-demo.git\" repo; "
    "if [ ! -f repo/demo_azure_batch/install.sh ]; then echo \"demo_azure_batch/install.sh not found in "
    "REPOSITORY_URL https://example.org/me/mpi-demo.git: add it (see the README, Run your own program)\" >&2; "
    "exit 3; fi; cd repo/demo_azure_batch; chmod +x install.sh; ./install.sh'")
START_COMMAND = (
    "/bin/bash -c 'set -- ${CCP_NODES:-$CCP_NODES_CORES}; hosts=; slots=0; nodes=0; if [ $# -ge 3 ]; "
    "then shift; while [ $# -ge 2 ]; do hosts=$hosts${hosts:+,}$1:$2; slots=$((slots + $2)); "
    "nodes=$((nodes + 1)); shift 2; done; else cores=$(nproc); for host in ${AZ_BATCH_HOST_LIST//,/ }; "
    "do hosts=$hosts${hosts:+,}$host:$cores; slots=$((slots + cores)); nodes=$((nodes + 1)); done; fi; "
    "if [ 4 -gt \"$slots\" ]; then echo \"Warning: 4 MPI processes on $slots cores of $nodes node(s): "
    "oversubscribing, which runs slower (fewer processes or more nodes: --processes, --nodes)\" >&2; "
    "over=1; else over=; fi; export OMPI_MCA_btl_tcp_if_include=eth0 OMPI_MCA_oob_tcp_if_include=eth0 "
    "OMPI_MCA_mca_base_env_list=\"AZ_BATCH_HOST_LIST;AZ_BATCH_NODE_LIST;AZ_BATCH_TASK_SHARED_DIR;"
    "AZ_BATCH_JOB_ID;AZ_BATCH_TASK_ID\"; "
    "if [ -n \"$over\" ]; then export OMPI_MCA_rmaps_base_oversubscribe=1; fi; cd "
    "\"$AZ_BATCH_TASK_SHARED_DIR\" && exec mpirun -np 4 --host \"$hosts\" python3 -m mpi4py "
    "\"$AZ_BATCH_JOB_PREP_WORKING_DIR/repo/demo_azure_batch/script.py\"'")
COORDINATION_COMMAND = "/bin/bash -c 'command -v mpirun >/dev/null && echo \"Node $AZ_BATCH_NODE_ID ready for MPI\"'"
# The formula create_pool_job.py enables for --max_nodes 5 (toolkit/autoscale.py says what it does and why).
FORMULA_5 = (
    "pendingNow = max(0, $PendingTasks.GetSample(1));\n"
    "recentPercent = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 3);\n"
    "pendingRecent = recentPercent < 70 ? pendingNow : max($PendingTasks.GetSample(TimeInterval_Minute * 3));\n"
    "$TargetDedicatedNodes = min(5, max(pendingNow, pendingRecent));\n"
    "$TargetLowPriorityNodes = 0;\n"
    "$NodeDeallocationOption = taskcompletion;")


def wire(model) -> dict:
    """The JSON the SDK sends for ``model`` (its public as_dict, without read-only fields)."""
    return json.loads(json.dumps(model.as_dict(exclude_readonly=True), cls=AzureJSONEncoder))


@pytest.fixture
def settings():
    return read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV})


def test_pool_is_an_autoscaled_mpi_pool_on_ubuntu_24_04(settings):
    body = wire(create_pool_job.build_pool(pool_settings(settings), "p1", "standard_d2s_v5", 5, "run-7"))
    # The whole body: no targetDedicatedNodes / targetLowPriorityNodes beside autoscale (the service refuses both).
    assert body == {
        "id": "p1", "vmSize": "standard_d2s_v5",
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server",
                               "version": "latest"},
            "nodeAgentSKUId": "batch.node.ubuntu 24.04"},
        "enableInterNodeCommunication": True,
        "taskSlotsPerNode": 1,
        "enableAutoScale": True,
        # The pool starts held at 0 nodes; the real formula is enabled once the service has evaluated it.
        "autoScaleFormula": "$TargetDedicatedNodes = 0;\n$TargetLowPriorityNodes = 0;",
        "autoScaleEvaluationInterval": "PT05M00S",
        "metadata": [{"name": "mpi-toolkit-max-nodes", "value": "5"},
                     {"name": "MPI_TOOLKIT_SUBMISSION_ID", "value": "run-7"}]}
    assert create_pool_job.autoscale_formula(5) == FORMULA_5


def test_pool_options_change_size_and_cap(settings):
    body = wire(create_pool_job.build_pool(pool_settings(settings), "p1", "standard_d4s_v5", 3))
    assert body["vmSize"] == "standard_d4s_v5"
    assert create_pool_job.autoscale_formula(3) == FORMULA_5.replace("min(5,", "min(3,")
    assert body["metadata"] == [{"name": "mpi-toolkit-max-nodes", "value": "3"},
                                {"name": "MPI_TOOLKIT_SUBMISSION_ID", "value": ""}]


def test_job_prepares_each_node_with_the_repository(settings):
    body = wire(create_pool_job.build_job(pool_settings(settings), "j1", "p1", "run-7"))
    assert body["id"] == "j1" and body["poolInfo"] == {"poolId": "p1"}
    prep = body["jobPreparationTask"]
    assert prep == {"commandLine": PREP_COMMAND, "waitForSuccess": True, "rerunOnNodeRebootAfterSuccess": True,
                    "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}}
    # The submission mark, then what the preparation task does (toolkit/jobs.py compares these on a re-run):
    # the SHA-256 of the command line sent, and the repository it clones.
    assert body["metadata"] == [
        {"name": "MPI_TOOLKIT_SUBMISSION_ID", "value": "run-7"},
        {"name": "mpi-toolkit-preparation-sha256", "value": hashlib.sha256(PREP_COMMAND.encode()).hexdigest()},
        {"name": "mpi-toolkit-repository", "value": "https://example.org/me/mpi-demo.git"}]


def test_task_is_multi_instance_with_uploaded_outputs(settings):
    body = wire(send_task.build_task(task_settings(settings), "j1", "t1", 3, "run-42"))
    assert body["id"] == "t1"
    assert body["commandLine"] == START_COMMAND
    assert body["multiInstanceSettings"] == {"numberOfInstances": 3, "coordinationCommandLine": COORDINATION_COMMAND}
    # mpirun runs as the pool's non-admin auto-user (_azbatch), which Batch sets up SSH between nodes for.
    assert body["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
    assert body["constraints"] == {"maxWallClockTime": "PT01H00M00S", "maxTaskRetryCount": 0}
    assert "requiredSlots" not in body or body["requiredSlots"] == 1
    [output] = body["outputFiles"]
    assert output["filePattern"] == "../std*.txt"
    assert output["uploadOptions"] == {"uploadCondition": "taskcompletion"}
    container = output["destination"]["container"]
    assert container["path"] == "j1/t1"
    assert container["containerUrl"] == ("https://mystorage.blob.core.windows.net/outputs?sv=2025-01-05"
                                         "&se=2099-01-01T00%3A00%3A00Z&sr=c&sp=racwl&sig=SECRETSIGNATURE")
    # Marks this run's request, so a retried POST recognises its own task.
    assert body["environmentSettings"] == [{"name": "MPI_TOOLKIT_SUBMISSION_ID", "value": "run-42"}]


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
