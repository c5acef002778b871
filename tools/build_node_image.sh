#!/usr/bin/env bash
# Builds the root filesystem the emulator's isolated nodes (--isolation netns) start from: what a Batch
# Ubuntu node has before its first task (bash, coreutils, python3, git, openssh-server, sudo,
# ca-certificates, the pool user _azbatch) and no MPI. Each node runs on a private overlayfs layer over
# it, so what install.sh installs on a node stays on that node (batch_emulator/README.md, Isolated nodes).
#
# Made with mmdebstrap from the Debian suite and package archive this machine's apt uses (its sources
# files are copied into the image), into IMAGE (default /var/cache/mpi-batch-toolkit/node-image, outside
# any checkout). Built once: a second run with the same recipe finds IMAGE/.node-image and does nothing.
# Run as root, from the repository root:  tools/build_node_image.sh [IMAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
image="${1:-/var/cache/mpi-batch-toolkit/node-image}"   # the emulator's --node-image default
if [ "$(id -u)" -ne 0 ]; then
  echo "build_node_image.sh: needs root (mmdebstrap's root mode); run it with sudo" >&2
  exit 2
fi
command -v mmdebstrap >/dev/null || { echo "build_node_image.sh: mmdebstrap not found: apt-get install mmdebstrap" >&2; exit 2; }
suite="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
[ -n "$suite" ] || { echo "build_node_image.sh: no VERSION_CODENAME in /etc/os-release: a Debian host is needed" >&2; exit 2; }
sources=()
for file in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
  if [ -s "$file" ]; then sources+=("$file"); fi
done
[ "${#sources[@]}" -gt 0 ] || { echo "build_node_image.sh: no apt sources on this machine" >&2; exit 2; }

# What a node has before its first task. The recipe's hash is the image's identity: change a package
# and the next run rebuilds.
packages="bash,coreutils,util-linux,procps,iproute2,python3,git,openssh-server,openssh-client,sudo,ca-certificates"
recipe="suite=$suite packages=$packages user=_azbatch version=1"
stamp="$image/.node-image"
if [ "$(cat "$stamp" 2>/dev/null)" = "$recipe" ]; then
  echo "Node image up to date: $image"
  exit 0
fi

exec 9>/var/lock/batch-node-image.lock   # one build at a time per machine
flock -w 1800 9
if [ "$(cat "$stamp" 2>/dev/null)" = "$recipe" ]; then echo "Node image up to date: $image"; exit 0; fi
mkdir -p "$(dirname "$image")"
build="$image.build-$$"
rm -rf "$build"
trap 'rm -rf "$build"' EXIT
echo "Building the node image [$suite] in $image (a few minutes, once)..."
# --skip=cleanup/apt/lists: a node's apt installs from these lists and the prefetched packages
# (tools/prefetch_node_packages.sh), with no route out. _azbatch: the pool's non-admin auto-user
# (tasks without elevation run as it), with a home of its own on every node.
mmdebstrap --quiet --variant=minbase --include="$packages" --skip=cleanup/apt/lists \
  --customize-hook='chroot "$1" useradd --create-home --shell /bin/bash --user-group _azbatch' \
  --customize-hook='chroot "$1" usermod -p "*" _azbatch' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  "$suite" "$build" "${sources[@]}"
# usermod -p '*': not locked, so sshd (UsePAM no) lets the intra-pool key in; host keys are made per node.
echo "$recipe" > "$build/.node-image"
rm -rf "$image.old"
if [ -e "$image" ]; then mv "$image" "$image.old"; fi   # nodes running on it keep their mount
mv "$build" "$image"
rm -rf "$image.old"
trap - EXIT
echo "Node image ready: $image ($(du -sh "$image" | cut -f1))"
