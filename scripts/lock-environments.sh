#!/usr/bin/env bash
# Resolves the top-level pins (.in files) into hash-locked files with uv, a maintained locker: every package at an
# exact version with the sha256 of its wheel.
#   hub, user, kernel, conda/base, conda/extra, conda/tools: environments/<name>.in -> environments/<name>.lock.txt,
#       for the hosts' interpreter (CPython 3.11 on Linux x86_64, Debian 12: glibc 2.36), wheels only
#   dev: requirements-dev.in -> requirements-dev.txt, the controller's tools (bootstrap.sh installs it)
# Run it on a connected machine when a .in file changes (no argument: all of them), and commit the result;
# build-wheelhouse.sh and bootstrap.sh then fetch exactly these files. uv keeps the versions already in a lock
# unless the .in file asks otherwise (`--upgrade-package NAME` through UV_ARGS moves one on purpose).
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(hub user kernel conda/base conda/extra conda/tools dev)
compile() { # name, .in, lock, extra uv options...
  local name=$1 in=$2 out=$3
  shift 3
  # shellcheck disable=SC2086
  "$uv" pip compile --quiet --generate-hashes --python-version 3.11 --only-binary :all: \
    --custom-compile-command "scripts/lock-environments.sh $name" "$@" ${UV_ARGS:-} "$in" -o "$out"
  echo "locked $out ($(grep -c '^[A-Za-z0-9].*==' "$out") packages)"
}
for t in "${targets[@]}"; do
  case $t in
    dev) compile dev requirements-dev.in requirements-dev.txt ;;
    # pip, setuptools and wheel come with the environment (venv, conda) and stay out of the locks, as before.
    *) compile "$t" "environments/$t.in" "environments/$t.lock.txt" --python-platform x86_64-manylinux_2_36 \
      --no-emit-package pip --no-emit-package setuptools --no-emit-package wheel ;;
  esac
done
