"""The replay's comparison and bucketing rules on their own (no emulator): shapes, enum spellings, error codes,
the README's Absent list, and what a recording takes for granted."""

from tests.conformance import preconditions, shapes
from tests.conformance.recording import Entry, Recording
from tests.conformance.replay import absent_text, paging, unsupported_feature


def entry(method, path, status=200, request=None, response=None, query="api-version=2025-06-01", index=0):
    return Entry(index, method, path, query, request, status, response)


def test_values_differ_freely_but_keys_must_match():
    recorded = {"id": "a", "eTag": "0x1", "value": [{"state": "idle", "url": "https://x"}, {"state": "running"}]}
    assert not shapes.compare(recorded, {"id": "b", "eTag": "0x2", "value": [{"state": "running", "url": "u"}]})
    diff = shapes.compare(recorded, {"id": "b", "value": [{"state": "idle", "extra": 1}]})
    assert diff.missing == ("eTag", "value[].url") and diff.extra == ("value[].extra",)


def test_enum_case_style_differs():
    diff = shapes.compare({"taskSchedulingPolicy": {"nodeFillType": "Spread"}},
                          {"taskSchedulingPolicy": {"nodeFillType": "spread"}})
    assert diff.enums == ("taskSchedulingPolicy.nodeFillType: Pascal vs lower",)
    # ids, names, versions and free text are not enums
    assert not shapes.compare({"id": "Pool1", "name": "X", "version": "latest"}, {"id": "pool1", "name": "x",
                                                                                 "version": "Latest"})


def test_an_error_answer_must_have_the_same_code():
    diff = shapes.compare({"code": "PoolNotFound"}, {"code": "JobNotFound"}, error=True)
    assert diff.code == "PoolNotFound vs JobNotFound"


def test_unsupported_features_follow_the_readme():
    absent = absent_text()
    assert "certificates" in absent
    assert unsupported_feature(entry("POST", "/certificates", 400), absent) == "certificates"
    assert unsupported_feature(entry("GET", "/pools/p", query="api-version=x&$expand=stats"), absent) == "statistics"
    assert unsupported_feature(entry("GET", "/pools/p"), absent) == ""
    # a feature the README no longer lists as absent is compared like any other
    assert unsupported_feature(entry("POST", "/certificates", 400), "- **Absent**: containers") == ""


def test_paging_takes_the_emulators_token():
    query = paging("api-version=1&maxresults=1&$skiptoken=Sanitized", "http://h/pools?api-version=1&$skiptoken=abc")
    assert query == "api-version=1&maxresults=1&$skiptoken=abc"


def test_a_pool_the_recording_only_uses_is_made_first_with_its_nodes():
    node = "tvmps_" + "a" * 64 + "_d"
    recording = Recording("x/y.json", "", (
        entry("GET", "/pools/p/nodes", response={"value": [{"id": node}]}),
        entry("POST", f"/pools/p/nodes/{node}/reboot", 202, index=1),
        entry("POST", "/jobs", 201, request={"id": "j", "poolInfo": {"poolId": "p"}}, index=2),
        entry("GET", "/pools/gone", 404, index=3),
    ))
    made = preconditions.infer(recording)
    assert [(p.kind, p.ident, p.nodes) for p in made] == [("pools", "p", 1)]
    assert made[0].body["targetDedicatedNodes"] == 1


def test_an_enable_needs_a_disabled_job():
    recording = Recording("x/y.json", "", (entry("POST", "/jobs/j/enable", 202),))
    (job,) = preconditions.infer(recording)
    assert job.then == (("POST", "/jobs/j/disable", {"disableTasks": "requeue"}),)
