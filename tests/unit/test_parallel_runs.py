"""The suite runs on pytest-xdist workers (the Makefile's PYTEST_FLAGS): the CI rule of tests/conftest.py
(a skip fails the run under CI=true) still holds when the skip happens on a worker."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

SKIPPING_TESTS = '''
import os

import pytest

def test_runs():
    pass

def test_needs_a_tool():
    pytest.skip(f"needs a tool worker {os.environ.get('PYTEST_XDIST_WORKER')} lacks")
'''


def run_on_two_workers(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_sessionfinish  # noqa: F401\n")
    (tmp_path / "test_skipping.py").write_text(SKIPPING_TESTS)
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-n", "2",
                           "--dist", "load", "--rootdir", str(tmp_path), str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_skip_on_a_worker_fails_the_run_under_ci(tmp_path: Path) -> None:
    result = run_on_two_workers(tmp_path, "true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "needs a tool worker gw" in result.stdout  # skipped on a worker, seen by the controller
    assert result.stdout.count("\nCI=true: 1 test(s) skipped; under CI every test must run.\n") == 1, result.stdout


def test_a_skip_on_a_worker_is_only_reported_on_a_laptop(tmp_path: Path) -> None:
    result = run_on_two_workers(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
