"""Fixtures shared by unit and end-to-end tests."""

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

import config_resources

REPO_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

# A complete, valid configuration (no real account: the key is base64 of zeros).
VALID_ENV = {
    "AZURE_BATCH_ACCOUNT": "mybatchaccount",
    "AZURE_BATCH_ACCESS_KEY": "A" * 86 + "==",
    "AZURE_BATCH_ENDPOINT": "https://mybatchaccount.westeurope.batch.azure.com",
    "BLOB_CONTAINER_URL": ("https://mystorage.blob.core.windows.net/outputs"
                           "?sv=2025-01-05&se=2099-01-01T00%3A00%3A00Z&sr=c&sp=racwl&sig=SECRETSIGNATURE"),
    "REPOSITORY_URL": "https://example.org/me/mpi-demo.git",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything under tests/e2e as `e2e`, so `pytest -m "not e2e"` runs the fast unit tests alone."""
    e2e_dir = Path(__file__).resolve().parent / "e2e"
    for item in items:
        if e2e_dir in item.path.parents:
            item.add_marker(pytest.mark.e2e)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true a skipped test fails the run: a test that needs root or a tool may skip on a laptop,
    with its reason shown, but CI must run every test (its .ci/run installs what they need).

    Under pytest-xdist the controller decides: its reporter has every worker's reports, and its exit
    status is the run's (a worker's is not)."""
    if hasattr(session.config, "workerinput"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") == "true" and skipped and session.exitstatus == 0:
        reporter.ensure_newline()
        if reporter._tw.width_of_current_line:  # pytest-xdist's progress leaves its line open
            reporter.write_line("")
        reporter.write_line(f"CI=true: {len(skipped)} test(s) skipped; under CI every test must run.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def toolkit_env(monkeypatch):
    """An environment with no toolkit variable and no .env file; returns a function that sets variables."""
    for name in list(os.environ):
        if name in config_resources.VARIABLES or name.startswith("AZURE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(config_resources.ENV_FILE_VARIABLE, "")

    def set_variables(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)
    return set_variables


@pytest.fixture
def valid_env(toolkit_env):
    toolkit_env(**VALID_ENV)
    return dict(VALID_ENV)


def wait_for(condition: "Callable[[], T]", timeout: float = 20.0, what: str = "the condition",
             interval: float = 0.05) -> "T":
    """Poll `condition` until it returns something truthy, and return that; fail the test after `timeout` s.

    The one way tests wait: on a condition, never on a fixed sleep.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def process_alive(pid: int) -> bool:
    """Whether a process with this id still exists (and is not a zombie waiting to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
