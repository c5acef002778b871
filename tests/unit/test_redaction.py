"""toolkit.redaction.redact: the one function that keeps SAS signatures, keys and tokens out of output."""

import pytest

from toolkit.redaction import PLACEHOLDER, redact


def test_placeholder_is_redacted():
    assert PLACEHOLDER == "REDACTED"


@pytest.mark.parametrize("text, expected", [
    ("https://s.blob.core.windows.net/c?sv=1&sig=abc%2Bdef&sp=w", "https://s.blob.core.windows.net/c?sv=1&sig=REDACTED&sp=w"),
    ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0==;EndpointSuffix=x",
     "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=REDACTED;EndpointSuffix=x"),
    ("Authorization: SharedKey account:c2lnbmF0dXJl", "Authorization: SharedKey account:REDACTED"),
    ("Authorization: Bearer eyJ0eXAi.eyJhdWQi.c2ln", "Authorization: Bearer REDACTED"),
    ('{"access_token": "eyJ0eXAi", "expires_in": 3599}', '{"access_token": "REDACTED", "expires_in": 3599}'),
])
def test_each_kind_of_secret_is_hidden_and_its_name_kept(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", ["...&SIG=abc", "accountkey=abc;", "sharedkey acct:abc",
                                  "BEARER abcd.efgh.ijkl", "bearer abcdefghijklmnopqrstuvwxyz0123",
                                  '"ACCESS_TOKEN": "abc"'])
def test_names_are_matched_whatever_their_case(text):
    assert "abc" not in redact(text) and PLACEHOLDER in redact(text)


@pytest.mark.parametrize("token", [
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2JhdGNoIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0.",  # an unsigned JWT
    "EwBwA8l6BAAURSN/FHlDW5xN74t6GIjZ2I9jLKwq2i0AAAYUd3PlS9Lw3o4+QrEz==",  # an opaque token
])
def test_real_looking_bearer_tokens_are_hidden(token):
    assert redact(f"Authorization: Bearer {token}, then") == "Authorization: Bearer REDACTED, then"


@pytest.mark.parametrize("text", [
    "Bearer token authentication is not permitted for non-TLS protected (non-https) URLs.",
    "BEARER Token", "a Bearer e.g. one", 'WWW-Authenticate: Bearer authorization_uri="https://login"',
])
def test_prose_after_bearer_is_kept(text):
    assert redact(text) == text


def test_literal_secrets_are_hidden_whatever_their_case():
    key = "c2VjcmV0LWtleS1vZi10aGUtYWNjb3VudA=="
    assert redact(f"key {key} and {key.upper()} and {key.lower()}", secrets=[key]) == \
        "key REDACTED and REDACTED and REDACTED"


def test_short_or_missing_secrets_leave_ordinary_words_alone():
    assert redact("the pool is ready", secrets=["pool", "", None]) == "the pool is ready"


def test_anything_is_turned_into_text():
    assert redact(ValueError("bad sig=abc")) == "bad sig=REDACTED"
    assert redact(42) == "42"


def test_text_without_secrets_is_unchanged():
    text = "Job [j1]: active 0, running 1, completed 0 (succeeded 0, failed 0)"
    assert redact(text, secrets=["c2VjcmV0LWtleQ=="]) == text
