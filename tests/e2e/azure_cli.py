"""The Azure CLI for the end-to-end tests: azure-cli (pinned) in a virtualenv cached outside the checkout.

The session fixture `az_executable` (tests/e2e/conftest.py) gives the path of its `az`. The virtualenv
lives in /var/cache/mpi-batch-toolkit when this user can write there (root, as in CI), else in
${XDG_CACHE_HOME:-~/.cache}/mpi-batch-toolkit, named after the spec and the Python version
(azure-cli-2.91.0-py3.11), so every clone on the machine shares one install of about a minute: the first
use installs it, later ones (other clones, other test runs) reuse it. `rm -rf` it to reinstall;
AZ_CLI_VENV names an existing one instead. When pip cannot install it the tests skip with pip's reason on a
laptop; under CI=true they fail instead: CI can reach the package index, so this coverage must not
disappear silently.
"""

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from pathlib import Path

import pytest

AZ_CLI_SPEC = os.environ.get("AZ_CLI_SPEC", "azure-cli==2.91.0")
SYSTEM_CACHE = Path("/var/cache/mpi-batch-toolkit")
STAMP = "installed-spec"
INSTALL_TIMEOUT = 1200


def _skip_or_fail(reason):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"azure-cli could not be installed under CI: {reason}", pytrace=False)
    pytest.skip(f"azure-cli could not be installed: {reason}")


def cache_root() -> Path:
    """/var/cache/mpi-batch-toolkit when this user can write there, else the user's own cache directory."""
    try:
        SYSTEM_CACHE.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    else:
        if os.access(SYSTEM_CACHE, os.W_OK):
            return SYSTEM_CACHE
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mpi-batch-toolkit"


def venv_name(spec: str) -> str:
    """azure-cli==2.91.0 -> azure-cli-2.91.0-py3.11: a virtualenv serves one spec on one Python version."""
    return f"{re.sub(r'[^A-Za-z0-9.]+', '-', spec).strip('-')}-py{sys.version_info.major}.{sys.version_info.minor}"


def is_complete(env_dir: Path, spec: str) -> bool:
    """The stamp (written last) names `spec`, and `az` and the interpreter it runs on are there."""
    try:
        stamped = (env_dir / STAMP).read_text() == spec
    except OSError:
        return False
    return stamped and (env_dir / "bin" / "az").exists() and (env_dir / "bin" / "python").exists()


def cached_venv(root: Path, name: str, spec: str, install: Callable[[Path], None]) -> Path:
    """The directory of the virtualenv `root/name`, made once by `install(directory)`.

    `root/name` is a symbolic link to a directory `root/name.XXXX` that `install` filled: a virtualenv cannot
    be renamed once made (its scripts name its path), so the link is what is renamed into place (atomic),
    only after the install completed. A reader sees a complete virtualenv or none. An flock on
    `root/name.lock` makes concurrent runs (pytest-xdist workers, two clones) wait for one install.
    """
    link = root / name
    if is_complete(link, spec):
        return link.resolve()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_complete(link, spec):  # installed by another process while this one waited
            return link.resolve()
        for leftover in root.glob(f"{name}.*"):  # an install that died, or one whose Python is gone
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
        target = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=root))
        try:
            target.chmod(0o755)
            install(target)
            new_link = root / f".{name}.link-{os.getpid()}"
            new_link.unlink(missing_ok=True)
            new_link.symlink_to(target.name)
            os.replace(new_link, link)
        except BaseException:  # pytest's skip and fail too: no half-made virtualenv stays behind
            shutil.rmtree(target, ignore_errors=True)
            raise
        return target


def _install(env_dir: Path, spec: str = AZ_CLI_SPEC) -> None:
    """`spec` in a fresh virtualenv at ``env_dir``; a stamp naming the spec is written last."""
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    started = time.monotonic()
    for attempt in (1, 2):  # a package index can answer "no matching distribution" once under load
        try:
            done = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install",
                                   "--disable-pip-version-check", "--quiet", spec], capture_output=True,
                                  text=True, timeout=INSTALL_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            _skip_or_fail(f"pip install {spec} took more than {INSTALL_TIMEOUT} s")
        if done.returncode == 0:
            break
        sys.stderr.write(f"\n[pip install {spec}: attempt {attempt} failed]\n")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        _skip_or_fail(f"pip install {spec} exited {done.returncode}: {last}")
    (env_dir / STAMP).write_text(spec)
    sys.stderr.write(f"\n[{spec} installed in {env_dir} in {time.monotonic() - started:.0f} s]\n")


def installed_az() -> Path:
    """Path of `az`: in AZ_CLI_VENV when set, else in the cached virtualenv (installed once, then reused)."""
    existing = os.environ.get("AZ_CLI_VENV")
    env_dir = Path(existing) if existing else cached_venv(cache_root(), venv_name(AZ_CLI_SPEC), AZ_CLI_SPEC,
                                                          _install)
    if not (env_dir / "bin" / "az").exists():
        _skip_or_fail(f"{env_dir} has no bin/az")
    return env_dir / "bin" / "az"
