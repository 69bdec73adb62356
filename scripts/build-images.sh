#!/usr/bin/env bash
# Builds the local systemd images used by the demo and Molecule, without any container registry:
# debootstrap a minimal Debian rootfs, `docker import` it, then `docker build` the systemd layer.
#   build-images.sh [SUITE...]   trixie (Debian 13, the primary platform: the demo and most scenarios) when none is
#                                given; bookworm (Debian 12) for the second platform's scenario
# Each image is jupyterhub-hpc/systemd:SUITE. Rebuilt only when images/ or this script change (a second tag is a
# hash of both and the suite).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${JUPYTERHUB_HPC_IMAGE:-jupyterhub-hpc/systemd}
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(trixie)

# The Debian mirror this machine's apt already uses (so no host name is written here). The $(...) are apt's fields.
# shellcheck disable=SC2016
mirror=$(apt-get indextargets --format '$(REPO_URI) $(ORIGIN)' 2>/dev/null \
           | awk '$2 == "Debian" && $1 !~ /security/ {print $1; exit}' || true)
if [ -z "$mirror" ]; then
  mirror=$(grep -rhoE '^(deb|URIs:)\s+\S+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
             | awk '{print $2}' | grep -E '/debian/?$' | head -n1)
fi

for suite in "${suites[@]}"; do
  case $suite in trixie | bookworm) ;; *) echo "build-images: unknown suite $suite (trixie, bookworm)" >&2; exit 2 ;; esac
  hash=$({ echo "$suite"; cat scripts/build-images.sh images/systemd/Dockerfile; } | sha256sum | cut -c1-12)
  # The debootstrap base depends on this script only: a Dockerfile change rebuilds the layer, not the rootfs.
  base="jupyterhub-hpc/${suite}-minbase:$(sha256sum scripts/build-images.sh | cut -c1-12)"
  if docker image inspect "${IMAGE}:${suite}-${hash}" >/dev/null 2>&1; then
    docker tag "${IMAGE}:${suite}-${hash}" "${IMAGE}:${suite}"
    echo "image ${IMAGE}:${suite} (${hash}) is up to date"
    continue
  fi
  [ -n "$mirror" ] || { echo "build-images: cannot find a Debian mirror in apt's sources" >&2; exit 1; }
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    rootfs=$(mktemp -d /var/tmp/jupyterhub-hpc-rootfs.XXXXXX)
    echo "debootstrap ${suite}"
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"/var/tmp/jupyterhub-hpc-debootstrap-$suite.log" 2>&1 \
      || { tail -n 30 "/var/tmp/jupyterhub-hpc-debootstrap-$suite.log" >&2; rm -rf "$rootfs"; exit 1; }
    tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
    rm -rf "$rootfs"
  fi
  docker build -q --build-arg "BASE=${base}" -t "${IMAGE}:${suite}-${hash}" images/systemd >/dev/null
  docker tag "${IMAGE}:${suite}-${hash}" "${IMAGE}:${suite}"
  echo "built ${IMAGE}:${suite} (${hash})"
done
