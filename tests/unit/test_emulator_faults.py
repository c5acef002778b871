"""Fault injection of the Batch emulator: rules, matching, counting, the control endpoint's handler."""

import json
import random
import threading

import pytest

from batch_emulator import faults
from batch_emulator.__main__ import parse_args
from batch_emulator.faults import FaultError, Faults, make_rule, parse_spec
from batch_emulator.service.errors import BatchServiceError


def fired(injector, method, path, times):
    """How many of `times` identical requests get a fault."""
    return sum(injector.decide(method, path) is not None for _ in range(times))


# ---- matching ----

@pytest.mark.parametrize("pattern,path,expected", [
    ("/jobs/j1/taskcounts", "/jobs/j1/taskcounts", True),
    ("/jobs/j1/taskcounts", "/jobs/j1/taskcounts/", True),
    ("/jobs/j1/taskcounts", "/jobs/j1/tasks", False),
    ("/jobs/j1", "/jobs/j1/tasks", False),                 # a plain path is the whole path, not a prefix
    ("/jobs/*/taskcounts", "/jobs/anything/taskcounts", True),
    ("/jobs/*/taskcounts", "/jobs/a/b/taskcounts", False),   # * stays inside one segment
    ("/jobs/**", "/jobs", True),
    ("/jobs/**", "/jobs/j1/tasks/t1", True),
    ("/jobs/**", "/jobschedules", False),
    ("/jobs/**/files/*", "/jobs/j/tasks/t/files/stdout.txt", True),
    ("/JOBS/J1", "/jobs/j1", True),                        # case-insensitive, as the service's ids
    ("^/jobs/j[12]/", "/jobs/j2/tasks", True),               # a regex matches at the start
    ("^/jobs/j[12]/", "/jobs/j3/tasks", False),
    ("^/pools$", "/pools", True),
    ("^/pools$", "/pools/p1", False),
])
def test_path_patterns(pattern, path, expected):
    assert (Faults([make_rule("503", path=pattern)]).decide("GET", path) is not None) is expected


def test_the_path_is_decoded_and_the_query_ignored():
    injector = Faults([make_rule("500", path="/jobs/j1/tasks/t1/files/wd/out.txt")])
    assert injector.decide("GET", "/jobs/j1/tasks/t1/files/wd%2Fout.txt?api-version=2025-06-01&timeOut=30")


def test_method_must_match_when_given():
    injector = Faults([make_rule("503", method="post", path="/jobs/j1/tasks")])
    assert injector.decide("GET", "/jobs/j1/tasks") is None
    assert injector.decide("POST", "/jobs/j1/tasks").kind == "503"


def test_a_rule_without_method_or_path_matches_everything_but_the_control_endpoint():
    injector = Faults([make_rule("503")])
    assert injector.decide("DELETE", "/pools/p1?api-version=x")
    assert injector.decide("GET", "/")
    assert injector.decide("GET", "/_emulator/faults") is None
    assert injector.decide("DELETE", "/_Emulator/Faults/3") is None


# ---- counting ----

def test_count_then_spent_with_counters():
    injector = Faults([make_rule("503", method="GET", path="/jobs/j1/taskcounts", count=2)])
    assert fired(injector, "GET", "/jobs/j1/taskcounts", 5) == 2
    assert fired(injector, "GET", "/jobs/j2/taskcounts", 3) == 0
    [shown] = injector.list()
    assert (shown["matched"], shown["fired"], shown["active"]) == (2, 2, False)


def test_skip_lets_the_first_requests_through():
    injector = Faults([make_rule("500", path="/pools", skip=2, count=1)])
    assert [injector.decide("GET", "/pools") is not None for _ in range(4)] == [False, False, True, False]


def test_rules_are_tried_in_order_and_the_first_that_fires_wins():
    injector = Faults([make_rule("429", path="/jobs/j1", count=1), make_rule("delay", path="/jobs/**", delay=0)])
    assert injector.decide("GET", "/jobs/j1").kind == "429"
    assert injector.decide("GET", "/jobs/j1").kind == "delay"
    assert injector.decide("GET", "/jobs/j9/tasks").kind == "delay"


