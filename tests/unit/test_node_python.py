"""A node's own Python in the emulator's --isolation none mode (batch_emulator/runtime/node_python.py), and
install.sh on such a node (BATCH_EMULATOR_HOST_NODE=1: the user's own machine).

The node's venv runs mpi4py with the project venv's MPICH, and pip installs into it, never into the project's
.venv; it goes with the node's directory. install.sh never calls apt-get or sudo there: without mpirun it says
what is missing, with it it installs requirements_node.txt into the node's venv. pip works offline, from a
wheel this module builds by hand (probe_wheel), so nothing leaves the machine.
"""

import base64
import hashlib
import os
import re
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

from batch_emulator.runtime.node_python import HOST_NODE_VARIABLE, host_node_environment, node_venv

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_BIN = Path(sys.executable).parent   # the project venv's bin: its python3, MPICH's mpirun
PROBE_PACKAGE = "probe_pkg"
PROBE_REQUIREMENT = "probe-pkg==1.0"
# What install.sh runs besides python3, mpirun, apt-get and sudo.
TOOLS = ("bash", "dirname", "id", "sed", "grep", "flock", "head", "env")
# apt-get and sudo on a node's PATH: each call is a line in $CALLS_LOG, and fails.
RECORDING_SHIM = '#!/bin/sh\necho "$(basename "$0") $*" >> "$CALLS_LOG"\nexit 1\n'


