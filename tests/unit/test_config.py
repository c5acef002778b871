"""config_resources: .env versus environment, defaults, every malformed value, and the checked settings types."""

import subprocess
import sys

import pytest

import config_resources
import toolkit.settings
from config_resources import ConfigError, read_settings, require
from tests.conftest import REPO_ROOT, VALID_ENV
from toolkit.values import sas_token_expiry


def settings_from(**values):
    return read_settings({config_resources.ENV_FILE_VARIABLE: "", **values})


def test_defaults_follow_the_tutorial_on_current_azure():
    settings = settings_from(**VALID_ENV)
    assert settings.problems == {}
    assert settings.max_nodes == 5 and settings.nb_nodes == 2 and settings.nb_processes == 4
    assert settings.image_reference == {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server",
                                        "version": "latest"}
    assert settings.node_agent_sku_id == "batch.node.ubuntu 24.04"
    assert settings.autoscale_evaluation_minutes == 5
    assert settings.vm_size == "standard_d2s_v5"
    # The tutorial's preparation: clone the repository, enter demo_azure_batch, chmod +x install.sh, run it.
    assert 'git clone --quiet "https://example.org/me/mpi-demo.git" repo' in settings.cmd_prep_task
    assert "cd repo/demo_azure_batch; chmod +x install.sh; ./install.sh" in settings.cmd_prep_task
    assert ('mpirun -np 4 --host "$hosts" python3 -m mpi4py '
            '"$AZ_BATCH_JOB_PREP_WORKING_DIR/repo/demo_azure_batch/script.py"') in settings.start_command
    # Run by the non-admin pool user: no Open MPI run-as-root override; ranks start where every node can write.
    assert "ALLOW_RUN_AS_ROOT" not in settings.start_command
    assert 'cd "$AZ_BATCH_TASK_SHARED_DIR"' in settings.start_command
    # MPICH (the emulator's none mode) refuses Open MPI's options: the settings go as OMPI_* variables.
    assert not any(option in settings.start_command for option in (" --oversubscribe", " --mca ", " -x "))


def test_tutorial_names_exist_at_module_level():
    for name in ("resource_gpe_name", "batch", "blob_container", "repository", "cmd_prep_task", "nb_processes",
                 "coordination_command", "start_command"):
        assert hasattr(config_resources, name)
    assert set(config_resources.batch) == {"name", "key", "url"}
    assert set(config_resources.blob_container) == {"url", "sas_token"}


def test_environment_wins_over_env_file(tmp_path):
    env_file = tmp_path / "my.env"
    env_file.write_text("AZURE_BATCH_ACCOUNT=fromfile\nNB_PROCESSES=8\nMAX_NODES=3\n")
    settings = read_settings({config_resources.ENV_FILE_VARIABLE: str(env_file), "AZURE_BATCH_ACCOUNT": "fromenv"})
    assert settings.batch["name"] == "fromenv"
    assert settings.nb_processes == 8 and settings.max_nodes == 3
    assert "mpirun -np 8 " in settings.start_command


