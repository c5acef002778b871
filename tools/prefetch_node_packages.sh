#!/usr/bin/env bash
# Downloads on this machine what demo_azure_batch/install.sh would download on a node, for the
# emulator's isolated nodes (--isolation netns), which have no route out of the machine:
#   - the .deb files of install.sh's apt packages, into apt's cache (/var/cache/apt/archives),
#     with the package lists (apt-get update), so apt-get install works offline in a node;
#   - requirements_node.txt as source (mpi4py is built on the node against its Open MPI) and
#     the packages that build needs, into a wheelhouse (default /var/cache/mpi-batch-toolkit/node-packages, outside
#     any checkout: a node sees neither /tmp nor a directory other users cannot enter), which the
#     emulator gives the nodes' pip (PIP_FIND_LINKS, PIP_NO_INDEX).
# Run as root, from the repository root:  tools/prefetch_node_packages.sh [WHEELHOUSE]
# PYTHON (default /usr/bin/python3, the nodes' python3) is the interpreter whose pip downloads: the
# build's binary wheels (Cython) must fit the nodes' Python.
set -euo pipefail
cd "$(dirname "$0")/.."
wheelhouse="${1:-/var/cache/mpi-batch-toolkit/node-packages}"   # the emulator's --node-packages default
if [ "$(id -u)" -ne 0 ]; then
  echo "prefetch_node_packages.sh: needs root (apt's cache); run it with sudo" >&2
  exit 2
fi
packages=$(demo_azure_batch/install.sh --list-apt-packages)
exec 9>/var/lock/batch-node-install.lock   # not while an isolated node's install.sh runs
flock -w 1800 9
apt-get update -q
# --reinstall: also fetch the .deb of a package installed here, so a node can install it after a purge.
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install --download-only --reinstall -y -q --no-install-recommends $packages
mkdir -p "$wheelhouse"
"${PYTHON:-/usr/bin/python3}" -m pip download --quiet --disable-pip-version-check --no-binary mpi4py \
  -r demo_azure_batch/requirements_node.txt -d "$wheelhouse"
# What pip needs to build mpi4py's source on a node with no index: its build-system requirements
# and the backend's own (mpi4py 4.1.2 asks for cython>=3.0.1 when building from source).
"${PYTHON:-/usr/bin/python3}" -m pip download --quiet --disable-pip-version-check --only-binary :all: \
  "setuptools>=42" build wheel "cython>=3.0.1" -d "$wheelhouse"
chmod -R a+rX "$wheelhouse"
echo "Node packages ready: apt cache ($packages) and $wheelhouse ($(ls "$wheelhouse" | wc -l) files)"
