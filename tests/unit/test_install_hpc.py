"""install.sh on the HPC image, against a STAND-IN module tree (not HPC-X): a modules init script of the test's own
whose `module load mpi/hpcx` puts stand-in mpirun and mpicc on PATH, as the image's module puts HPC-X's. Recording
stand-ins for apt-get, sudo and pip show what install.sh would run; nothing is installed on this machine. What this
shows is install.sh's logic (HPC-X found, never Open MPI from apt, mpi4py built with HPC-X's mpicc), not HPC-X."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = """module() {{
  if [ "$1" = load ] && [ "$2" = mpi/hpcx ] && [ -d "{hpcx}" ]; then export PATH="{hpcx}:$PATH"; return 0; fi
  echo "ERROR: Unable to locate a modulefile for '$2'" >&2; return 1
}}
"""
# python3 as on the node, except `-m pip install`, which records its call and "installs" an mpi4py that says
# which mpicc built it (mpi4py.get_config() does that for a real build).
PYTHON = """#!/bin/sh
if [ "$1" = -m ] && [ "$2" = pip ] && [ "$3" = install ]; then
  echo "pip MPICC=$MPICC $*" >> "{log}"
  mkdir -p "{site}/mpi4py"
  printf '__version__ = "4.1.2"\\ndef get_config():\\n    return {{"mpicc": "%s"}}\\n' "$MPICC" \\
    > "{site}/mpi4py/__init__.py"
  exit 0
fi
if [ "$1" = -m ] && [ "$2" = pip ]; then exit 0; fi
PYTHONPATH="{site}" exec "{real}" "$@"
"""
RECORDER = '#!/bin/sh\necho "$(basename "$0") $*" >> "{log}"\n'
SUDO = '#!/bin/sh\nexec "$@"\n'


def stand_ins(tmp_path: Path, with_hpcx: bool = True) -> tuple[dict[str, str], Path]:
    log = tmp_path / "calls.log"
    log.touch()
    stubs, hpcx, site = tmp_path / "stubs", tmp_path / "hpcx" / "bin", tmp_path / "site"
    stubs.mkdir()
    hpcx.mkdir(parents=True)
    site.mkdir()
    for name, text in (("python3", PYTHON.format(log=log, site=site, real=sys.executable)),
                       ("apt-get", RECORDER.format(log=log)), ("sudo", SUDO), ("flock", "#!/bin/sh\nexit 0\n")):
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    (hpcx / "mpirun").write_text("#!/bin/sh\necho 'mpirun (Open MPI) 4.1.7a1 (stand-in for HPC-X)'\n")
    (hpcx / "mpicc").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("mpirun", "mpicc"):
        (hpcx / tool).chmod(0o755)
    modules = tmp_path / "modules.sh"
    modules.write_text(MODULES.format(hpcx=hpcx if with_hpcx else tmp_path / "absent"))
    copy = tmp_path / "demo_azure_batch"
    shutil.copytree(REPO / "demo_azure_batch", copy)
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(tmp_path), "BATCH_NODE_MODULES_INIT": str(modules)}
    return env, copy


def run_install(tmp_path: Path, env: dict[str, str], copy: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(copy / "install.sh")], env=env, capture_output=True, text=True, timeout=60,
                          check=False, cwd=copy)


def test_on_the_hpc_image_hpcx_is_used_and_mpi4py_built_with_its_mpicc(tmp_path):
    env, copy = stand_ins(tmp_path)
    result = run_install(tmp_path, env, copy)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = (tmp_path / "calls.log").read_text()
    assert "openmpi" not in calls and "python3-mpi4py" not in calls and "apt-get" not in calls
    mpicc = tmp_path / "hpcx" / "bin" / "mpicc"
    assert f"pip MPICC={mpicc} -m pip install --quiet --no-binary mpi4py mpi4py" in calls
    assert result.stdout.splitlines()[0] == ("MPI: HPC-X (module mpi/hpcx), mpirun (Open MPI) 4.1.7a1 "
                                             "(stand-in for HPC-X)")
    assert result.stdout.splitlines()[-1] == f"MPI ready: HPC-X (module mpi/hpcx); mpi4py 4.1.2 built with {mpicc}."
    again = run_install(tmp_path, env, copy)   # built with this mpicc now: nothing more to build
    assert again.returncode == 0 and (tmp_path / "calls.log").read_text() == calls


def test_a_pinned_mpi4py_is_the_one_built(tmp_path):
    env, copy = stand_ins(tmp_path)
    (copy / "requirements_node.txt").write_text("mpi4py==4.0.3\n")
    result = run_install(tmp_path, env, copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--no-binary mpi4py mpi4py==4.0.3" in (tmp_path / "calls.log").read_text()


def test_modules_without_hpcx_end_with_one_line(tmp_path):
    env, copy = stand_ins(tmp_path, with_hpcx=False)
    result = run_install(tmp_path, env, copy)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("install.sh: this node has environment modules")
    assert "module load mpi/hpcx failed" in result.stderr and result.stderr.count("\n") == 1
    assert (tmp_path / "calls.log").read_text() == ""


def test_without_modules_the_distributions_open_mpi_is_installed(tmp_path):
    env, copy = stand_ins(tmp_path)
    env["BATCH_NODE_MODULES_INIT"] = str(tmp_path / "no-modules.sh")
    env["PATH"] = env["PATH"].replace(":/usr/bin:/bin", ":" + os.pathsep.join(["/bin"]))  # no mpirun of this machine
    run_install(tmp_path, env, copy)
    assert "apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends openmpi-bin python3-mpi4py" in (
        tmp_path / "calls.log").read_text()