def test_a_share_with_a_seed_is_deterministic_and_documented():
    rate, seed, n = 0.3, 42, 200
    draws = random.Random(seed)
    expected = [draws.random() < rate for _ in range(n)]
    injector = Faults([make_rule("503", rate=rate, seed=seed)])
    got = [injector.decide("GET", "/pools") is not None for _ in range(n)]
    assert got == expected
    assert 40 <= sum(got) <= 80


def test_a_share_and_a_count_together():
    injector = Faults([make_rule("503", rate=0.5, seed=1, count=3)])
    assert fired(injector, "GET", "/pools", 100) == 3
    assert injector.list()[0]["matched"] > 3


def test_counting_is_exact_under_concurrent_requests():
    injector = Faults([make_rule("503", path="/jobs/**", count=37)])
    results = []
    lock = threading.Lock()

    def worker():
        hits = fired(injector, "GET", "/jobs/j1/taskcounts", 50)
        with lock:
            results.append(hits)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sum(results) == 37
    assert injector.list()[0]["matched"] == 37   # a spent rule no longer counts matches


def test_clear_all_or_one():
    injector = Faults([make_rule("503"), make_rule("500"), make_rule("429")])
    assert [r["id"] for r in injector.list()] == [1, 2, 3]
    assert injector.clear(2) == 1
    assert injector.clear(2) == 0
    assert [r["id"] for r in injector.list()] == [1, 3]
    assert injector.clear() == 2
    assert injector.list() == []
    assert injector.add(make_rule("503"))["id"] == 4   # ids are never reused


# ---- rules: defaults and checks ----

def test_error_kinds_answer_the_service_error_with_retry_after():
    for kind, status, code, retry_after in (("429", 429, "TooManyRequests", {"Retry-After": "1"}),
                                            ("503", 503, "ServerBusy", {"Retry-After": "1"}),
                                            ("500", 500, "InternalError", {})):
        rule = make_rule(kind)
        err = rule.error()
        assert (err.status, err.code) == (status, code)
        assert rule.headers() == retry_after
    assert make_rule("503", retry_after=7).headers() == {"Retry-After": "7"}
    assert make_rule("503", retry_after=0.5).headers() == {"Retry-After": "0.5"}
    assert make_rule("503", retry_after="none").headers() == {}
    assert make_rule("500", retry_after=2).headers() == {"Retry-After": "2"}


@pytest.mark.parametrize("fields,message", [
    ({"kind": "504"}, "kind must be one of"),
    ({"kind": "503", "method": "FETCH"}, "method must be one of"),
    ({"kind": "503", "path": "jobs/j1"}, "path must start with"),
    ({"kind": "503", "path": "^/jobs/("}, "not a valid regular expression"),
    ({"kind": "503", "when": "during"}, "when must be before or after"),
    ({"kind": "503", "count": 0}, "count must be >= 1"),
    ({"kind": "503", "count": "two"}, "count must be an integer"),
    ({"kind": "503", "count": 1.5}, "count must be an integer"),
    ({"kind": "503", "skip": -1}, "skip must be >= 0"),
    ({"kind": "503", "rate": 0}, "rate must be > 0"),
    ({"kind": "503", "rate": 1.5}, "rate must be > 0"),
    ({"kind": "503", "rate": "often"}, "rate must be a number"),
    ({"kind": "503", "retry_after": -1}, "retry_after must be between"),
    ({"kind": "delay", "retry_after": 1}, "retry_after applies to"),
    ({"kind": "delay", "delay": "long"}, "delay must be a number"),
])
def test_bad_rules_name_the_field(fields, message):
    with pytest.raises(FaultError, match=message):
        make_rule(**fields)


def test_rule_from_json_refuses_unknown_fields_and_needs_a_kind():
    with pytest.raises(FaultError, match="unknown field.*retries"):
        faults.rule_from_json({"kind": "503", "retries": 2})
    with pytest.raises(FaultError, match="kind is required"):
        faults.rule_from_json({"path": "/pools"})
    with pytest.raises(FaultError, match="JSON object"):
        faults.rule_from_json("503")


