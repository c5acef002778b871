"""The local stack itself: Azurite checks SAS tokens like Azure does, and the
Batch emulator answers the real SDK. If these fail, every other e2e test would
fail for a reason that is not the toolkit's."""

import datetime
import os
import stat

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient

import local_stack as stack_module


def container(url):
    return ContainerClient.from_container_url(url)


def test_good_sas_uploads_and_downloads(local_stack):
    client = container(local_stack.env["BLOB_CONTAINER_URL"])
    client.upload_blob("sanity/round-trip.txt", b"pi ~= 3.14159\n", overwrite=True)

    assert client.download_blob("sanity/round-trip.txt").readall() == b"pi ~= 3.14159\n"
    assert "sanity/round-trip.txt" in [blob.name for blob in client.list_blobs(name_starts_with="sanity/")]


def test_read_only_sas_cannot_write(local_stack):
    container(local_stack.env["BLOB_CONTAINER_URL"]).upload_blob("sanity/read-only.txt", b"x", overwrite=True)
    read_only = container(stack_module.container_sas_url(local_stack, permission="rl"))

    with pytest.raises(HttpResponseError) as refused:
        read_only.upload_blob("sanity/written-with-read-only-sas.txt", b"x")
    assert refused.value.status_code == 403
    assert read_only.download_blob("sanity/read-only.txt").readall() == b"x"


def test_expired_sas_is_refused(local_stack):
    expired = container(stack_module.container_sas_url(local_stack, expiry=datetime.timedelta(minutes=-5)))

    with pytest.raises(HttpResponseError) as refused:
        expired.upload_blob("sanity/written-with-expired-sas.txt", b"x")
    assert refused.value.status_code == 403
    with pytest.raises(HttpResponseError) as refused:
        list(expired.list_blobs())
    assert refused.value.status_code == 403


def test_emulator_answers_the_batch_sdk(local_stack):
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    credential = AzureNamedKeyCredential(local_stack.batch_account, local_stack.batch_key)
    with BatchClient(local_stack.batch_endpoint, credential) as client:
        assert isinstance(list(client.list_pools()), list)


def test_toolkit_reads_the_stack_from_its_env_file(local_stack):
    import config_resources

    env_file = local_stack.env["BATCH_TOOLKIT_ENV_FILE"]
    settings = config_resources.read_settings({config_resources.ENV_FILE_VARIABLE: env_file})

    assert settings.problems == {}
    assert settings.batch["url"] == local_stack.batch_endpoint
    assert settings.blob_container["url"] == local_stack.container_url
    assert config_resources.sas_permissions(settings) == "racwl"
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600  # it holds the key and the SAS


def test_stack_repr_shows_no_secret(local_stack):
    shown = repr(local_stack)
    assert local_stack.batch_key not in shown and local_stack.storage_key not in shown and "sig=" not in shown
