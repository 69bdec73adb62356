#!/usr/bin/env bash
# Builds, on the controller and with no conda download, what the conda backend of jupyter_env installs from
# (docs/conda.md), under build/conda/:
#   channel/ and channel.tar     a local conda channel (linux-64, noarch, repodata.json): `python` built here from
#                                Debian's CPython source, the kernel environment's packages converted from the SAME
#                                hash-locked lock as the venv backend (environments/kernel.lock.txt), an older tzdata
#                                (environments/conda/extra.lock.txt) and conda's own packages (environments/conda/)
#   conda-installer.sh(.sha256)  a Miniconda-style batch installer (`bash conda-installer.sh -b -p PREFIX`): conda
#                                24.7.1, as conda-lock vendors it, on that python
# Inputs: the package index (wheels and sdists by hash), Debian's archive (the python3.13 source package, through a
# private apt configuration: the system's sources are not touched) and Debian's build dependencies. Rebuilt only
# when an input changes (a stamp, as build-wheelhouse.sh); the compiled CPython is cached by its own inputs.
# The tools (py-rattler, conda-package-handling) live in a venv of their own, build/conda/tools.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${JUPYTERHUB_HPC_BUILD_DIR:-build}/conda
python=${PYTHON:-python3}
mkdir -p "$out"
out=$(cd "$out" && pwd)
log() { printf '==> build-conda-channel: %s\n' "$*"; }

# CPython 3.13.5 exactly as released: Debian's orig tarball of python3.13 (trixie), built by build-python.sh
# (which pins its sha256). The tools venv runs the same minor version (the controller's Python): wheels' markers are
# evaluated by it, and pycosat is compiled by it.
py_version=3.13.5
# The prefix CPython is built for, rewritten by conda at install time: long, so any real prefix fits (binary files
# are rewritten in place, null-padded).
placeholder=/opt/jupyterhub-hpc-conda-placeholder
while [ ${#placeholder} -lt 200 ]; do placeholder=${placeholder}_placehold; done
placeholder=${placeholder:0:200}

stamp=$({
  cat environments/kernel.lock.txt environments/conda/*.lock.txt environments/conda/sources.txt \
    scripts/build-conda-channel.sh scripts/conda_channel.py scripts/lock_platforms.py
} | sha256sum | cut -c1-16)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] && [ -f "$out/channel.tar" ] &&
  [ -f "$out/conda-installer.sh.sha256" ]; then
  echo "conda channel and installer are up to date ($out)"
  exit 0
fi
rm -f "$out/.stamp"

# The tools venv, again when its locks change.
tools=$out/tools
if ! cmp -s <(cat environments/conda/tools.lock.txt environments/conda/sources.txt) "$tools/.locks" 2>/dev/null; then
  log "tools venv ($tools)"
  rm -rf "$tools"
  "$python" -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check --require-hashes --no-deps \
    -r environments/conda/tools.lock.txt -r <(grep -E '^(wheel|setuptools)==' environments/conda/sources.txt) 2>&1 |
    { grep -v '^WARNING: Location' || true; }
  cat environments/conda/tools.lock.txt environments/conda/sources.txt >"$tools/.locks"
fi
helper() { nice "$tools/bin/python" scripts/conda_channel.py "$@"; }
"$tools/bin/python" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '${py_version%.*}'.split('.'))))" ||
  { echo "build-conda-channel: the tools venv's python is not ${py_version%.*} (set PYTHON to a CPython ${py_version%.*})" >&2; exit 1; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# CPython, cached by what makes it: the tarball, the flags, the placeholder.
py_key=$(printf '%s\n' "$py_version" "$placeholder" | cat - scripts/build-python.sh | sha256sum | cut -c1-16)
py_stage=$out/cache/cpython-$py_key
if [ ! -f "$py_stage/.done" ]; then
  rm -rf "$py_stage"
  bash scripts/build-python.sh stage "$py_version" "$placeholder" "$py_stage"
  touch "$py_stage/.done"
fi

log "packages"
# Every wheel and sdist by its hash, from the package index. The wheels are this python's (CPython 3.13, x86_64,
# glibc 2.28 or newer), whatever the controller's own: the kernel lock names 3.11's wheels too.
read -ra target <<<"$("$tools/bin/python" scripts/lock_platforms.py pip-flags "${py_version%.*}")"
for lock in environments/kernel.lock.txt environments/conda/base.lock.txt environments/conda/extra.lock.txt; do
  "$tools/bin/pip" download -q --disable-pip-version-check --no-deps --require-hashes "${target[@]}" \
    -r "$lock" -d "$tmp/wheels" 2>&1 | { grep -v '^WARNING: Location' || true; }
done
"$tools/bin/pip" download -q --disable-pip-version-check --no-deps --no-build-isolation --require-hashes \
  -r environments/conda/sources.txt -d "$tmp/sources" 2>&1 | { grep -v '^WARNING: Location' || true; }
"$tools/bin/pip" wheel -q --disable-pip-version-check --no-deps --no-build-isolation --no-index \
  "$tmp"/sources/pycosat-*.tar.gz -w "$tmp/wheels" 2>&1 | { grep -v '^WARNING: Location' || true; }

channel=$tmp/channel
cp -a "$py_stage" "$tmp/python"
helper python-package "$tmp/python" "$placeholder" "$py_version" "$channel" >/dev/null
helper wheels "$channel" "$placeholder" "$tmp"/wheels/*.whl >/dev/null
names() { grep -h '==' "$@" | sed 's/[= ].*//'; }
pins() { grep -h '==' "$@" | sed 's/ .*//'; }
# shellcheck disable=SC2046
helper conda "$tmp"/sources/conda_lock-*.whl "$channel" $(names environments/conda/base.lock.txt) pycosat >/dev/null
helper index "$channel"

log "installer"
rm -rf "$out/channel"
mv "$channel" "$out/channel"
# shellcheck disable=SC2046
helper installer "$out/channel" "$out/conda-installer.sh" "python==$py_version" conda==24.7.1 pycosat==0.6.6 \
  $(pins environments/conda/base.lock.txt) >"$out/installer-packages.txt"
(cd "$out" && sha256sum conda-installer.sh >conda-installer.sh.sha256)
tar --sort=name --mtime='@0' --owner=0 --group=0 --numeric-owner --format=gnu -C "$out/channel" -cf "$out/channel.tar" .

echo "$stamp" >"$out/.stamp"
echo "built $out/channel ($(find "$out/channel" -name '*.conda' | wc -l) packages, $(du -sh "$out/channel" | cut -f1))" \
  "and $out/conda-installer.sh ($(du -h "$out/conda-installer.sh" | cut -f1), sha256 $(cut -c1-16 "$out/conda-installer.sh.sha256")...)"