# ---- the command-line syntax ----

def test_spec_with_everything():
    rule = parse_spec("503 GET /jobs/*/taskcounts count=2 retry-after=3 when=after skip=1 rate=0.5 seed=9")
    assert (rule.kind, rule.method, rule.path, rule.count, rule.retry_after, rule.when, rule.skip, rule.rate,
            rule.seed) == ("503", "GET", "/jobs/*/taskcounts", 2, 3.0, "after", 1, 0.5, 9)


def test_spec_parts_are_optional_and_in_any_order():
    assert (parse_spec("503 rate=0.3").method, parse_spec("503 rate=0.3").path) == (None, None)
    rule = parse_spec("close when=after /jobs/j1/tasks post")
    assert (rule.kind, rule.method, rule.path, rule.when) == ("close", "POST", "/jobs/j1/tasks", "after")
    assert parse_spec("delay '^/pools/p 1' delay=0.2").path == "^/pools/p 1"
    assert parse_spec("DROP * /pools").method is None


@pytest.mark.parametrize("spec,message", [
    ("", "empty"),
    ("503 GET /a /b", "do not understand '/b'"),
    ("503 GET POST", "do not understand 'POST'"),
    ("503 tries=2", "unknown key 'tries'"),
    ("503 kind=500", "unknown key 'kind'"),
    ("503 count=0", "count must be >= 1"),
    ("503 'unclosed", "cannot split"),
])
def test_bad_specs(spec, message):
    with pytest.raises(FaultError, match=message):
        parse_spec(spec)


def test_command_line_takes_several_faults_and_refuses_a_bad_one(capsys):
    args = parse_args(["--fault", "503 rate=0.3 seed=1", "--fault", "close POST /jobs/j1/tasks when=after count=1"])
    assert [(r.kind, r.when) for r in args.fault] == [("503", "before"), ("close", "after")]
    assert parse_args([]).fault == []
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--fault", "503 count=none-at-all"])
    assert exit_info.value.code == 2
    assert "argument --fault: count must be an integer" in capsys.readouterr().err


