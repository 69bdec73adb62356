#!/usr/bin/env bash
# Resolves the top-level pins (.in files) into hash-locked files with uv, a maintained locker: every package at an
# exact version with the sha256 of its wheels.
#   hub, user, kernel: environments/<name>.in -> environments/<name>.lock.txt, for the hosts: ONE lock for both of
#       their interpreters, CPython 3.13 (Debian 13, the primary platform) and 3.11 (Debian 12), on x86_64 Linux
#       with glibc 2.28 or newer (EL 8 too), wheels only, manylinux_2_28 or older. uv resolves for 3.11 and glibc
#       2.28, then scripts/lock_platforms.py checks that 3.13 needs nothing else within those pins and writes, for
#       each package, the hashes of the wheel pip picks for each Python (what build-wheelhouse.sh downloads).
#   conda/base, conda/extra: for the conda channel's own python (CPython 3.13.5, scripts/build-conda-channel.sh),
#       glibc 2.28 too; conda/tools: the tools venv of build-conda-channel.sh, on the controller's Python (3.13 or
#       3.11): pins resolved for 3.11, hashes for both
#   dev: requirements-dev.in -> requirements-dev.txt, the controller's tools (bootstrap.sh installs it), for the
#       controller's Python, CPython 3.13 on x86_64 Linux (Debian 12 or 13: glibc 2.36 or newer)
# Run it on a connected machine when a .in file changes (no argument: all of them), and commit the result;
# build-wheelhouse.sh and bootstrap.sh then fetch exactly these files. uv keeps the versions already in a lock
# unless the .in file asks otherwise (`--upgrade-package NAME` through UV_ARGS moves one on purpose).
# tests/test_locks_platforms.py checks that each host lock installs as it is on both Pythons.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
# uv resolves for a --python-version it need not have: it must not try to download that interpreter.
export UV_PYTHON_DOWNLOADS=never
python=${PYTHON:-.venv/bin/python}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(hub user kernel conda/base conda/extra conda/tools dev)
compile() { # name, .in, lock, extra uv options...
  local name=$1 in=$2 out=$3
  shift 3
  # shellcheck disable=SC2086
  "$uv" pip compile --quiet --generate-hashes --only-binary :all: \
    --custom-compile-command "scripts/lock-environments.sh $name" "$@" ${UV_ARGS:-} "$in" -o "$out"
  echo "locked $out ($(grep -c '^[A-Za-z0-9].*==' "$out") packages)"
}
# pip, setuptools and wheel come with the environment (venv, conda) and stay out of the host locks, as before.
host=(--python-version 3.11 --python-platform "$("$python" scripts/lock_platforms.py uv-platform)"
  --no-emit-package pip --no-emit-package setuptools --no-emit-package wheel)
for t in "${targets[@]}"; do
  case $t in
    dev) compile dev requirements-dev.in requirements-dev.txt --python-version 3.13 \
      --python-platform x86_64-manylinux_2_36 ;;
    conda/base | conda/extra)
      compile "$t" "environments/$t.in" "environments/$t.lock.txt" --python-version 3.13 "${host[@]:2}"
      "$python" scripts/lock_platforms.py hashes "environments/$t.lock.txt" --python 3.13 ;;
    conda/tools)
      compile "$t" "environments/$t.in" "environments/$t.lock.txt" "${host[@]}"
      "$python" scripts/lock_platforms.py hashes "environments/$t.lock.txt" --python 3.11 --python 3.13 \
        --in "environments/$t.in" --uv "$uv" ;;
    *)
      compile "$t" "environments/$t.in" "environments/$t.lock.txt" "${host[@]}"
      "$python" scripts/lock_platforms.py hashes "environments/$t.lock.txt" --in "environments/$t.in" --uv "$uv" ;;
  esac
done
