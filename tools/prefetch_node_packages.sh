#!/usr/bin/env bash
# Downloads on this machine what demo_azure_batch/install.sh downloads on a node, for the emulator's
# isolated nodes (--isolation netns), which have no route out of the machine:
#   - the node image first (tools/build_node_image.sh: made once, cached);
#   - the .deb files of every apt package install.sh may install, into the image's own apt cache
#     (resolved against the image, so what a fresh node lacks is there); each node's apt installs
#     from it into that node's layer only;
#   - the Python packages of demo_azure_batch/requirements_node.txt and of each --requirements
#     file (your own program's), into a wheelhouse (default /var/cache/mpi-batch-toolkit/node-packages,
#     outside any checkout), which the emulator shows the nodes read-only and gives their pip
#     (PIP_FIND_LINKS, PIP_NO_INDEX). mpi4py, when named, comes as source with what its build needs.
# Nothing is installed on this machine.
# Run as root, from the repository root:
#   tools/prefetch_node_packages.sh [--requirements PATH]... [--image DIR] [WHEELHOUSE]
# PYTHON (default /usr/bin/python3, the same Python as the image's) is the interpreter whose pip downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: tools/prefetch_node_packages.sh [--requirements PATH]... [--image DIR] [WHEELHOUSE]"
image=/var/cache/mpi-batch-toolkit/node-image   # the emulator's --node-image default
requirements=(demo_azure_batch/requirements_node.txt)
wheelhouse=""
while [ $# -gt 0 ]; do
  case "$1" in
    --requirements)
      [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
      [ -f "$2" ] || { echo "prefetch_node_packages.sh: --requirements $2: no such file" >&2; exit 2; }
      requirements+=("$2"); shift 2 ;;
    --image)
      [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
      image="$2"; shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    -*) echo "prefetch_node_packages.sh: unknown option $1; $usage" >&2; exit 2 ;;
    *) wheelhouse="$1"; shift ;;
  esac
done
wheelhouse="${wheelhouse:-/var/cache/mpi-batch-toolkit/node-packages}"   # the emulator's --node-packages default
if [ "$(id -u)" -ne 0 ]; then
  echo "prefetch_node_packages.sh: needs root (the node image's apt); run it with sudo" >&2
  exit 2
fi
tools/build_node_image.sh "$image"

packages=$(demo_azure_batch/install.sh --list-apt-packages)
exec 9>/var/lock/batch-node-image.lock   # not while the image is being built
flock -w 1800 9
cp /etc/resolv.conf "$image/etc/resolv.conf"   # the image's apt resolves names as this machine does
chroot "$image" apt-get update -q
# shellcheck disable=SC2086
chroot "$image" env DEBIAN_FRONTEND=noninteractive apt-get install --download-only -y -q --no-install-recommends $packages

mkdir -p "$wheelhouse"
python="${PYTHON:-/usr/bin/python3}"
for file in "${requirements[@]}"; do
  if ! sed -e 's/#.*//' "$file" | grep -q '[^[:space:]]'; then continue; fi   # only comments: nothing to fetch
  "$python" -m pip download --quiet --disable-pip-version-check --no-binary mpi4py -r "$file" -d "$wheelhouse"
done
# What pip needs to build mpi4py's source on a node with no index (requirements that name mpi4py):
# its build-system requirements and the backend's own (mpi4py 4.x asks for cython>=3.0.1).
"$python" -m pip download --quiet --disable-pip-version-check --only-binary :all: \
  "setuptools>=42" build wheel "cython>=3.0.1" -d "$wheelhouse"
chmod -R a+rX "$wheelhouse"
echo "Node packages ready: $image's apt cache ($packages) and $wheelhouse ($(ls "$wheelhouse" | wc -l) files)"
