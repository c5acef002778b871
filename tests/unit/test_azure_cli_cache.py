"""The azure-cli virtualenv cache of the e2e tests (tests/e2e/azure_cli.py): installed once per machine,
atomically, by one process while the others (pytest-xdist workers, other clones) wait for it."""

import fcntl
import os
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.e2e import azure_cli

SPEC = "azure-cli==2.91.0"


def fake_install(calls: list[Path]):
    """An install that makes what is_complete checks: bin/az, bin/python, then the stamp."""
    def install(env_dir: Path) -> None:
        calls.append(env_dir)
        (env_dir / "bin").mkdir()
        (env_dir / "bin" / "az").write_text("#!/bin/sh\n")
        (env_dir / "bin" / "python").symlink_to(sys.executable)
        (env_dir / azure_cli.STAMP).write_text(SPEC)
    return install


def test_the_name_says_the_spec_and_the_python_version():
    major, minor = sys.version_info[:2]
    assert azure_cli.venv_name(SPEC) == f"azure-cli-2.91.0-py{major}.{minor}"


def test_the_first_use_installs_behind_a_link_and_later_ones_reuse_it(tmp_path):
    calls: list[Path] = []
    first = azure_cli.cached_venv(tmp_path, "az-venv", SPEC, fake_install(calls))
    again = azure_cli.cached_venv(tmp_path, "az-venv", SPEC, fake_install(calls))

    assert calls == [first] and again == first
    assert first.parent == tmp_path and first.name.startswith("az-venv.")
    assert (tmp_path / "az-venv").is_symlink() and (tmp_path / "az-venv").resolve() == first


def test_a_failed_install_leaves_nothing_and_the_next_use_installs_again(tmp_path):
    def broken(env_dir: Path) -> None:
        (env_dir / "bin").mkdir()
        raise RuntimeError("pip failed")

    with pytest.raises(RuntimeError, match="pip failed"):
        azure_cli.cached_venv(tmp_path, "az-venv", SPEC, broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["az-venv.lock"]

    calls: list[Path] = []
    made = azure_cli.cached_venv(tmp_path, "az-venv", SPEC, fake_install(calls))
    assert calls == [made]


def test_an_install_that_died_or_lost_its_python_is_redone(tmp_path):
    calls: list[Path] = []
    old = azure_cli.cached_venv(tmp_path, "az-venv", SPEC, fake_install(calls))
    died = tmp_path / "az-venv.died"   # a process killed mid-install leaves its directory, never the link
    died.mkdir()
    (old / "bin" / "python").unlink()
    (old / "bin" / "python").symlink_to(tmp_path / "removed-python")

    new = azure_cli.cached_venv(tmp_path, "az-venv", SPEC, fake_install(calls))

    assert calls == [old, new] and new != old
    assert not old.exists() and not died.exists()
    assert (tmp_path / "az-venv").resolve() == new


def test_an_install_of_another_spec_is_not_taken_for_this_one(tmp_path):
    calls: list[Path] = []
    old = azure_cli.cached_venv(tmp_path, "az-venv", SPEC, fake_install(calls))
    (old / azure_cli.STAMP).write_text("azure-cli==2.90.0")

    new = azure_cli.cached_venv(tmp_path, "az-venv", SPEC, fake_install(calls))

    assert calls == [old, new] and (new / azure_cli.STAMP).read_text() == SPEC


def _waiting_on(lock_file: Path) -> bool:
    """Whether a process waits for an flock on `lock_file` (a '->' line of /proc/locks names its inode)."""
    inode = os.stat(lock_file).st_ino
    return any(line.split()[1] == "->" and line.split()[6].endswith(f":{inode}")
               for line in Path("/proc/locks").read_text().splitlines())


def test_a_second_user_waits_for_the_first_install_and_takes_it(tmp_path):
    """While one process installs (holding the lock), another waits, then uses that install: pip runs once."""
    lock_file = tmp_path / "az-venv.lock"
    calls: list[Path] = []
    results: list[Path] = []
    with open(lock_file, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)   # the first installer, mid-install
        waiter = threading.Thread(target=lambda: results.append(
            azure_cli.cached_venv(tmp_path, "az-venv", SPEC, fake_install(calls))))
        waiter.start()
        wait_for(lambda: _waiting_on(lock_file), timeout=10, what="the second user to wait on the lock")
        first = tmp_path / "az-venv.first"
        first.mkdir()
        fake_install([])(first)
        (tmp_path / "az-venv").symlink_to(first.name)
    waiter.join(timeout=10)

    assert results == [first] and calls == []


def test_the_cache_is_the_users_when_var_cache_is_not_writable(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(azure_cli, "SYSTEM_CACHE", blocker / "mpi-batch-toolkit")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    assert azure_cli.cache_root() == tmp_path / "cache" / "mpi-batch-toolkit"
