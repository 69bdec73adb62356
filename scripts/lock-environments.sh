#!/usr/bin/env bash
# Resolves environments/<name>.in into environments/<name>.lock.txt: every package at an exact version with the
# sha256 of its wheel, for the target interpreter (Debian 12's /usr/bin/python3). Run it on a connected machine
# when a .in file changes, and commit the result; build-wheelhouse.sh then fetches exactly these files.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${JUPYTERHUB_HPC_TARGET_PYTHON:-/usr/bin/python3}
envs=("$@"); [ ${#envs[@]} -gt 0 ] || envs=(hub user)

for env in "${envs[@]}"; do
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$PY" -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" install -q --disable-pip-version-check --only-binary=:all: -r "environments/$env.in" 2>&1 | { grep -v '^WARNING: Location' || true; }
  "$tmp/venv/bin/pip" freeze --all --exclude pip --exclude setuptools --exclude wheel >"$tmp/frozen.txt"
  "$tmp/venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    -r "$tmp/frozen.txt" -d "$tmp/wheels" 2>&1 | { grep -v '^WARNING: Location' || true; }
  "$PY" scripts/hash_lock.py "environments/$env.in" "$tmp/frozen.txt" "$tmp/wheels" >"environments/$env.lock.txt"
  echo "locked environments/$env.lock.txt ($(grep -c '==' "environments/$env.lock.txt") packages)"
  rm -rf "$tmp"; trap - EXIT
done
