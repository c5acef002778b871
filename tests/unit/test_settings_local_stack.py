"""A missing env file beside make local's marker (toolkit/envfile.py local_stack_marker) is a local stack that
is not running: the scripts say so, and how to start it, rather than only that a file is missing."""

import pytest

from tests.conftest import REPO_ROOT, VALID_ENV
from toolkit.envfile import local_stack_marker
from toolkit.settings import ENV_FILE_VARIABLE, ConfigError, read_settings, require


def test_a_missing_env_file_beside_the_marker_says_to_start_the_local_stack(tmp_path):
    env_file = tmp_path / "local.env"
    local_stack_marker(env_file).write_text("# make local\n")
    settings = read_settings({ENV_FILE_VARIABLE: str(env_file), **VALID_ENV})

    assert settings.local_stack_stopped
    with pytest.raises(ConfigError) as caught:
        require(settings, "AZURE_BATCH_ACCOUNT", "BLOB_CONTAINER_URL")
    assert str(caught.value) == (
        f"BATCH_TOOLKIT_ENV_FILE names {str(env_file)!r}, which is not a file. The local stack is not running "
        "(make local writes that file while Azurite and the Batch emulator run, and removes it when they stop): "
        f"start it with make local in another shell, in {REPO_ROOT}.")
    assert caught.value.variables == (ENV_FILE_VARIABLE,)


def test_without_the_marker_a_missing_env_file_is_only_not_a_file(tmp_path):
    settings = read_settings({ENV_FILE_VARIABLE: str(tmp_path / "local.env"), **VALID_ENV})

    assert not settings.local_stack_stopped
    with pytest.raises(ConfigError, match=r"which is not a file\. Set it in the environment to the path of") as caught:
        require(settings, "AZURE_BATCH_ACCOUNT")
    assert "local stack" not in str(caught.value)


def test_the_env_file_beside_its_marker_is_read_while_the_stack_runs(tmp_path):
    env_file = tmp_path / "local.env"
    env_file.write_text("AZURE_BATCH_ACCOUNT=fromlocalstack\n")
    local_stack_marker(env_file).write_text("# make local\n")
    settings = read_settings({ENV_FILE_VARIABLE: str(env_file)})

    assert not settings.local_stack_stopped and ENV_FILE_VARIABLE not in settings.problems
    assert settings.batch["name"] == "fromlocalstack"
