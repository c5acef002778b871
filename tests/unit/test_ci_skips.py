"""Under CI=true a skipped test fails the run (tests/conftest.py), so CI never loses a test silently."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

SKIPPING_TEST = '''
import pytest

def test_needs_a_tool():
    pytest.skip("needs a tool this machine lacks")
'''


def run_skipping_test(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_sessionfinish  # noqa: F401\n")
    (tmp_path / "test_skipping.py").write_text(SKIPPING_TEST)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                           str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def test_a_skip_fails_the_run_under_ci(tmp_path: Path) -> None:
    result = run_skipping_test(tmp_path, "true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "under CI every test must run" in result.stdout


def test_a_skip_is_only_reported_on_a_laptop(tmp_path: Path) -> None:
    result = run_skipping_test(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