def probe_wheel(directory: Path) -> Path:
    """probe_pkg-1.0-py3-none-any.whl in `directory`: a package of one module, for pip to install offline."""
    files = {f"{PROBE_PACKAGE}/__init__.py": 'VERSION = "1.0"\n',
             f"{PROBE_PACKAGE}-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: probe-pkg\nVersion: 1.0\n",
             f"{PROBE_PACKAGE}-1.0.dist-info/WHEEL": ("Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                                                      "Tag: py3-none-any\n")}
    record_name = f"{PROBE_PACKAGE}-1.0.dist-info/RECORD"
    record = [f"{name},sha256={_digest(text.encode())},{len(text.encode())}" for name, text in files.items()]
    files[record_name] = "\n".join([*record, f"{record_name},,"]) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{PROBE_PACKAGE}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def probe_in_project_venv() -> list[Path]:
    """What of probe_pkg the project's .venv holds: nothing, whatever a node installed."""
    return [found for directory in site.getsitepackages() for found in Path(directory).glob(f"{PROBE_PACKAGE}*")]


def node_site_packages(venv_dir: Path) -> Path:
    return venv_dir / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def run_node_python(node_root: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """`python3 ARGS` as a process of the node runs it: the node's variables over this process's environment,
    the project venv's bin (mpirun, MPICH) after the node's."""
    env = dict(os.environ)
    env.update(host_node_environment(str(node_root), os.pathsep.join([str(PROJECT_BIN), os.defpath])))
    env.update(extra_env)
    return subprocess.run(["python3", *args], env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def pip_install_probe(node_root: Path, wheels: Path) -> subprocess.CompletedProcess[str]:
    return run_node_python(node_root, "-m", "pip", "install", "--no-index", "--find-links", str(wheels),
                           "probe-pkg", PIP_DISABLE_PIP_VERSION_CHECK="1")


def probe_location(node_root: Path) -> str:
    """Where the node's python3 imports probe_pkg from ('' when it cannot)."""
    found = run_node_python(node_root, "-c", "import importlib.util as u; s = u.find_spec('probe_pkg'); "
                                             "print(s.origin if s else '')")
    assert found.returncode == 0, found.stderr
    return found.stdout.strip()


# --- the node's venv -----------------------------------------------------------------------------------


def test_a_node_venv_is_made_once_in_the_node_directory_and_reused(tmp_path):
    made = node_venv(str(tmp_path / "node"))
    assert made == tmp_path / "node" / "volatile" / "python"
    (made / "made-once").write_text("")   # a venv made again would not have it
    assert node_venv(str(tmp_path / "node")) == made
    assert (made / "made-once").exists()
    assert sorted(path.name for path in made.parent.iterdir()) == ["python"]   # no half-made venv left


def test_the_host_node_environment_puts_the_node_venv_first_and_marks_a_host_node(tmp_path):
    env = host_node_environment(str(tmp_path / "node"), "/somewhere/bin:/usr/bin")
    venv_dir = tmp_path / "node" / "volatile" / "python"
    assert env == {"PATH": f"{venv_dir / 'bin'}:/somewhere/bin:/usr/bin", "VIRTUAL_ENV": str(venv_dir),
                   HOST_NODE_VARIABLE: "1"}


def test_the_node_python_runs_mpi4py_on_the_projects_mpich_in_its_own_prefix(tmp_path):
    ran = run_node_python(tmp_path / "node", "-c", "import sys, mpi4py; from mpi4py import MPI; "
                                                   "print(sys.prefix); print(MPI.Get_library_version())")
    assert ran.returncode == 0, ran.stderr
    prefix, library = ran.stdout.split("\n", 1)
    assert Path(prefix).resolve() == (tmp_path / "node" / "volatile" / "python").resolve()
    assert library.startswith("MPICH Version:"), library   # the project venv's MPICH, found through lib/


def test_pip_installs_into_the_node_venv_and_never_into_the_projects(tmp_path):
    assert probe_in_project_venv() == []
    installed = pip_install_probe(tmp_path / "node", probe_wheel(tmp_path / "wheels").parent)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    site_packages = node_site_packages(tmp_path / "node" / "volatile" / "python")
    assert probe_location(tmp_path / "node") == str(site_packages / PROBE_PACKAGE / "__init__.py")
    assert (site_packages / f"{PROBE_PACKAGE}-1.0.dist-info").is_dir()
    assert probe_in_project_venv() == []


def test_a_removed_node_takes_its_venv_and_a_new_node_starts_without_its_packages(tmp_path):
    wheels = probe_wheel(tmp_path / "wheels").parent
    assert pip_install_probe(tmp_path / "node", wheels).returncode == 0
    assert probe_location(tmp_path / "node") != ""
    shutil.rmtree(tmp_path / "node")   # the node leaves the pool
    assert probe_location(tmp_path / "node") == ""        # a node made again in the same directory
    assert probe_location(tmp_path / "other-node") == ""  # and another node
    assert probe_in_project_venv() == []


# --- install.sh on a host node -------------------------------------------------------------------------


def node_demo(tmp_path: Path, requirements: str) -> Path:
    """A copy of demo_azure_batch whose requirements_node.txt is `requirements`."""
    demo = tmp_path / "demo_azure_batch"
    shutil.copytree(REPO_ROOT / "demo_azure_batch", demo)
    (demo / "requirements_node.txt").write_text(requirements)
    return demo


def tools_dir(tmp_path: Path) -> Path:
    """A bin directory of install.sh's tools (symlinks), and recording apt-get and sudo: no mpirun, no python3."""
    bin_dir = tmp_path / "tools"
    if bin_dir.is_dir():
        return bin_dir
    bin_dir.mkdir()
    for tool in TOOLS:
        real = shutil.which(tool)
        assert real, f"{tool} is not on PATH"
        (bin_dir / tool).symlink_to(real)
    for shim in ("apt-get", "sudo"):
        (bin_dir / shim).write_text(RECORDING_SHIM)
        (bin_dir / shim).chmod(0o755)
    return bin_dir


def run_install(demo: Path, tmp_path: Path, path_after_node: list[Path],
                **extra_env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """./install.sh on a host node: the recording tools first on PATH, then the node's venv, then
    `path_after_node`. Returns the run and the log of apt-get and sudo calls (absent if none)."""
    tools = tools_dir(tmp_path)
    node = host_node_environment(str(tmp_path / "node"), os.pathsep.join(map(str, path_after_node)))
    calls = tmp_path / "apt-and-sudo-calls.log"
    env = {**node, "PATH": os.pathsep.join([str(tools), node["PATH"]]), "HOME": str(tmp_path),
           "CALLS_LOG": str(calls), "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra_env}
    done = subprocess.run([str(demo / "install.sh")], cwd=demo, env=env, capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)
    return done, calls


def test_install_sh_without_mpirun_on_a_host_node_says_so_and_never_runs_apt(tmp_path):
    demo = node_demo(tmp_path, (REPO_ROOT / "demo_azure_batch" / "requirements_node.txt").read_text())
    done, calls = run_install(demo, tmp_path, [])   # the node's python3 imports mpi4py: only mpirun is missing
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("install.sh: no mpirun on PATH") and "(make setup)" in done.stderr, done.stderr
    assert not calls.exists(), calls.read_text()


def test_install_sh_on_a_host_node_installs_the_requirements_into_the_node_venv_only(tmp_path):
    wheels = probe_wheel(tmp_path / "wheels").parent
    demo = node_demo(tmp_path, f"# what the program needs\n{PROBE_REQUIREMENT}\n")
    assert probe_in_project_venv() == []
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}
    done, calls = run_install(demo, tmp_path, [PROJECT_BIN], **offline)
    assert done.returncode == 0, done.stdout + done.stderr
    # The last line names the MPI under MPICH too (its mpirun --version begins "HYDRA build details:").
    assert re.fullmatch(r"MPI ready: mpirun \(MPICH\) \d+\.\d+(\.\d+)?; mpi4py .+\.",
                        done.stdout.splitlines()[-1]), done.stdout
    assert not calls.exists(), calls.read_text()
    site_packages = node_site_packages(tmp_path / "node" / "volatile" / "python")
    assert (site_packages / PROBE_PACKAGE / "__init__.py").is_file()
    assert probe_in_project_venv() == []

    again, calls = run_install(demo, tmp_path, [PROJECT_BIN], **offline)   # after a node's reboot
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout == "MPI and the Python packages are already installed: nothing to do.\n"
    assert not calls.exists(), calls.read_text()
