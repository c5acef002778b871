#!/usr/bin/env bash
# Installs what script.py needs on a node: Open MPI, MPI for Python and the packages of
# requirements_node.txt. Run by the job preparation task (admin auto-user) on each Ubuntu 24.04
# node before its first task; safe to run again (after a reboot, or on a machine that already has
# everything: then it installs nothing). Also correct on Debian 12.
#
# MPI for Python comes from the distribution (python3-mpi4py with openmpi-bin: no compiler, ready in
# seconds), unless requirements_node.txt names mpi4py itself: then pip builds that version from
# source against the node's Open MPI (a few minutes per node, on every node autoscale adds).
#
#   ./install.sh --list-apt-packages   prints every apt package it may install (for a prefetch)
#
# On Microsoft's HPC image (InfiniBand sizes: microsoft-dsvm/ubuntu-hpc), MPI is HPC-X, an environment
# module (mpi/hpcx): install.sh loads it, never apt-installs Open MPI there (it would shadow HPC-X), and
# builds mpi4py against HPC-X's mpicc when python3's mpi4py was not built with it (minutes per node).
# BATCH_NODE_MODULES_INIT names another modules init script than /etc/profile.d/modules.sh (the tests'
# stand-in module tree).
#
# On a node of the local emulator's --isolation none mode (BATCH_EMULATOR_HOST_NODE=1), the node
# is your own machine: install.sh never runs apt there and says what is missing instead, and pip
# writes into the pool's own virtualenv.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/requirements_node.txt"
mpi_packages="openmpi-bin python3-mpi4py"                            # MPI for Python from the distribution
build_packages="openmpi-bin libopenmpi-dev python3-dev build-essential"  # mpi4py built from source
pip_packages="python3-pip"                                            # for requirements_node.txt's packages
if [ "${1:-}" = "--list-apt-packages" ]; then echo "$mpi_packages $build_packages $pip_packages"; exit 0; fi
if [ ! -f "$requirements" ]; then
  echo "demo_azure_batch/requirements_node.txt not found in the clone of REPOSITORY_URL: add it next to install.sh (one pinned package a line, or only comments; see the README, Run your own program)" >&2
  exit 3
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# The requirement lines, without comments and blank lines.
wanted="$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$requirements" | grep -v '^$' || true)"
builds_mpi4py=""
if printf '%s\n' "$wanted" | grep -qiE '^mpi4py([=<>!~;[]|$)'; then builds_mpi4py=1; fi

# True when python3 already has every pinned package at its pinned version.
requirements_met() {
  printf '%s\n' "$wanted" | python3 -c '
import sys
from importlib.metadata import PackageNotFoundError, version
for line in sys.stdin:
    name, _, pinned = line.strip().partition("==")
    if not name:
        continue
    try:
        if pinned and version(name) != pinned:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
'
}

has_mpi() { command -v mpirun >/dev/null 2>&1 && python3 -c 'import mpi4py' >/dev/null 2>&1; }
installed() { has_mpi && requirements_met; }
in_virtualenv() { python3 -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; }

# The HPC image: HPC-X from its modules, mpi4py built against it; nothing else of the branches below.
modules_init="${BATCH_NODE_MODULES_INIT:-/etc/profile.d/modules.sh}"
if [ -f "$modules_init" ] && [ "${BATCH_EMULATOR_HOST_NODE:-}" != "1" ]; then
  set +u   # module scripts read variables that may be unset
  # shellcheck disable=SC1090
  if ! { source "$modules_init" && module load mpi/hpcx && command -v mpicc && command -v mpirun; } >/dev/null 2>&1; then
    echo "install.sh: this node has environment modules ($modules_init) but module load mpi/hpcx failed or gave no mpicc and mpirun: the HPC image should have HPC-X; check IMAGE_* and NODE_AGENT_SKU_ID" >&2
    exit 1
  fi
  set -u
  mpicc_path="$(command -v mpicc)"
  echo "MPI: HPC-X (module mpi/hpcx), $(mpirun --version 2>/dev/null | head -n 1)"
  # mpi4py counts only when built with this mpicc (the distribution's python3-mpi4py is linked to another MPI).
  built_here() { [ "$(python3 -c 'import mpi4py; print(mpi4py.get_config().get("mpicc", ""))' 2>/dev/null)" = "$mpicc_path" ]; }
  pinned_mpi4py="$(printf '%s\n' "$wanted" | grep -iE '^mpi4py([=<>!~;[]|$)' | head -n 1 || true)"
  if ! built_here || ! requirements_met; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
      echo "Installing python3-pip python3-dev (not Open MPI: HPC-X is this node's MPI)..."
      $sudo apt-get -o DPkg::Lock::Timeout=600 update -q || echo "install.sh: apt-get update failed" >&2
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends python3-pip python3-dev
    fi
    echo "Building mpi4py against HPC-X's mpicc ($mpicc_path): minutes, on every new node."
    $sudo env PIP_BREAK_SYSTEM_PACKAGES=1 MPICC="$mpicc_path" python3 -m pip install --quiet --no-binary mpi4py "${pinned_mpi4py:-mpi4py}"
    if [ -n "$wanted" ]; then
      $sudo env PIP_BREAK_SYSTEM_PACKAGES=1 MPICC="$mpicc_path" python3 -m pip install --quiet --no-binary mpi4py -r "$requirements"
    fi
  fi
  built_here || { echo "install.sh: mpi4py is still not built against HPC-X's mpicc ($mpicc_path) after install" >&2; exit 1; }
  echo "MPI ready: HPC-X (module mpi/hpcx); mpi4py $(python3 -c 'import mpi4py; print(mpi4py.__version__)') built with $mpicc_path."
  exit 0
