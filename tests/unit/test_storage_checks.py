"""check_container_exists: which 403 answers of the storage service stop send_task.py (a refused key or
SAS signature: the uploads would be refused too) and which only get a note (the SAS may not list)."""

import pytest
from azure.core.exceptions import HttpResponseError

from config_resources import Storage
from toolkit import storage as storage_module
from toolkit.errors import ExitStatus, ToolkitError

URL = "https://mystorage.blob.core.windows.net/outputs"
SAS = "sv=2024-08-04&sp=racwl&se=2099-01-01&sr=c&sig=abc"
KEY = "a2V5a2V5a2V5a2V5"


class Refusing:
    """A ContainerClient whose list request is answered 403 with `code`."""

    def __init__(self, code):
        self.code = code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def list_blobs(self, **kwargs):
        error = HttpResponseError(message="refused")
        error.status_code = 403
        error.error_code = self.code
        raise error


@pytest.fixture
def answered(monkeypatch):
    def answer(code):
        monkeypatch.setattr(storage_module, "make_container_client", lambda *args: Refusing(code))
    return answer


@pytest.mark.parametrize("storage, code, names", [
    (Storage(URL, "", KEY), "AuthenticationFailed", "AZURE_STORAGE_KEY"),
    (Storage(URL, "", KEY), "AuthorizationPermissionMismatch", "AZURE_STORAGE_KEY"),  # the SAS made here lists
    (Storage(URL, SAS, ""), "AuthenticationFailed", "BLOB_CONTAINER_URL or AZURE_STORAGE_SAS_TOKEN"),
    (Storage(URL, SAS, ""), "AuthorizationFailure", "BLOB_CONTAINER_URL or AZURE_STORAGE_SAS_TOKEN"),  # Azurite's
    (Storage(URL, "", ""), "AuthenticationFailed", "user delegation SAS"),
])
def test_a_refused_credential_stops_naming_it(answered, storage, code, names):
    answered(code)
    with pytest.raises(ToolkitError) as caught:
        storage_module.check_container_exists(storage)
    assert caught.value.exit_code == ExitStatus.USAGE
    assert names in str(caught.value) and f"({code})" in str(caught.value) and "\n" not in str(caught.value)
    assert "account mystorage" in str(caught.value) or not storage.key


@pytest.mark.parametrize("storage", [Storage(URL, SAS, ""), Storage(URL, "", "")])
def test_a_sas_that_may_not_list_gets_a_note(answered, storage, capsys):
    answered("AuthorizationPermissionMismatch")
    storage_module.check_container_exists(storage)
    assert "cannot check that it exists" in capsys.readouterr().out
