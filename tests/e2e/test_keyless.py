"""Keyless: the scripts sign in with Microsoft Entra ID through the real azure-identity code.

The keyless stack (tools/local_stack.py, keyless=True) serves Azurite (HTTPS, --oauth basic) and
the Batch emulator (HTTPS, --allowed-auth aad) with a certificate made at start-up; the scripts get
no key and no SAS, only IDENTITY_ENDPOINT/IDENTITY_HEADER (the emulator's managed-identity endpoint)
with AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential, so nothing probes beyond loopback.
Batch checks the emulator's tokens; Azurite checks user delegation keys and user-delegation SAS.
"""

import contextlib
import datetime
import time

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.storage.blob import ContainerClient

from config_resources import Storage
from tests.conftest import wait_for
from tests.e2e.conftest import ScriptRunner
from toolkit import credentials
from toolkit.cli import sign_in_message
from toolkit.storage import container_sas_url
from tools import local_stack as stack_module

POLL = ("--poll_seconds", "0.3")


@pytest.fixture(scope="module")
def keyless_stack(tmp_path_factory):
    try:
        with stack_module.start_stack(tmp_path_factory.mktemp("keyless-stack"), keyless=True) as stack:
            yield stack
    except stack_module.LocalStackError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def run_keyless(keyless_stack, tmp_path):
    return ScriptRunner(keyless_stack, tmp_path)


