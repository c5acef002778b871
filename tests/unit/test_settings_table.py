"""The table of variables (toolkit/settings.py VARIABLE_TABLE): one row each, and its secret rows, whose values
Settings.secrets holds and no problem quotes."""

import pytest

from tests.conftest import VALID_ENV
from toolkit.settings import (
    DEFAULTS,
    ENV_FILE_VARIABLE,
    HOW_TO_SET,
    SECRET_VARIABLES,
    VARIABLE_TABLE,
    VARIABLES,
    ConfigError,
    read_settings,
    require,
)

CONTAINER_WITHOUT_SAS = "https://mystorage.blob.core.windows.net/outputs"


def settings_from(**values):
    return read_settings({ENV_FILE_VARIABLE: "", **values})


def test_each_variable_has_one_row_and_the_names_derived_from_them():
    assert len(set(VARIABLES)) == len(VARIABLES) == len(VARIABLE_TABLE)
    assert set(DEFAULTS) <= set(VARIABLES) and set(HOW_TO_SET) <= set(VARIABLES)
    assert SECRET_VARIABLES == ("AZURE_BATCH_ACCESS_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_KEY")


def test_secrets_are_the_values_of_the_secret_variables_that_are_set():
    settings = settings_from(**VALID_ENV, AZURE_STORAGE_SAS_TOKEN="sp=r&sig=TOKENSIGNATURE")
    assert settings.secrets == (VALID_ENV["AZURE_BATCH_ACCESS_KEY"], "sp=r&sig=TOKENSIGNATURE")
    assert settings_from(AZURE_BATCH_ACCESS_KEY="").secrets == ()


@pytest.mark.parametrize("variable", SECRET_VARIABLES)
def test_no_message_quotes_a_malformed_secret(variable):
    malformed = "sp=w&SECRETVALUE" if variable == "AZURE_STORAGE_SAS_TOKEN" else "not base64 SECRETVALUE!"
    settings = settings_from(**{**VALID_ENV, "BLOB_CONTAINER_URL": CONTAINER_WITHOUT_SAS, variable: malformed})

    assert variable in settings.problems and "SECRETVALUE" not in settings.problems[variable]
    with pytest.raises(ConfigError) as caught:
        require(settings, variable)
    assert caught.value.variable == variable and "SECRETVALUE" not in str(caught.value)
