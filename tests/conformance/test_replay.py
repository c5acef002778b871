"""Microsoft's public recordings of its SDK tests against live Batch accounts, replayed against the emulator
(issue 21; replay.py says how). Per recording: a line of counts per bucket; a failure for any entry answered with
another status that is neither a feature the README lists as absent nor listed in known_differences.json, and for
any known difference that no longer holds (so the list stays true)."""

import json
from pathlib import Path

import pytest

from tests.conformance import recording as recordings
from tests.conformance.replay import Bucket, replay
from tests.e2e.emulator_process import start_emulator

KNOWN = Path(__file__).resolve().parent / "known_differences.json"

pytestmark = pytest.mark.e2e


def known_differences(name):
    """{index: (bucket, reason)} of the known differences of recording ``name``."""
    listed = json.loads(KNOWN.read_text(encoding="utf-8"))["differences"]
    return {d["index"]: (Bucket(d["bucket"]), d["reason"]) for d in listed if d["file"] == name}


@pytest.fixture
def emulator(tmp_path):
    with open(tmp_path / "emulator-stderr.log", "w") as log:
        proc, url = start_emulator(tmp_path / "root", log)
        try:
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=15)


@pytest.mark.parametrize("name", recordings.recording_names())
def test_replay(name, emulator, record_property):
    known = known_differences(name)
    report = replay(recordings.load(name), emulator, frozenset(known))
    print(report.line())
    for outcome in report.outcomes:
        if outcome.bucket is not Bucket.SAME:
            print("  " + outcome.line())
    record_property("replay_counts", {"language": name.split("/")[0], "counts": report.counts(),
                                      "line": report.line()})
    unexplained = [o for o in report.outcomes if o.bucket is Bucket.OTHER_STATUS and o.index not in known]
    stale = [(o, known[o.index]) for o in report.outcomes if o.index in known and o.bucket is not known[o.index][0]]
    problems = [f"{name} {o.line()}" for o in unexplained]
    problems += [f"{name} #{o.index} is listed as {listed.value} ({reason}) but is now {o.bucket.value}"
                 for o, (listed, reason) in stale]
    assert not problems, "\n".join(problems)
