#!/usr/bin/env bash
# Builds the local systemd image used by the demo and Molecule, without any container registry:
# debootstrap a minimal Debian 12 rootfs, `docker import` it, then `docker build` the systemd layer.
# Rebuilds only when images/ or this script change (the tag is a hash of both).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${JUPYTERHUB_HPC_IMAGE:-jupyterhub-hpc/systemd}
hash=$(cat scripts/build-images.sh images/systemd/Dockerfile | sha256sum | cut -c1-12)
# The debootstrap base depends on this script only: a Dockerfile change rebuilds the layer, not the rootfs.
base="jupyterhub-hpc/bookworm-minbase:$(sha256sum scripts/build-images.sh | cut -c1-12)"

if docker image inspect "${IMAGE}:${hash}" >/dev/null 2>&1; then
  docker tag "${IMAGE}:${hash}" "${IMAGE}:latest"
  echo "image ${IMAGE}:${hash} is up to date"
  exit 0
fi

# The Debian mirror this machine's apt already uses (so no host name is written here). The $(...) are apt's fields.
# shellcheck disable=SC2016
mirror=$(apt-get indextargets --format '$(REPO_URI) $(ORIGIN)' 2>/dev/null \
           | awk '$2 == "Debian" && $1 !~ /security/ {print $1; exit}' || true)
if [ -z "$mirror" ]; then
  mirror=$(grep -rhoE '^(deb|URIs:)\s+\S+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
             | awk '{print $2}' | grep -E '/debian/?$' | head -n1)
fi
[ -n "$mirror" ] || { echo "build-images: cannot find a Debian mirror in apt's sources" >&2; exit 1; }

if ! docker image inspect "$base" >/dev/null 2>&1; then
  rootfs=$(mktemp -d /var/tmp/jupyterhub-hpc-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  echo "debootstrap bookworm from ${mirror}"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/var/tmp/jupyterhub-hpc-debootstrap.log 2>&1 \
    || { tail -n 30 /var/tmp/jupyterhub-hpc-debootstrap.log >&2; exit 1; }
  tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
fi
docker build -q --build-arg "BASE=${base}" -t "${IMAGE}:${hash}" images/systemd >/dev/null
docker tag "${IMAGE}:${hash}" "${IMAGE}:latest"
echo "built ${IMAGE}:${hash}"
