"""toolkit.cli, toolkit.batch and toolkit.storage: id rules, redaction of errors, MPI checks on pools, the
exit-code mapping of run(), and the container SAS."""

import re

import pytest
from azure.batch import models
from azure.core.exceptions import HttpResponseError, ServiceRequestError

import toolkit.batch
import toolkit.cli
import toolkit.settings
import toolkit.storage
from config_resources import ConfigError, batch_access, read_settings, storage
from tests.conftest import VALID_ENV
from toolkit.cli import check_id, run
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.redaction import redact


def test_check_id_accepts_the_service_alphabet():
    assert check_id("--pool_id", "Pool_1-a" + "x" * 56) == "Pool_1-a" + "x" * 56


def test_redact_hides_sas_signatures():
    text = "https://s.blob.core.windows.net/c?sv=1&sig=abc%2Bdef&sp=w and sig=zzz"
    assert redact(text) == "https://s.blob.core.windows.net/c?sv=1&sig=REDACTED&sp=w and sig=REDACTED"


def pool(**fields):
    return models.BatchPool(**fields)


def test_mpi_problem_names_what_is_wrong():
    assert toolkit.batch.mpi_problem(pool(enable_inter_node_communication=True, task_slots_per_node=1)) is None
    assert "inter-node communication is off" in toolkit.batch.mpi_problem(pool(enable_inter_node_communication=False))
    assert "4 task slots per node" in toolkit.batch.mpi_problem(
        pool(enable_inter_node_communication=True, task_slots_per_node=4))


def test_pool_max_nodes_from_metadata_or_fixed_size():
    recorded = pool(enable_auto_scale=True,
                    metadata=[models.BatchMetadataItem(name=toolkit.batch.MAX_NODES_METADATA, value="5")])
    assert toolkit.batch.pool_max_nodes(recorded) == 5
    assert toolkit.batch.pool_max_nodes(pool(enable_auto_scale=False, target_dedicated_nodes=3)) == 3
    assert toolkit.batch.pool_max_nodes(pool(enable_auto_scale=True)) is None


def http_error(message, status_code):
    err = HttpResponseError(message)
    err.status_code = status_code  # None: the connection broke while the body was read
    return err


def failing(exception):
    def body(_settings):
        raise exception
    return body


@pytest.mark.parametrize("exception, code, words", [
    (ConfigError("NB_NODES", "is 'x', not a whole number"), ExitStatus.USAGE, "Configuration error: NB_NODES is 'x'"),
    (ToolkitError("Job [j] is completed"), ExitStatus.FAILED, "Job [j] is completed"),
    (ToolkitError("bad option", ExitStatus.USAGE), ExitStatus.USAGE, "bad option"),
    (KeyboardInterrupt(), ExitStatus.INTERRUPTED, "Interrupted."),
    (ServiceRequestError("connection refused https://x/c?sig=abc"), ExitStatus.FAILED, "Cannot reach the service"),
    (http_error("Operation returned an invalid status 'Forbidden'", 403), ExitStatus.FAILED,
     "The service refused the request"),
    (http_error("Connection broken: ConnectionResetError(104)", None), ExitStatus.FAILED,
     "The connection to the service broke while reading its answer"),
])
def test_run_maps_exceptions_to_one_line_and_exit_code(capsys, exception, code, words):
    assert run(failing(exception)) == code
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "sig=abc" not in err


def test_run_passes_the_body_result_through():
    assert run(lambda _settings: 0) == 0


def test_wire_value_reads_sdk_enums_and_other_casings():
    assert toolkit.batch.wire_value(models.BatchJobState.ACTIVE) == "active"
    assert toolkit.batch.wire_value("Completed") == "completed"
    assert toolkit.batch.wire_value(None) == ""


def test_env_file_readable_by_others_gets_a_warning(toolkit_env, tmp_path, capsys):
    env_file = tmp_path / "toolkit.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in VALID_ENV.items()))
    toolkit_env(BATCH_TOOLKIT_ENV_FILE=str(env_file))
    env_file.chmod(0o644)
    access = toolkit.settings.load_settings(read_settings(), batch_access)
    assert access.account == VALID_ENV["AZURE_BATCH_ACCOUNT"]
    assert f"other users can read it: chmod 600 {env_file}" in capsys.readouterr().err
    env_file.chmod(0o600)
    toolkit.settings.load_settings(read_settings(), batch_access)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("url, parts", [
    ("https://mystorage.blob.core.windows.net/outputs", ("mystorage", "outputs")),
    ("https://1mystorage.blob.core.windows.net/outputs", ("1mystorage", "outputs")),  # names may start with a digit
    ("http://127.0.0.1:10000/devstoreaccount1/outputs", ("devstoreaccount1", "outputs")),
    ("http://localhost:10000/devstoreaccount1/outputs", ("devstoreaccount1", "outputs")),
    ("http://127.0.0.1:10000/devstoreaccount1", None),  # an emulator URL without its container
    ("https://mystorage.blob.core.windows.net/", None),
    ("https://mystorage.blob.core.windows.net/outputs/more", None),
    ("mystorage/outputs", None),
])
def test_container_parts_on_azure_and_emulators(url, parts):
    from toolkit.values import container_parts
    assert container_parts(url) == parts


def sas_fields(url):
    from urllib.parse import parse_qs, urlsplit
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_storage_key_gives_a_least_privilege_sas_per_use():
    import datetime

    from config_resources import ENV_FILE_VARIABLE, read_settings
    settings = read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV,
                              "BLOB_CONTAINER_URL": "https://mystorage.blob.core.windows.net/outputs",
                              "AZURE_STORAGE_KEY": "A" * 86 + "=="})
    toolkit.storage.check_container_sas(storage(settings), "rw", "anything")  # nothing configured to check
    url = toolkit.storage.container_sas_url(storage(settings), "cw", datetime.timedelta(minutes=75))
    fields = sas_fields(url)
    assert url.startswith("https://mystorage.blob.core.windows.net/outputs?")
    assert fields["sp"] == "cw" and fields["sr"] == "c" and fields["sig"]
    expiry = datetime.datetime.fromisoformat(fields["se"].replace("Z", "+00:00"))
    left = expiry - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(minutes=74) < left <= datetime.timedelta(minutes=75)


def test_configured_sas_is_used_as_given():
    import datetime

    from config_resources import ENV_FILE_VARIABLE, read_settings
    settings = read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV})
    url = toolkit.storage.container_sas_url(storage(settings), "r", datetime.timedelta(hours=1))
    assert url == VALID_ENV["BLOB_CONTAINER_URL"]


@pytest.mark.parametrize("permissions, words", [("wl", "downloads need read (r)"), ("racwl", None)])
def test_check_container_sas_names_the_missing_permission(permissions, words):
    from config_resources import ENV_FILE_VARIABLE, read_settings
    url = VALID_ENV["BLOB_CONTAINER_URL"].replace("sp=racwl", f"sp={permissions}")
    settings = read_settings({ENV_FILE_VARIABLE: "", **VALID_ENV, "BLOB_CONTAINER_URL": url})
    if words is None:
        toolkit.storage.check_container_sas(storage(settings), "r", "downloads")
        return
    with pytest.raises(ToolkitError, match=re.escape(words)) as caught:
        toolkit.storage.check_container_sas(storage(settings), "r", "downloads")
    assert caught.value.exit_code == ExitStatus.USAGE
