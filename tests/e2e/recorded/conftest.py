"""Fixtures of the recorded-answer tests: each module gets its own emulator, a raw signed client
and the SDK's client, and a pool whose nodes run tasks (tests/e2e/recorded_client.py)."""

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from tests.e2e.recorded_client import Raw, make_node_pool, running_emulator


@pytest.fixture(scope="module")
def emulator(request, tmp_path_factory):
    yield from running_emulator(tmp_path_factory, f"recorded-{request.module.__name__.rsplit('_', 1)[-1]}")


@pytest.fixture(scope="module")
def raw(emulator):
    return Raw(emulator)


@pytest.fixture(scope="module")
def sdk(emulator):
    return BatchClient(emulator, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY), retry_total=0)


@pytest.fixture(scope="module")
def node_pool(raw):
    return make_node_pool(raw)