def test_help_documents_the_syntax(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    out = capsys.readouterr().out
    assert "--fault SPEC" in out and "KIND [METHOD] [PATH] [key=value ...]" in out and "/_emulator/faults" in out


# ---- the control endpoint's handler ----

def test_control_add_list_delete():
    injector = Faults()
    status, body = faults.control(injector, "POST", "/_emulator/faults", json.dumps(
        {"kind": "503", "method": "GET", "path": "/jobs/j1/taskcounts", "count": 2, "retry_after": 1}).encode())
    assert status == 201 and body["value"][0]["id"] == 1 and body["value"][0]["fired"] == 0
    status, body = faults.control(injector, "POST", "/_emulator/faults?x=1", json.dumps(
        [{"kind": "500"}, {"kind": "delay", "delay": 0}]).encode())
    assert [r["id"] for r in body["value"]] == [2, 3]
    injector.decide("GET", "/jobs/j1/taskcounts")
    status, body = faults.control(injector, "GET", "/_emulator/faults", b"")
    assert status == 200 and [(r["id"], r["fired"]) for r in body["value"]] == [(1, 1), (2, 0), (3, 0)]
    assert faults.control(injector, "DELETE", "/_emulator/faults/2", b"") == (200, {"removed": 1})
    assert faults.control(injector, "DELETE", "/_emulator/faults", b"") == (200, {"removed": 2})
    assert faults.control(injector, "GET", "/_emulator/faults", b"") == (200, {"value": []})


@pytest.mark.parametrize("method,path,body,status,code", [
    ("POST", "/_emulator/faults", b"{not json", 400, "InvalidRequestBody"),
    ("POST", "/_emulator/faults", b'{"kind": "418"}', 400, "InvalidRequestBody"),
    ("POST", "/_emulator/faults", b"", 400, "InvalidRequestBody"),
    ("PUT", "/_emulator/faults", b"", 405, "UnsupportedHttpVerb"),
    ("GET", "/_emulator/faults/1", b"", 405, "UnsupportedHttpVerb"),
    ("DELETE", "/_emulator/faults/x", b"", 400, "InvalidUri"),
    ("DELETE", "/_emulator/faults/99", b"", 404, "ResourceNotFound"),
])
def test_control_errors_use_the_service_error_shape(method, path, body, status, code):
    with pytest.raises(BatchServiceError) as info:
        faults.control(Faults(), method, path, body)
    assert (info.value.status, info.value.code) == (status, code)


# ---- serving one request under a rule ----

class Recorder:
    """Stands in for the HTTP layer: counts applied requests and records, in order, answers and sleeps."""

    def __init__(self):
        self.applied = 0
        self.events = []

    def answer(self):
        self.applied += 1
        self.events.append("answer")
        return "real"

    def sleep(self, seconds):
        self.events.append(("sleep", seconds))

    @staticmethod
    def refuse(err, headers):
        return (err.status, err.code, headers)


@pytest.mark.parametrize("kind,when,applied,response,how,events", [
    ("503", "before", 0, (503, "ServerBusy", {"Retry-After": "1"}), "send", []),
    ("503", "after", 1, (503, "ServerBusy", {"Retry-After": "1"}), "send", ["answer"]),
    ("429", "before", 0, (429, "TooManyRequests", {"Retry-After": "1"}), "send", []),
    ("500", "after", 1, (500, "InternalError", {}), "send", ["answer"]),
    ("close", "before", 0, (500, "InternalError", {}), "cut", []),
    ("close", "after", 1, "real", "cut", ["answer"]),
    ("drop", "before", 0, None, "drop", []),
    ("drop", "after", 1, None, "drop", ["answer"]),
    ("delay", "before", 1, "real", "send", [("sleep", 2.5), "answer"]),
    ("delay", "after", 1, "real", "send", ["answer", ("sleep", 2.5)]),
])
def test_apply_applies_the_request_only_when_it_should(kind, when, applied, response, how, events):
    recorder = Recorder()
    assert faults.apply(make_rule(kind, when=when, delay=2.5), recorder.answer, recorder.refuse,
                        sleep=recorder.sleep) == (response, how)
    assert recorder.applied == applied
    assert recorder.events == events     # only a delay rule sleeps, and only for its delay


def test_apply_without_a_rule_just_answers():
    recorder = Recorder()
    assert faults.apply(None, recorder.answer, recorder.refuse, sleep=recorder.sleep) == ("real", "send")
    assert recorder.events == ["answer"]


def test_delay_sleeps_before_or_after_applying():
    recorder = Recorder()
    assert faults.apply(make_rule("delay", delay=2.5), recorder.answer, recorder.refuse,
                        sleep=recorder.sleep) == ("real", "send")
    assert faults.apply(make_rule("delay", delay=0.25, when="after"), recorder.answer, recorder.refuse,
                        sleep=recorder.sleep) == ("real", "send")
    assert recorder.events == [("sleep", 2.5), "answer", "answer", ("sleep", 0.25)]


def test_cut_sends_the_head_and_half_the_body_or_half_the_status_line():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    assert faults.cut(head + b"0123456789", len(head)) == head + b"01234"
    empty = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    assert faults.cut(empty, len(empty)) == b"HTTP/1.1 2"


def test_a_rule_can_answer_with_another_service_code():
    rule = parse_spec("409 POST /pools code=PoolQuotaReached count=1")
    err = rule.error()
    assert (err.status, err.code) == (409, "PoolQuotaReached")
    assert "quota of pools" in err.message
    busy = make_rule("503", code="TooManyEnableAutoScaleRequests", retry_after="none")
    assert (busy.error().status, busy.error().code) == (503, "TooManyEnableAutoScaleRequests")
    assert rule.describe()["code"] == "PoolQuotaReached"


@pytest.mark.parametrize("spec", ["close code=PoolQuotaReached", "409 code=Not-A-Code"])
def test_code_is_refused_where_it_cannot_apply(spec):
    with pytest.raises(FaultError, match="code must be letters only"):
        parse_spec(spec)
