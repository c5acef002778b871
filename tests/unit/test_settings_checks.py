"""Settings that catch typos, report every problem at once, point to .env.example, and run your own program."""

import pytest

import config_resources
import toolkit.settings
from config_resources import ConfigError, read_settings, require
from tests.conftest import VALID_ENV


def settings_from(**values):
    return read_settings({config_resources.ENV_FILE_VARIABLE: "", **values})


@pytest.mark.parametrize("typo, intended", [("NB_NODE", "NB_NODES"), ("STRAT_COMMAND", "START_COMMAND"),
                                            ("AZURE_BATCH_ACOUNT", "AZURE_BATCH_ACCOUNT")])
def test_a_close_unknown_name_in_the_env_file_is_a_warning(tmp_path, typo, intended):
    env_file = tmp_path / "my.env"
    env_file.write_text(f"{typo}=3\nMY_OWN_THING=1\n")
    settings = read_settings({config_resources.ENV_FILE_VARIABLE: str(env_file), **VALID_ENV})
    assert len(settings.warnings) == 1
    assert f"sets {typo}, which the toolkit does not read: did you mean {intended}?" in settings.warnings[0]


def test_every_missing_variable_is_named_in_one_line():
    settings = settings_from(AZURE_BATCH_ENDPOINT="https://a.westeurope.batch.azure.com", NB_NODES="two")
    with pytest.raises(ConfigError) as caught:
        config_resources.task_settings(settings)
    message = str(caught.value)
    assert "\n" not in message
    for variable in ("AZURE_BATCH_ACCOUNT", "BLOB_CONTAINER_URL", "NB_NODES"):
        assert variable in message
    # No key is no problem (Microsoft Entra ID sign-in); the variables come in the scripts' order.
    assert caught.value.variables == ("AZURE_BATCH_ACCOUNT", "BLOB_CONTAINER_URL", "NB_NODES")
    assert message.startswith("AZURE_BATCH_ACCOUNT is not set.")


def test_no_env_file_points_to_the_example(tmp_path, monkeypatch):
    monkeypatch.setattr(toolkit.settings, "DEFAULT_ENV_FILE", tmp_path / ".env")
    with pytest.raises(ConfigError, match=r"No \.env file was found .*: cp \.env\.example \.env"):
        require(read_settings({}), "AZURE_BATCH_ACCOUNT")
    # A file chosen on purpose (or none, with an empty BATCH_TOOLKIT_ENV_FILE) gets no such hint.
    with pytest.raises(ConfigError) as caught:
        require(settings_from(), "AZURE_BATCH_ACCOUNT")
    assert ".env.example" not in str(caught.value)


def test_program_and_its_arguments_make_the_default_start_command():
    settings = settings_from(**VALID_ENV, PROGRAM="src/heat.py", PROGRAM_ARGS="--steps 10", NB_PROCESSES="3")
    assert settings.start_command.endswith(
        'mpirun -np 3 --host "$hosts" python3 -m mpi4py '
        '"$AZ_BATCH_JOB_PREP_WORKING_DIR/repo/src/heat.py" --steps 10\'')
    binary = settings_from(**VALID_ENV, PROGRAM="bin/solver")
    assert '--host "$hosts" "$AZ_BATCH_JOB_PREP_WORKING_DIR/repo/bin/solver"\'' in binary.start_command
    task = config_resources.task_settings(settings)
    assert "mpirun -np 7 " in task.start_command_for(7) and "--steps 10" in task.start_command_for(7)


@pytest.mark.parametrize("variable, value", [("PROGRAM", "/abs/path.py"), ("PROGRAM", "../up.py"),
                                             ("PROGRAM", 'a"b.py'), ("PROGRAM", "my prog.py"),
                                             ("PROGRAM_ARGS", "--name 'x'")])
def test_program_that_would_break_the_command_is_refused(variable, value):
    settings = settings_from(**{**VALID_ENV, variable: value})
    with pytest.raises(ConfigError, match=f"^{variable} "):
        config_resources.task_settings(settings)


def test_missing_install_script_is_named_by_the_preparation_task():
    command = config_resources.default_cmd_prep_task("/srv/repo")
    assert "demo_azure_batch/install.sh not found in REPOSITORY_URL /srv/repo" in command
    assert "exit 3" in command


def test_az_hints_name_the_configured_account_and_resource_group(toolkit_env):
    from toolkit.cli import with_own_names

    def with_names_configured(message):
        return with_own_names(message, read_settings())

    hint = "(az batch account keys list --name ACCOUNT --resource-group GROUP)"
    assert with_names_configured(hint) == hint  # nothing configured: the placeholders stay
    toolkit_env(AZURE_BATCH_ACCOUNT="mybatch1", AZURE_RESOURCE_GROUP="research-rg")
    assert with_names_configured(hint) == "(az batch account keys list --name mybatch1 --resource-group research-rg)"


def test_a_missing_variable_names_the_env_file_actually_read(tmp_path):
    env_file = tmp_path / "demo.env"
    env_file.write_text("NB_NODES=2\n")
    with pytest.raises(ConfigError) as caught:
        require(read_settings({config_resources.ENV_FILE_VARIABLE: str(env_file)}), "AZURE_BATCH_ACCOUNT")
    assert str(caught.value).startswith(f"AZURE_BATCH_ACCOUNT is not set. Set it to the Batch account name, e.g. "
                                        f"mybatchaccount (az batch account list) in {env_file} or the environment.")
    assert " .env or" not in str(caught.value)
    # No file read (an empty BATCH_TOOLKIT_ENV_FILE): only the environment.
    with pytest.raises(ConfigError, match=r"\(az batch account list\) in the environment\.$"):
        require(settings_from(), "AZURE_BATCH_ACCOUNT")


def test_a_broken_env_file_variable_says_to_set_it_in_the_environment(tmp_path):
    missing = tmp_path / "nowhere.env"
    with pytest.raises(ConfigError) as caught:
        require(read_settings({config_resources.ENV_FILE_VARIABLE: str(missing)}), "AZURE_BATCH_ACCOUNT")
    assert str(caught.value) == (f"BATCH_TOOLKIT_ENV_FILE names {str(missing)!r}, which is not a file. Set it in the "
                                 "environment to the path of a readable NAME=value file, or to an empty string to "
                                 "read none.")
