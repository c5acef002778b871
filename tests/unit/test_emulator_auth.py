"""SharedKey verification of the Batch emulator against what azure-batch 15.x really signs."""

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest

from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from batch_emulator.api.auth import sign, string_to_sign, verify_request
from batch_emulator.service.errors import BatchServiceError

OTHER_KEY = "c2VjcmV0LWtleS10aGF0LWlzLW5vdC10aGUtZW11bGF0b3JzLWtleQ=="


class Sent(Exception):
    """What the capturing transport raises instead of sending: the request as the client would send it."""

    def __init__(self, request):
        super().__init__(request.url)
        self.request = request


class CapturingTransport(HttpTransport):
    """A transport that sends nothing: the request stops here, after every policy (SharedKey included) ran."""

    def send(self, request, **kwargs):
        raise Sent(request)

    def open(self):
        pass

    def close(self):
        pass

    def __exit__(self, *args):
        pass


def sdk_signed(method, url, key=DEFAULT_ACCOUNT_KEY, account=DEFAULT_ACCOUNT_NAME, body=None, headers=None):
    """Sign a request through a real BatchClient's pipeline; returns (raw path+query, lowercased headers)."""
    client = BatchClient("http://127.0.0.1:1", AzureNamedKeyCredential(account, key), transport=CapturingTransport(),
                         retry_total=0)
    request = HttpRequest(method, url, headers=headers or {}, content=body)
    if body is not None:
        request.headers["Content-Type"] = "application/json; odata=minimalmetadata"
        request.headers["Content-Length"] = str(len(body))
    with pytest.raises(Sent) as sent:
        client.send_request(request)
    signed = sent.value.request
    raw = signed.url.split("127.0.0.1:1", 1)[1]
    return raw, {k.lower(): v for k, v in signed.headers.items()}


def test_string_to_sign_matches_the_captured_get():
    headers = {"ocp-date": "Tue, 24 Nov 2026 07:32:18 GMT"}
    text = string_to_sign("GET", "/jobs/j1/taskcounts?api-version=2025-06-01&timeOut=30", headers, "acct")
    assert text == ("GET\n\n\n\n\n\n\n\n\n\n\n\nocp-date:Tue, 24 Nov 2026 07:32:18 GMT\n/acct/jobs/j1/taskcounts"
                    "\napi-version:2025-06-01\ntimeOut:30")


def test_string_to_sign_matches_the_captured_post():
    headers = {"content-length": "662", "content-type": "application/json; odata=minimalmetadata",
               "ocp-date": "Tue, 24 Nov 2026 07:26:20 GMT"}
    text = string_to_sign("POST", "/pools?api-version=2025-06-01", headers, "acct")
    assert text == ("POST\n\n\n662\n\napplication/json; odata=minimalmetadata\n\n\n\n\n\n\n"
                    "ocp-date:Tue, 24 Nov 2026 07:26:20 GMT\n/acct/pools\napi-version:2025-06-01")


def test_body_less_post_signs_content_length_zero():
    text = string_to_sign("POST", "/pools/p/disableautoscale?api-version=x", {}, "a")
    assert text.startswith("POST\n\n\n0\n")


@pytest.mark.parametrize("method,url,body", [
    ("GET", "http://127.0.0.1:1/jobs/j1/tasks?api-version=2025-06-01&%24filter=state%20eq%20%27completed%27"
            "&%24select=id,state&timeOut=30", None),
    ("GET", "http://127.0.0.1:1/jobs/j1/tasks/t1/files/wd%2Fout.txt?api-version=2025-06-01", None),
    ("HEAD", "http://127.0.0.1:1/pools/p1?api-version=2025-06-01", None),
    ("POST", "http://127.0.0.1:1/pools?api-version=2025-06-01", b'{"id":"p1"}'),
    ("DELETE", "http://127.0.0.1:1/jobs/j1?api-version=2024-02-01.19.0&force=true", None),
    ("GET", "http://127.0.0.1:1/pools?api-version=2025-06-01&maxresults=1&%24skiptoken=b2Zmc2V0OjE%3D", None),
])
def test_requests_signed_by_the_sdk_verify(method, url, body):
    raw, headers = sdk_signed(method, url, body=body)
    verify_request(method, raw, headers, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)


def test_ranged_download_signs_ocp_range():
    raw, headers = sdk_signed("GET", "http://127.0.0.1:1/jobs/j/tasks/t/files/stdout.txt?api-version=1",
                              headers={"ocp-range": "bytes=0-9"})
    verify_request("GET", raw, headers, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)
    headers["ocp-range"] = "bytes=0-99"
    with pytest.raises(BatchServiceError):
        verify_request("GET", raw, headers, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)


def _detail(err):
    return dict(err.values)["AuthenticationErrorDetail"]


def test_wrong_key_gives_403_without_revealing_the_key_or_expected_signature():
    raw, headers = sdk_signed("GET", "http://127.0.0.1:1/pools?api-version=2025-06-01", key=OTHER_KEY)
    with pytest.raises(BatchServiceError) as caught:
        verify_request("GET", raw, headers, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)
    err = caught.value
    assert (err.status, err.code) == (403, "AuthenticationFailed")
    expected = sign(string_to_sign("GET", raw, headers, DEFAULT_ACCOUNT_NAME), DEFAULT_ACCOUNT_KEY)
    assert expected not in _detail(err) and DEFAULT_ACCOUNT_KEY not in _detail(err)
    assert "/devbatchaccount1/pools" in _detail(err)   # the string-to-sign is shown, to help debugging


def test_wrong_account_name_gives_403():
    raw, headers = sdk_signed("GET", "http://127.0.0.1:1/pools?api-version=1", account="someoneelse")
    with pytest.raises(BatchServiceError) as caught:
        verify_request("GET", raw, headers, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)
    assert (caught.value.status, caught.value.code) == (403, "AuthenticationFailed")


@pytest.mark.parametrize("authorization", [None, "Bearer abc", "SharedKey devbatchaccount1", "SharedKey x:!!"])
def test_missing_or_malformed_authorization_gives_403(authorization):
    headers = {"authorization": authorization} if authorization else {}
    with pytest.raises(BatchServiceError) as caught:
        verify_request("GET", "/pools?api-version=1", headers, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)
    assert caught.value.status == 403


def test_the_documented_variant_with_lowercased_query_names_is_accepted():
    headers = {"ocp-date": "Tue, 24 Nov 2026 07:32:18 GMT"}
    raw = "/jobs?api-version=2025-06-01&timeOut=30"
    text = string_to_sign("GET", raw, headers, DEFAULT_ACCOUNT_NAME, documented_variant=True)
    assert text.endswith("\napi-version:2025-06-01\ntimeout:30")
    headers["authorization"] = f"SharedKey {DEFAULT_ACCOUNT_NAME}:{sign(text, DEFAULT_ACCOUNT_KEY)}"
    verify_request("GET", raw, headers, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)
