"""Fixtures shared by unit and end-to-end tests."""

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import config_resources  # noqa: E402

# A complete, valid configuration (no real account: the key is base64 of zeros).
VALID_ENV = {
    "AZURE_BATCH_ACCOUNT": "mybatchaccount",
    "AZURE_BATCH_ACCESS_KEY": "A" * 86 + "==",
    "AZURE_BATCH_ENDPOINT": "https://mybatchaccount.westeurope.batch.azure.com",
    "BLOB_CONTAINER_URL": ("https://mystorage.blob.core.windows.net/outputs"
                           "?sv=2025-01-05&se=2099-01-01T00%3A00%3A00Z&sr=c&sp=racwl&sig=SECRETSIGNATURE"),
    "REPOSITORY_URL": "https://example.org/me/mpi-demo.git",
}


@pytest.fixture
def toolkit_env(monkeypatch):
    """An environment with no toolkit variable and no .env file; returns a function that sets variables."""
    for name in list(os.environ):
        if name in config_resources.VARIABLES or name.startswith("AZURE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(config_resources.ENV_FILE_VARIABLE, "")

    def set_variables(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)
    return set_variables


@pytest.fixture
def valid_env(toolkit_env):
    toolkit_env(**VALID_ENV)
    return dict(VALID_ENV)
