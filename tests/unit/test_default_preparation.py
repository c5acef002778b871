"""The default CMD_PREP_TASK, run as a node runs it: with git it clones and runs install.sh; on a node
without git it installs git first (apt-get, which cannot run offline, is a script that records its
arguments and then puts the real git on PATH, as the package would)."""

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import config_resources
from tests.git_repos import make_repository

# What the command runs besides git and apt-get (bash is given by its absolute path).
TOOLS = ("rm", "chmod", "ln")
FAKE_APT_GET = """#!/bin/bash
echo "apt-get $*" >> "$APT_LOG"
if [ "$1" = install ]; then ln -s "$REAL_GIT" "$NODE_BIN/git"; fi
"""


def node_path(tmp_path: Path, with_git: bool) -> Path:
    """A PATH directory holding only what the preparation needs, with git or without it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS + (("git",) if with_git else ()):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "apt-get").write_text(FAKE_APT_GET)
    (bin_dir / "apt-get").chmod(0o755)
    return bin_dir


def run_preparation(tmp_path: Path, with_git: bool) -> tuple[subprocess.CompletedProcess, str]:
    repo = make_repository(tmp_path / "repo-source")
    command = config_resources.default_cmd_prep_task(str(repo))
    workdir, log = tmp_path / "prep-working-dir", tmp_path / "apt.log"
    workdir.mkdir()
    log.write_text("")
    bin_dir = node_path(tmp_path, with_git)
    env = {"PATH": str(bin_dir), "NODE_BIN": str(bin_dir), "APT_LOG": str(log), "REAL_GIT": shutil.which("git"),
           "HOME": str(tmp_path)}
    done = subprocess.run(shlex.split(command), cwd=workdir, env=env, capture_output=True, text=True, timeout=60)
    return done, log.read_text()


def test_with_git_it_clones_and_runs_install_sh_without_apt_get(tmp_path):
    done, apt = run_preparation(tmp_path, with_git=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "installed\n" and apt == ""


def test_without_git_it_installs_git_first(tmp_path):
    done, apt = run_preparation(tmp_path, with_git=False)
    assert done.returncode == 0, done.stderr
    assert apt == "apt-get update -q\napt-get install -y -q git\n"
    assert done.stdout == "installed\n"
    assert os.path.islink(tmp_path / "bin" / "git")
