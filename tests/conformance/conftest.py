"""The session summary of the conformance replay: counts per bucket, per language (test_replay.py records each
recording's counts as a user property, which pytest-xdist carries back from its workers)."""

from collections import Counter, defaultdict

TOTALS: "defaultdict[str, Counter[str]]" = defaultdict(Counter)
LINES: list[str] = []


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "replay_counts":
            TOTALS[value["language"]].update(value["counts"])
            LINES.append(value["line"])


def pytest_terminal_summary(terminalreporter):
    if not TOTALS:
        return
    terminalreporter.section("conformance replay")
    for line in sorted(LINES):
        terminalreporter.write_line(line)
    for language in sorted(TOTALS):
        counts = TOTALS[language]
        terminalreporter.write_line(f"{language} total: " + ", ".join(
            f"{bucket} {counts.get(bucket, 0)}" for bucket in ("SAME", "OTHER_STATUS", "OTHER_SHAPE", "UNSUPPORTED")))