@pytest.fixture
def entra_env(keyless_stack, monkeypatch):
    """This test process signs in as the scripts do (the stack's identity endpoint, its certificate)."""
    for name in ("MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "AZURE_CLIENT_ID", "AZURE_TENANT_ID",
                 "AZURE_CLIENT_SECRET", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in stack_module.PROCESS_VARIABLES:
        monkeypatch.setenv(name, keyless_stack.env[name])
    monkeypatch.setattr(credentials, "_credential", None)


class AuthorizationRecorder(SansIOHTTPPolicy):
    """Keeps each request's Authorization header in memory (never printed), to compare tokens."""

    def __init__(self):
        self.seen = []

    def on_request(self, request):
        self.seen.append(request.http_request.headers.get("Authorization", ""))


def batch_client(endpoint, credential, **options):
    from azure.batch import BatchClient

    return BatchClient(endpoint, credential, retry_total=0, **options)


def test_three_scripts_run_with_no_key_anywhere(run_keyless, keyless_stack, ids, tmp_path):
    env = keyless_stack.env
    assert "AZURE_BATCH_ACCESS_KEY" not in env and "AZURE_STORAGE_KEY" not in env and "?" not in env[
        "BLOB_CONTAINER_URL"]
    created = run_keyless("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id)
    assert created.returncode == 0, created.stdout + created.stderr
    assert (f"Signing in to Batch account [{keyless_stack.batch_account}] with Microsoft Entra ID "
            "(DefaultAzureCredential)...") in created.stdout
    sent = run_keyless("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "with Microsoft Entra ID (user delegation SAS)" in sent.stdout
    checked = run_keyless("check_task.py", "--job_id", ids.job_id, "--wait", "--verbose", *POLL)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"task [{ids.task_id}]: succeeded (exit code 0)" in checked.stdout
    # The node uploaded with the task's create+write user-delegation SAS; check_task.py downloaded with a read one.
    assert "stdout.txt: from the blob container" in checked.stdout
    assert "MPI pi demo: 4 processes" in (tmp_path / "outputs" / ids.job_id / ids.task_id / "stdout.txt").read_text()


def test_user_delegation_sas_are_least_privilege_and_checked_by_azurite(keyless_stack, entra_env):
    storage = Storage(container_url=keyless_stack.container_url, sas_token="", key="")
    window = datetime.timedelta(minutes=10)
    upload_url = container_sas_url(storage, "cw", window)
    read_url = container_sas_url(storage, "r", window)
    assert "skoid=" in upload_url and "sp=cw" in upload_url and "sp=r&" in read_url
    ContainerClient.from_container_url(upload_url).upload_blob("keyless/probe.txt", b"probe", overwrite=True)
    assert ContainerClient.from_container_url(read_url).download_blob("keyless/probe.txt").readall() == b"probe"
    with pytest.raises(HttpResponseError) as refused_read:
        ContainerClient.from_container_url(upload_url).download_blob("keyless/probe.txt").readall()
    with pytest.raises(HttpResponseError) as refused_write:
        ContainerClient.from_container_url(read_url).upload_blob("keyless/other.txt", b"x")
    tampered = read_url.replace("sp=r&", "sp=rcw&")
    with pytest.raises(HttpResponseError) as refused_tampered:
        ContainerClient.from_container_url(tampered).upload_blob("keyless/other.txt", b"x")
    statuses = {refused.value.status_code for refused in (refused_read, refused_write, refused_tampered)}
    assert statuses == {403}


def test_account_refusing_keys_with_a_key_configured_says_so_in_one_line(run_keyless, keyless_stack):
    result = run_keyless("check_task.py", env={"AZURE_BATCH_ACCESS_KEY": keyless_stack.batch_key})
    assert result.returncode == 1
    assert result.stderr == f"Error: {credentials.KEYS_REFUSED}\n"


def test_no_credential_found_is_one_line_on_how_to_sign_in(run_keyless):
    # EnvironmentCredential alone, with none of its variables: nothing is tried over the network.
    result = run_keyless("check_task.py", env={"AZURE_TOKEN_CREDENTIALS": "EnvironmentCredential",
                                               "IDENTITY_ENDPOINT": None, "IDENTITY_HEADER": None})
    assert result.returncode == 1
    assert result.stderr == f"Error: {credentials.NO_CREDENTIAL}\n"
    assert "az login" in result.stderr and "AZURE_BATCH_ACCESS_KEY" in result.stderr


def test_unknown_token_credentials_value_is_a_configuration_error(run_keyless):
    result = run_keyless("check_task.py", env={"AZURE_TOKEN_CREDENTIALS": "NoSuchCredential"})
    assert result.returncode == 2
    assert result.stderr == f"Error: {credentials.BAD_TOKEN_CREDENTIALS}\n"


def test_wrong_audience_token_is_refused_once_with_the_service_detail(keyless_stack, entra_env):
    recorder = AuthorizationRecorder()
    # One slash: the token's audience is https://batch.core.windows.net, which Batch refuses.
    client = batch_client(keyless_stack.batch_endpoint, credentials.entra_credential(),
                          credential_scopes=["https://batch.core.windows.net/.default"], per_retry_policies=[recorder])
    with pytest.raises(ClientAuthenticationError) as refused:
        list(client.list_pools())
    assert refused.value.status_code == 401 and refused.value.error.code == "AuthenticationFailed"
    assert len(recorder.seen) == 1  # the 401's challenge is invalid_token: no retry loop
    message = sign_in_message(refused.value)
    assert message.startswith("Batch rejected the Microsoft Entra ID token (AuthenticationFailed: The access token "
                              "has been obtained from wrong audience or resource 'https://batch.core.windows.net'.")
    assert "eyJ" not in message


def test_missing_or_tampered_token_gets_the_services_401(keyless_stack, entra_env):
    token = credentials.entra_credential().get_token("https://batch.core.windows.net//.default").token
    head, claims, signature = token.split(".")
    for authorization in ("", f"Bearer {head}.{claims}.{signature[::-1]}", f"Bearer {head}.{claims}."):
        client = batch_client(keyless_stack.batch_endpoint, StaticCredential(authorization.partition(" ")[2]))
        with pytest.raises(ClientAuthenticationError) as refused:
            list(client.list_pools())
        assert refused.value.status_code == 401 and refused.value.error.code == "AuthenticationFailed"


class StaticCredential:
    """A credential that always gives the same token and claims it is valid for an hour."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def short_lived_emulator(keyless_stack, tmp_path):
    """A second emulator sharing the stack's certificate, whose tokens live 2 seconds."""
    tls = (keyless_stack.workdir / "tls" / "tls-cert.pem", keyless_stack.workdir / "tls" / "tls-key.pem")
    with contextlib.ExitStack() as processes:
        endpoint, _, _ = stack_module.start_batch_emulator(
            tmp_path, processes, (*stack_module.KEYLESS_EMULATOR_OPTIONS, "--token-lifetime", "2"), tls)
        yield endpoint


class RecordingCredential:
    """Passes token requests to `inner` and keeps the tokens it got (in memory only)."""

    def __init__(self, inner):
        self.inner, self.tokens = inner, []

    def get_token(self, *scopes, **kwargs):
        token = self.inner.get_token(*scopes, **kwargs)
        self.tokens.append(token)
        return token


def test_expired_token_is_refused_and_the_credential_renews_it(short_lived_emulator, entra_env, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", short_lived_emulator + stack_module.IDENTITY_PATH)
    credential = RecordingCredential(credentials.entra_credential())
    client = batch_client(short_lived_emulator, credential)
    assert list(client.list_pools()) == []
    first = credential.tokens[-1]
    wait_for(lambda: time.time() > first.expires_on + 1, timeout=10, what="the first token to expire")

    assert list(client.list_pools()) == []  # the credential fetched a new token
    assert credential.tokens[-1].token != first.token and credential.tokens[-1].expires_on > first.expires_on

    stale = batch_client(short_lived_emulator, StaticCredential(first.token))
    with pytest.raises(ClientAuthenticationError) as refused:
        list(stale.list_pools())
    assert refused.value.status_code == 401
    assert "expiry UTC time" in sign_in_message(refused.value)


def test_no_key_against_the_http_stack_says_entra_id_needs_https(run_script):
    for script, args in (("check_task.py", ()), ("delete_pool_job.py", ("--job_id", "j", "--yes"))):
        result = run_script(script, *args, env={"AZURE_BATCH_ACCESS_KEY": ""})
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.count("\n") == 1 and "Cannot reach" not in result.stderr
        assert "with no AZURE_BATCH_ACCESS_KEY the scripts sign in with Microsoft Entra ID, which needs an https://" \
            in result.stderr
