"""Entra ID sends its tokens only over https://: an http:// endpoint with no key is refused before any
request, with the variable to set, instead of a 'Cannot reach the service' from azure-core."""

import io

import pytest

from config_resources import BatchAccess, Storage
from toolkit import credentials, storage
from toolkit.cli import run
from toolkit.errors import ExitStatus


@pytest.fixture(autouse=True)
def no_sign_in(monkeypatch):
    def refuse():
        raise AssertionError("signed in")
    monkeypatch.setattr(credentials, "entra_credential", refuse)


def test_no_batch_key_with_an_http_endpoint_is_a_configuration_error(capsys):
    access = BatchAccess("mybatch", "", "http://127.0.0.1:8080")
    announced = io.StringIO()
    assert run(lambda _settings: bool(credentials.batch_credential(access, announced))) == ExitStatus.USAGE
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and announced.getvalue() == ""
    assert ("AZURE_BATCH_ENDPOINT is http://127.0.0.1:8080: with no AZURE_BATCH_ACCESS_KEY the scripts sign in with "
            "Microsoft Entra ID, which needs an https:// endpoint. Set AZURE_BATCH_ACCESS_KEY") in error


def test_a_batch_key_with_an_http_endpoint_is_fine():
    access = BatchAccess("mybatch", "a2V5a2V5a2V5", "http://127.0.0.1:8080")
    assert credentials.batch_credential(access, io.StringIO()) is not None


def test_keyless_storage_with_an_http_url_is_a_configuration_error():
    keyless = Storage("http://127.0.0.1:10000/devstoreaccount1/outputs", "", "")
    with pytest.raises(credentials.SignInConfigError, match=r"^BLOB_CONTAINER_URL is http://.*: with no SAS and no "
                                                            r"AZURE_STORAGE_KEY .*Set AZURE_STORAGE_KEY"):
        storage.container_sas_url(keyless, "l", storage.CHECK_SAS_LIFETIME)
