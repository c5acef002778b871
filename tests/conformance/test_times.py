"""The recorded run's times moved to now (times.py) on their own (no emulator): what counts as an absolute time, its
format kept, and which of a recording's times say when the run happened."""

from datetime import datetime, timedelta, timezone

from tests.conformance import times
from tests.conformance.recording import Entry, Recording, load

DAY_AND_A_BIT = timedelta(days=1, seconds=3, microseconds=123457)


def entry(method, path, status=200, request=None, response=None, index=0):
    return Entry(index, method, path, "api-version=2025-06-01", request, status, response)


def test_only_whole_absolute_times_are_times():
    assert times.parse("2025-07-13T13:42:09.7109385-07:00") == datetime(2025, 7, 13, 20, 42, 9, 710938,
                                                                        tzinfo=timezone.utc)
    assert times.parse("2026-08-18T00:00Z") == datetime(2026, 8, 18, tzinfo=timezone.utc)
    for not_one in ("2025-07-13T13:42:09", "2025-07-13", "P5D", "PT15M", "2025-13-40T00:00:00Z",
                    "se=2025-07-13T13:42:09Z", "https://a/b?se=2025-07-13T13:42:09Z", "Sanitized"):
        assert times.parse(not_one) is None and times.shift(not_one, DAY_AND_A_BIT) == not_one


def test_a_shift_keeps_the_format():
    assert times.shift("2025-07-13T13:42:09.7109385-07:00", DAY_AND_A_BIT) == "2025-07-14T13:42:12.8343955-07:00"
    assert times.shift("2026-08-18T00:00:00.0000000Z", DAY_AND_A_BIT) == "2026-08-19T00:00:03.1234570Z"
    assert times.shift("2026-02-04T00:00:21.536Z", DAY_AND_A_BIT) == "2026-02-05T00:00:24.659Z"
    assert times.shift("2025-03-19T18:39:21.029046Z", -DAY_AND_A_BIT) == "2025-03-18T18:39:17.905589Z"
    assert times.shift("2025-12-31T23:59:59+0530", DAY_AND_A_BIT) == "2026-01-02T00:00:02+0530"
    assert times.shift("2025-01-01T00:00Z", DAY_AND_A_BIT) == "2025-01-02T00:00Z"      # to the minute, as written


def test_every_time_in_a_body_moves_and_nothing_else():
    body = {"id": "s", "schedule": {"doNotRunUntil": "2025-07-13T20:42:09Z", "startWindow": "P5D"},
            "metadata": [{"name": "k", "value": "2025-07-13T20:42:09Z"}], "priority": 100, "flag": None}
    moved = times.shifted(body, timedelta(hours=1))
    assert moved == {"id": "s", "schedule": {"doNotRunUntil": "2025-07-13T21:42:09Z", "startWindow": "P5D"},
                     "metadata": [{"name": "k", "value": "2025-07-13T21:42:09Z"}], "priority": 100, "flag": None}
    assert times.shifted(body, timedelta(0)) is body


def test_the_run_is_when_its_own_resources_were_made_not_a_fixture_pool():
    recording = Recording("x/y.json", "", (
        entry("GET", "/pools/fixture", response={"id": "fixture", "creationTime": "2024-10-22T00:16:22Z",
                                                 "lastModified": "2024-10-22T00:16:22Z"}),
        entry("POST", "/jobschedules", 201, request={"id": "s"}, index=1),
        entry("GET", "/jobschedules", response={"value": [{"id": "s", "creationTime": "2025-07-13T20:42:09Z"}]},
              index=2),
        entry("GET", "/jobschedules/gone", 404, response={"code": "JobScheduleNotFound", "message": {
            "value": "The specified job schedule does not exist.\nRequestId:x\nTime:2025-07-13T20:42:16.1874415Z"}},
            index=3),
    ))
    assert times.recorded_time(recording) == datetime(2025, 7, 13, 20, 42, 9, tzinfo=timezone.utc)
    now = datetime(2026, 12, 3, tzinfo=timezone.utc)
    assert times.offset(recording, now) == now - datetime(2025, 7, 13, 20, 42, 9, tzinfo=timezone.utc)


def test_an_error_time_dates_a_run_that_made_nothing():
    recording = Recording("x/y.json", "", (entry("GET", "/pools/p", 404, response={"code": "PoolNotFound", "message": {
        "value": "RequestId:x\nTime:2025-07-13T20:39:32.7273367Z"}}),))
    assert times.recorded_time(recording) == datetime(2025, 7, 13, 20, 39, 32, 727336, tzinfo=timezone.utc)


def test_else_the_earliest_answer_and_without_any_time_no_shift():
    shown = Recording("x/y.json", "", (entry("GET", "/pools/p", response={
        "id": "p", "creationTime": "2025-03-19T18:25:36Z", "stateTransitionTime": "2025-03-19T18:25:30Z"}),))
    assert times.recorded_time(shown) == datetime(2025, 3, 19, 18, 25, 30, tzinfo=timezone.utc)
    blind = Recording("x/y.json", "", (entry("POST", "/jobschedules", 201, request={"id": "s", "schedule": {
        "doNotRunAfter": "2026-02-04T00:00:21.536Z"}}),))
    assert times.recorded_time(blind) is None
    assert times.offset(blind, datetime.now(timezone.utc)) == timedelta(0)


def test_a_recorded_schedule_ends_as_far_after_now_as_it_did_after_its_run():
    recording = load("java/jobscheduletests.cancrudjobschedule_1.json")
    now = datetime(2026, 12, 3, 6, 0, tzinfo=timezone.utc)
    body = times.shifted(recording.entries[2].request_body, times.offset(recording, now))
    after = times.parse(body["schedule"]["doNotRunAfter"])
    assert body["schedule"]["doNotRunAfter"].endswith("-07:00")
    assert after is not None and timedelta(hours=4) < after - now < timedelta(hours=5)
