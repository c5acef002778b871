"""The emulator's Entra ID side: tokens it issues, what Batch accepts, and its managed-identity endpoint."""

import base64
import json
import subprocess
import sys

import pytest

from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_IDENTITY_HEADER
from batch_emulator.api import identity
from batch_emulator.api.auth import verify_request
from batch_emulator.api.http import Request
from batch_emulator.service.errors import BatchServiceError
from batch_emulator.service.tokens import AllowedAuth, TokenSettings, derive_secret, issue_token, verify_token
from tests.conftest import REPO_ROOT

SECRET = derive_secret(DEFAULT_ACCOUNT_KEY)
BATCH = "https://batch.core.windows.net/"


def settings(allowed=AllowedAuth.BOTH):
    return TokenSettings(allowed_auth=allowed, secret=SECRET, identity_header=DEFAULT_IDENTITY_HEADER)


def bearer(audience=BATCH, lifetime=60, secret=SECRET):
    return "Bearer " + issue_token(secret, audience, lifetime)[0]


def test_a_token_it_issued_for_batch_is_accepted():
    assert verify_token(SECRET, bearer()).reason == ""


@pytest.mark.parametrize("authorization, reason", [
    (lambda: None, "missing"),
    (lambda: "Bearer ", "missing"),
    (lambda: "Bearer a.b", "malformed"),
    (lambda: bearer(lifetime=-1), "expired"),
    (lambda: bearer(audience="https://batch.core.windows.net"), "wrong_audience"),
    (lambda: bearer(audience="https://storage.azure.com"), "wrong_audience"),
    (lambda: bearer(secret=derive_secret(base64.b64encode(b"another emulator").decode())), "tampered"),
])
def test_refused_tokens_and_why(authorization, reason):
    assert verify_token(SECRET, authorization()).reason == reason  # made here: tokens expire


def test_claims_edited_or_alg_none_are_tampered():
    head, claims, signature = bearer()[7:].split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=="))
    edited = base64.urlsafe_b64encode(json.dumps({**decoded, "exp": decoded["exp"] + 9999}).encode()).decode()
    assert verify_token(SECRET, f"Bearer {head}.{edited.rstrip('=')}.{signature}").reason == "tampered"
    none = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
    assert verify_token(SECRET, f"Bearer {none}.{claims}.").reason == "tampered"


def refused(authorization, allowed):
    headers = {"authorization": authorization} if authorization else {}
    with pytest.raises(BatchServiceError) as caught:
        verify_request("GET", "/pools?api-version=2025-06-01", headers, "devbatchaccount1", DEFAULT_ACCOUNT_KEY,
                       settings(allowed))
    return caught.value


def test_an_account_refusing_keys_refuses_shared_key_before_its_signature():
    error = refused("SharedKey devbatchaccount1:bm90IGNoZWNrZWQ=", AllowedAuth.AAD)
    assert (error.status, error.code) == (401, "AuthenticationFailed")
    assert dict(error.values)["AuthenticationErrorDetail"] == ("The specified type of authentication SharedKey is "
                                                                "not allowed for this account.")


def test_refused_token_gets_401_with_an_invalid_token_challenge_and_no_token_in_the_body():
    token = bearer(lifetime=-1)
    error = refused(token, AllowedAuth.BOTH)
    assert (error.status, error.code) == (401, "AuthenticationFailed")
    assert 'error="invalid_token"' in error.headers["WWW-Authenticate"]
    assert token[7:] not in str(error.values) + error.message
    assert refused(None, AllowedAuth.AAD).status == 401  # no Authorization at all, on a keyless account
    assert "AAD is not allowed" in dict(refused(bearer(), AllowedAuth.SHAREDKEY).values)["AuthenticationErrorDetail"]


def token_request(query="api-version=2019-08-01&resource=https%3A%2F%2Fbatch.core.windows.net%2F",
                  header=DEFAULT_IDENTITY_HEADER):
    from urllib.parse import parse_qs
    return Request("GET", f"{identity.IDENTITY_PATH}?{query}", [], {k: v[0] for k, v in parse_qs(query).items()},
                   {"x-identity-header": header} if header else {}, b"", "https://127.0.0.1:1")


def test_identity_endpoint_issues_a_token_for_the_resource_asked():
    response = identity.answer(settings(), token_request())
    assert response.status == 200 and response.body["resource"] == BATCH
    assert response.body["expires_on"].isdigit()  # msal needs epoch digits
    assert verify_token(SECRET, "Bearer " + response.body["access_token"]).reason == ""


@pytest.mark.parametrize("request_, status", [
    (token_request(header=None), 401),
    (token_request(header="wrong"), 401),
    (token_request(query="api-version=2019-08-01"), 400),
    (token_request(query="api-version=2017-09-01&resource=x"), 400),
])
def test_identity_endpoint_refusals(request_, status):
    assert identity.answer(settings(), request_).status == status


def test_help_does_not_import_azure_identity():
    code = ("import runpy, sys; sys.argv = ['create_pool_job.py', '--help']\n"
            "try:\n    runpy.run_path('create_pool_job.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('azure.identity' in sys.modules, 'azure.batch' in sys.modules, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.stderr.strip() == "False False"