def test_empty_env_file_variable_reads_no_file(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("AZURE_BATCH_ACCOUNT=fromdefaultfile\n")
    monkeypatch.setattr(toolkit.settings, "DEFAULT_ENV_FILE", tmp_path / ".env")
    assert read_settings({}).batch["name"] == "fromdefaultfile"
    assert read_settings({config_resources.ENV_FILE_VARIABLE: ""}).batch["name"] == ""


def test_sas_from_token_variable_or_url_query():
    url = "https://s.blob.core.windows.net/c"
    from_token = settings_from(BLOB_CONTAINER_URL=url, AZURE_STORAGE_SAS_TOKEN="?sp=w&sig=abc")
    assert from_token.blob_container == {"url": url, "sas_token": "sp=w&sig=abc"}
    from_query = settings_from(BLOB_CONTAINER_URL=url + "?sp=r&sig=xyz", AZURE_STORAGE_SAS_TOKEN="sp=w&sig=abc")
    assert from_query.blob_container == {"url": url, "sas_token": "sp=r&sig=xyz"}


@pytest.mark.parametrize("variable, value, words", [
    ("AZURE_BATCH_ACCOUNT", "My_Account", "lowercase letters and digits"),
    ("AZURE_BATCH_ACCESS_KEY", "not base64!", "not a base64 account key"),
    ("AZURE_BATCH_ENDPOINT", "mybatch.westeurope.batch.azure.com", "not a URL with a scheme"),
    ("AZURE_BATCH_ENDPOINT", "http://mybatch.westeurope.batch.azure.com", "needs https://"),
    ("BLOB_CONTAINER_URL", "mystorage/outputs?sig=x", "not a container URL"),
    ("BLOB_CONTAINER_URL", "https://s.blob.core.windows.net/c?sv=1&sp=w", "with no signature field"),
    ("NB_PROCESSES", "four", "not a whole number"),
    ("NB_PROCESSES", "0", "below 1"),
    ("NB_NODES", "-2", "outside 1..100"),
    ("MAX_NODES", "0", "outside 1..100"),
    ("MAX_NODES", "101", "outside 1..100"),
    ("AUTOSCALE_EVALUATION_MINUTES", "2", "outside 5..10080"),
    ("TASK_MAX_WALL_CLOCK_MINUTES", "1.5", "not a whole number"),
    ("REPOSITORY_URL", "https://x/it's.git", "contains quotes"),
    ("AZURE_BATCH_ENDPOINT", "http://127.0.0.1:notaport", "whose port is not a number"),
    ("TASK_MAX_WALL_CLOCK_MINUTES", "10000000000", "outside 1..259200"),
])
def test_malformed_value_names_the_variable(variable, value, words):
    settings = settings_from(**{**VALID_ENV, variable: value})
    with pytest.raises(ConfigError) as caught:
        require(settings, *config_resources.BATCH_VARIABLES, "BLOB_CONTAINER_URL", "REPOSITORY_URL", "NB_NODES",
                "NB_PROCESSES", "MAX_NODES", "AUTOSCALE_EVALUATION_MINUTES", "TASK_MAX_WALL_CLOCK_MINUTES")
    message = str(caught.value)
    assert message.startswith(variable) and words in message and "\n" not in message
    assert caught.value.variable == variable


@pytest.mark.parametrize("missing", ["AZURE_BATCH_ACCOUNT", "AZURE_BATCH_ENDPOINT",
                                     "BLOB_CONTAINER_URL", "REPOSITORY_URL"])
def test_missing_value_names_the_variable(missing):
    values = {k: v for k, v in VALID_ENV.items() if k != missing}
    with pytest.raises(ConfigError, match=f"^{missing} is not set"):
        require(settings_from(**values), *config_resources.BATCH_VARIABLES, "BLOB_CONTAINER_URL", "REPOSITORY_URL")


@pytest.mark.parametrize("vm_size", ["", " ", "standard d2s"])
def test_vm_size_must_be_a_size_name(vm_size):
    settings = settings_from(**VALID_ENV, VM_SIZE=vm_size)
    assert settings.problems["VM_SIZE"].endswith("not a VM size name")


def test_storage_key_that_is_not_base64_is_refused_with_the_container():
    settings = settings_from(**{**VALID_ENV, "BLOB_CONTAINER_URL": "https://s.blob.core.windows.net/c",
                                "AZURE_STORAGE_KEY": "not-base64!"})
    with pytest.raises(ConfigError, match="^AZURE_STORAGE_KEY is not a base64 account key"):
        require(settings, "BLOB_CONTAINER_URL")


def test_repository_path_may_hold_spaces():
    settings = settings_from(**{**VALID_ENV, "REPOSITORY_URL": "/home/me/my repo"})
    assert "REPOSITORY_URL" not in settings.problems
    assert 'git clone --quiet "/home/me/my repo" repo' in settings.cmd_prep_task


def test_date_only_sas_expiry_is_utc():
    url = VALID_ENV["BLOB_CONTAINER_URL"].replace("se=2099-01-01T00%3A00%3A00Z", "se=2030-01-01")
    settings = settings_from(**{**VALID_ENV, "BLOB_CONTAINER_URL": url})
    expiry = sas_token_expiry(settings.blob_container["sas_token"])
    assert expiry.isoformat() == "2030-01-01T00:00:00+00:00"


@pytest.mark.parametrize("content, words", [
    (None, "which is not a file"),
    (b"AZURE_BATCH_ACCOUNT=abc\nthis is not a setting\n", "whose line 2 is not NAME=value"),
    (b"AZURE_BATCH_ACCOUNT=caf\xe9\n", "which cannot be read"),
])
def test_broken_env_file_is_named_first(tmp_path, content, words):
    env_file = tmp_path / "toolkit.env"
    if content is not None:
        env_file.write_bytes(content)
    settings = read_settings({config_resources.ENV_FILE_VARIABLE: str(env_file), **VALID_ENV})
    with pytest.raises(ConfigError) as caught:
        require(settings, "AZURE_BATCH_ACCOUNT")
    assert str(caught.value).startswith(f"BATCH_TOOLKIT_ENV_FILE names {str(env_file)!r}, ")
    assert words in str(caught.value)


def test_env_file_values_are_taken_literally(tmp_path):
    env_file = tmp_path / "toolkit.env"
    env_file.write_text("START_COMMAND=/bin/bash -c 'mpirun --host ${AZ_BATCH_HOST_LIST} app'\n")
    settings = read_settings({config_resources.ENV_FILE_VARIABLE: str(env_file)})
    assert settings.start_command == "/bin/bash -c 'mpirun --host ${AZ_BATCH_HOST_LIST} app'"


def test_help_works_with_an_unreadable_env_file(tmp_path):
    env_file = tmp_path / "toolkit.env"
    env_file.write_bytes(b"\xff\xfe")
    result = subprocess.run([sys.executable, str(REPO_ROOT / "send_task.py"), "--help"], capture_output=True,
                            text=True, timeout=30, env={"PATH": "/usr/bin:/bin",
                                                         config_resources.ENV_FILE_VARIABLE: str(env_file)})
    assert result.returncode == 0 and result.stderr == ""


def test_custom_prep_command_replaces_the_repository():
    values = {k: v for k, v in VALID_ENV.items() if k != "REPOSITORY_URL"}
    settings = settings_from(**values, CMD_PREP_TASK="/bin/bash -c 'echo ready'")
    require(settings, "REPOSITORY_URL")
    assert settings.cmd_prep_task == "/bin/bash -c 'echo ready'"


def test_loopback_endpoint_may_use_http():
    assert settings_from(**{**VALID_ENV, "AZURE_BATCH_ENDPOINT": "http://127.0.0.1:8080"}).problems == {}


def test_import_never_fails_on_bad_values():
    env = {"PATH": "/usr/bin:/bin", config_resources.ENV_FILE_VARIABLE: "", "NB_PROCESSES": "x",
           "AZURE_BATCH_ACCESS_KEY": "%%%", "MAX_NODES": "-1", "AZURE_BATCH_ENDPOINT": "nope"}
    result = subprocess.run([sys.executable, "-c", "import config_resources as c; print(sorted(c.settings.problems))"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "AZURE_BATCH_ACCESS_KEY" in result.stdout and "NB_PROCESSES" in result.stdout


def test_every_variable_is_documented():
    example = (REPO_ROOT / ".env.example").read_text()
    readme = (REPO_ROOT / "docs" / "configuration.md").read_text()   # the README links it
    for variable in config_resources.VARIABLES:
        assert f"{variable}=" in example or f"# {variable}" in example, variable
        assert f"`{variable}`" in readme, variable


# --- checked settings: each type's fields are set, or its function raises ConfigError -----------

def test_checked_settings_hold_the_values_with_no_optional_left():
    settings = settings_from(**{**VALID_ENV, "NB_NODES": "3", "TASK_MAX_WALL_CLOCK_MINUTES": "90"})
    pool = config_resources.pool_settings(settings)
    task = config_resources.task_settings(settings)
    assert pool.batch == config_resources.BatchAccess(account="mybatchaccount", key=VALID_ENV["AZURE_BATCH_ACCESS_KEY"],
                                                      endpoint=VALID_ENV["AZURE_BATCH_ENDPOINT"])
    assert pool.max_nodes == 5 and pool.autoscale_evaluation_minutes == 5
    assert pool.cmd_prep_task == settings.cmd_prep_task
    assert task.nb_nodes == 3 and task.task_max_wall_clock_minutes == 90
    assert task.storage.container_url == "https://mystorage.blob.core.windows.net/outputs"
    assert task.storage.sas_token.endswith("sig=SECRETSIGNATURE") and task.storage.key == ""


@pytest.mark.parametrize("check, values, message", [
    (config_resources.batch_access, {"AZURE_BATCH_ENDPOINT": "mybatchaccount.batch.azure.com"},
     "^AZURE_BATCH_ENDPOINT is 'mybatchaccount.batch.azure.com', not a URL with a scheme"),
    (config_resources.storage, {"BLOB_CONTAINER_URL": ""}, "^BLOB_CONTAINER_URL is not set"),
    (config_resources.pool_settings, {"MAX_NODES": "0"}, "^MAX_NODES is 0, outside 1..100"),
    (config_resources.pool_settings, {"AUTOSCALE_EVALUATION_MINUTES": "x"},
     "^AUTOSCALE_EVALUATION_MINUTES is 'x', not a whole number"),
    (config_resources.pool_settings, {"REPOSITORY_URL": ""}, "^REPOSITORY_URL is not set"),
    (config_resources.task_settings, {"NB_NODES": "-1"}, "^NB_NODES is -1, outside 1..100"),
    (config_resources.task_settings, {"TASK_MAX_WALL_CLOCK_MINUTES": "0"},
     "^TASK_MAX_WALL_CLOCK_MINUTES is 0, outside 1..259200"),
    (config_resources.task_settings, {"AZURE_BATCH_ACCOUNT": ""}, "^AZURE_BATCH_ACCOUNT is not set"),
])
def test_each_checked_settings_type_refuses_what_it_needs(check, values, message):
    with pytest.raises(ConfigError, match=message):
        check(settings_from(**{**VALID_ENV, **values}))


def test_without_keys_or_sas_the_settings_are_for_microsoft_entra_id():
    """No AZURE_BATCH_ACCESS_KEY: Entra ID sign-in; a container URL without SAS or key: user-delegation SAS."""
    values = {k: v for k, v in VALID_ENV.items() if k not in ("AZURE_BATCH_ACCESS_KEY", "AZURE_STORAGE_KEY")}
    values["BLOB_CONTAINER_URL"] = "https://s.blob.core.windows.net/c"
    settings = settings_from(**values)
    assert config_resources.batch_access(settings).key == ""
    blobs = config_resources.storage(settings)
    assert (blobs.container_url, blobs.sas_token, blobs.key) == ("https://s.blob.core.windows.net/c", "", "")
