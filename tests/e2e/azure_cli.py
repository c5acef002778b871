"""The Azure CLI for the end-to-end tests: azure-cli (pinned) installed once into .local/azure-cli-venv.

The session fixture `az_executable` (tests/e2e/conftest.py) gives the path of its `az`, installing it
on first use (about a minute; `make clean` removes it; AZ_CLI_VENV names an existing one instead).
When pip cannot install it the tests skip with pip's reason on a laptop; under CI=true they fail
instead: CI can reach the package index, so this coverage must not disappear silently.
"""

import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
AZ_CLI_SPEC = os.environ.get("AZ_CLI_SPEC", "azure-cli==2.91.0")
AZ_CLI_VENV = REPO_ROOT / ".local" / "azure-cli-venv"
INSTALL_TIMEOUT = 1200


def _skip_or_fail(reason):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"azure-cli could not be installed under CI: {reason}", pytrace=False)
    pytest.skip(f"azure-cli could not be installed: {reason}")


def _install(env_dir):
    """azure-cli in a fresh virtualenv at ``env_dir``; a stamp naming the spec is written last."""
    shutil.rmtree(env_dir, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    started = time.monotonic()
    for attempt in (1, 2):  # a package index can answer "no matching distribution" once under load
        try:
            done = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install",
                                   "--disable-pip-version-check", "--quiet", AZ_CLI_SPEC], capture_output=True,
                                  text=True, timeout=INSTALL_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            _skip_or_fail(f"pip install {AZ_CLI_SPEC} took more than {INSTALL_TIMEOUT} s")
        if done.returncode == 0:
            break
        sys.stderr.write(f"\n[pip install {AZ_CLI_SPEC}: attempt {attempt} failed]\n")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        _skip_or_fail(f"pip install {AZ_CLI_SPEC} exited {done.returncode}: {last}")
    (env_dir / "installed-spec").write_text(AZ_CLI_SPEC)
    sys.stderr.write(f"\n[{AZ_CLI_SPEC} installed in {time.monotonic() - started:.0f} s]\n")


def installed_az() -> Path:
    """Path of `az`: in AZ_CLI_VENV when set, else in .local/azure-cli-venv (installed once, then reused)."""
    existing = os.environ.get("AZ_CLI_VENV")
    env_dir = Path(existing) if existing else AZ_CLI_VENV
    stamp = env_dir / "installed-spec"
    if not existing and not (stamp.exists() and stamp.read_text() == AZ_CLI_SPEC):
        _install(env_dir)
    if not (env_dir / "bin" / "az").exists():
        _skip_or_fail(f"{env_dir} has no bin/az")
    return env_dir / "bin" / "az"