fi

if installed; then
  echo "MPI and the Python packages are already installed: nothing to do."
  exit 0
fi

if [ "${BATCH_EMULATOR_HOST_NODE:-}" = "1" ] && ! has_mpi; then
  # Never apt on the user's own machine: say what is missing.
  command -v mpirun >/dev/null 2>&1 || echo "install.sh: no mpirun on PATH on this emulated node (your machine): the project's .venv provides MPICH's (make setup)" >&2
  python3 -c 'import mpi4py' >/dev/null 2>&1 || echo "install.sh: python3 ($(command -v python3)) cannot import mpi4py: the project's .venv provides it (make setup)" >&2
  exit 1
fi

if [ "${BATCH_EMULATOR_HOST_NODE:-}" = "1" ] && [ -n "$wanted" ] && ! in_virtualenv; then
  echo "install.sh: python3 ($(command -v python3)) is not a virtualenv on this emulated node (your machine): not installing requirements_node.txt into it" >&2
  exit 1
fi

# One install at a time per machine. apt's lists lock makes a second `apt-get update` fail at
# once (DPkg::Lock::Timeout covers only dpkg's lock), and two pips building into one
# site-packages would race. On Azure this guards against the node's own apt jobs.
lock=/var/lock/batch-node-install.lock
if [ -n "$sudo" ]; then lock="${TMPDIR:-/tmp}/batch-node-install-$(id -u).lock"; fi
exec 9>"$lock"
flock -w 1800 9 || { echo "install.sh: waited 30 minutes for $lock; is another install stuck?" >&2; exit 1; }
if installed; then
  echo "Installed meanwhile by another run: nothing to do."
  exit 0
fi

apt_packages=""
if ! has_mpi || [ -n "$builds_mpi4py" ]; then
  if [ -n "$builds_mpi4py" ]; then apt_packages="$build_packages"; else apt_packages="$mpi_packages"; fi
fi
if [ -n "$wanted" ] && ! in_virtualenv && ! python3 -m pip --version >/dev/null 2>&1; then
  apt_packages="$apt_packages $pip_packages"
fi
if [ -n "${apt_packages// /}" ] && [ "${BATCH_EMULATOR_HOST_NODE:-}" != "1" ]; then
  echo "Installing $apt_packages..."
  # A package list refresh that fails (no route out, a mirror down) is not fatal: apt installs
  # from the lists and the downloaded packages already there, or fails below saying what is missing.
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -q \
    || echo "install.sh: apt-get update failed; installing from the package lists already on this machine" >&2
  # shellcheck disable=SC2086  # one word per package
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
    --no-install-recommends $apt_packages
fi

if [ -n "$wanted" ]; then
  if [ -n "$builds_mpi4py" ]; then
    echo "requirements_node.txt names mpi4py: building it from source against this node's Open MPI (minutes, on every new node; leave mpi4py out to use the distribution's python3-mpi4py, ready in seconds)."
  fi
  echo "Installing Python packages from requirements_node.txt..."
  # mpirun starts `python3` on every node, so the packages go to that Python: a virtualenv's when
  # python3 is one (the emulator's pools), else the system's. Ubuntu marks the system's externally
  # managed; a Batch node is a throwaway VM that only runs this job, so installing there is what we want.
  if in_virtualenv; then
    python3 -m pip install --quiet --no-binary mpi4py -r "$requirements"
  else
    $sudo env PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --no-binary mpi4py -r "$requirements"
  fi
fi

installed || { echo "install.sh: MPI or Python packages still missing after install" >&2; exit 1; }
mpi4py_from="$(python3 -c 'import mpi4py, os; print(mpi4py.__version__, "from", os.path.dirname(mpi4py.__file__))')"
# Which MPI: Open MPI's first line names it ("mpirun (Open MPI) 4.1.4"); MPICH's says only "HYDRA build
# details:", its version on the next line.
# The whole output, not `| head`: under pipefail, mpirun killed by SIGPIPE would end this script (exit 141).
mpi_version="$(mpirun --version 2>/dev/null || true)"
case "$mpi_version" in
  HYDRA*) mpi_name="mpirun (MPICH) $(printf '%s\n' "$mpi_version" | sed -n 's/^ *Version: *//p' | sed -n 1p)" ;;
  *) mpi_name="${mpi_version%%$'\n'*}" ;;
esac
echo "MPI ready: $mpi_name; mpi4py $mpi4py_from."
