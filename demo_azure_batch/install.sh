#!/usr/bin/env bash
# Installs what script.py needs on a node: Open MPI and the Python packages of
# requirements_node.txt. Run by the job preparation task (admin auto-user) on
# each Ubuntu 24.04 node before its first task; safe to run again (after a
# reboot, or on a machine that already has everything: then it installs nothing).
#   ./install.sh --list-apt-packages   prints the apt packages it installs (for a prefetch)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/requirements_node.txt"
apt_packages="openmpi-bin libopenmpi-dev python3-pip python3-dev build-essential"
if [ "${1:-}" = "--list-apt-packages" ]; then echo "$apt_packages"; exit 0; fi
if [ ! -f "$requirements" ]; then
  echo "demo_azure_batch/requirements_node.txt not found in the clone of REPOSITORY_URL: add it next to install.sh (one pinned package a line, e.g. mpi4py==4.1.2; see the README, Run your own program)" >&2
  exit 3
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# True when python3 already has every pinned package at its pinned version.
requirements_met() {
  python3 - "$requirements" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
for line in open(sys.argv[1]):
    name, _, wanted = line.split("#")[0].strip().partition("==")
    if not name:
        continue
    try:
        if version(name.strip()) != wanted.strip():
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

installed() { command -v mpirun >/dev/null 2>&1 && requirements_met; }

if installed; then
  echo "MPI and the Python packages are already installed: nothing to do."
  exit 0
fi

# One install at a time per machine. apt's lists lock makes a second `apt-get update` fail at
# once (DPkg::Lock::Timeout covers only dpkg's lock), and two pips building into one
# site-packages would race. On Azure this guards against the node's own apt jobs; on the
# emulator's isolated nodes, which share this machine's disk, against the other nodes.
lock=/var/lock/batch-node-install.lock
if [ -n "$sudo" ]; then lock="${TMPDIR:-/tmp}/batch-node-install-$(id -u).lock"; fi
exec 9>"$lock"
flock -w 1800 9 || { echo "install.sh: waited 30 minutes for $lock; is another install stuck?" >&2; exit 1; }
if installed; then
  echo "Installed meanwhile by another run: nothing to do."
  exit 0
fi

if ! command -v mpirun >/dev/null 2>&1 || ! command -v mpicc >/dev/null 2>&1; then
  echo "Installing Open MPI..."
  # A package list refresh that fails (no route out, a mirror down) is not fatal: apt installs
  # from the lists and the downloaded packages already there, or fails below saying what is missing.
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -q \
    || echo "install.sh: apt-get update failed; installing from the package lists already on this machine" >&2
  # shellcheck disable=SC2086  # one word per package
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
    --no-install-recommends $apt_packages
fi

echo "Installing Python packages from requirements_node.txt..."
# mpirun starts `python3` on every node, so the packages go to that Python.
# Ubuntu marks it externally managed; a Batch node is a throwaway VM that only
# runs this job, so installing there is what we want. mpi4py is built from
# source so that it uses the node's Open MPI.
$sudo env PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --no-binary mpi4py -r "$requirements"

requirements_met || { echo "install.sh: packages still missing after install" >&2; exit 1; }
echo "MPI $(mpirun --version 2>/dev/null | head -n 1) and Python packages ready."
