#!/usr/bin/env bash
# Builds, on the controller and with no conda download, what the conda backend of jupyter_env installs from
# (docs/conda.md), under build/conda/:
#   channel/ and channel.tar     a local conda channel (linux-64, noarch, repodata.json): `python` built here from
#                                Debian's CPython source, the kernel environment's packages converted from the SAME
#                                hash-locked lock as the venv backend (environments/kernel.lock.txt), an older tzdata
#                                (environments/conda/extra.lock.txt) and conda's own packages (environments/conda/)
#   conda-installer.sh(.sha256)  a Miniconda-style batch installer (`bash conda-installer.sh -b -p PREFIX`): conda
#                                24.7.1, as conda-lock vendors it, on that python
# Inputs: the package index (wheels and sdists by hash), Debian's archive (the python3.11 source package, through a
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

# CPython 3.11.2 exactly as released: Debian's orig tarball of python3.11 (bookworm) is byte-identical to it.
py_version=3.11.2
py_orig_sha256=2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849
py_configure=(--without-ensurepip --disable-test-modules)
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

# Debian's packages that CPython's build needs (headers of the libraries its modules link).
build_deps=(build-essential libssl-dev libffi-dev zlib1g-dev libsqlite3-dev libbz2-dev liblzma-dev libreadline-dev
  uuid-dev libncurses-dev)
missing=()
for pkg in "${build_deps[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The tools venv, again when its locks change.
tools=$out/tools
if ! cmp -s <(cat environments/conda/tools.lock.txt environments/conda/sources.txt) "$tools/.locks" 2>/dev/null; then
  log "tools venv ($tools)"
  rm -rf "$tools"
  "$python" -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check --require-hashes --no-deps \
    -r environments/conda/tools.lock.txt -r <(grep '^wheel==' environments/conda/sources.txt) 2>&1 |
    { grep -v '^WARNING: Location' || true; }
  cat environments/conda/tools.lock.txt environments/conda/sources.txt >"$tools/.locks"
fi
helper() { nice "$tools/bin/python" scripts/conda_channel.py "$@"; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# CPython, cached by what makes it: the tarball, the flags, the placeholder.
py_key=$(printf '%s\n' "$py_orig_sha256" "${py_configure[*]}" "$placeholder" | sha256sum | cut -c1-16)
py_stage=$out/cache/cpython-$py_key
if [ ! -f "$py_stage/.done" ]; then
  log "CPython $py_version from Debian's python3.11 source package (2-4 minutes)"
  # A private apt configuration holding one deb-src line: the system's own sources (and its mirror, read from them)
  # are used read-only. JUPYTERHUB_HPC_DEBIAN_MIRROR overrides the mirror.
  suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  mirror=${JUPYTERHUB_HPC_DEBIAN_MIRROR:-$(apt-cache policy | awk -v s="$suite/main" '$3 == s {print $2; exit}')}
  [ -n "$mirror" ] || { echo "build-conda-channel: no Debian mirror for $suite/main in apt's sources; set JUPYTERHUB_HPC_DEBIAN_MIRROR" >&2; exit 1; }
  apt=$out/cache/apt
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/parts"
  echo "deb-src $mirror $suite main" >"$apt/sources.list"
  aptopts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/parts"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt" -o "Dir::Cache::archives=$apt/archives"
    -o "APT::Sandbox::User=root" -qq)
  apt-get "${aptopts[@]}" update
  mkdir -p "$tmp/src"
  (cd "$tmp/src" && apt-get "${aptopts[@]}" source --download-only "python3.11" >/dev/null)
  orig=$(ls "$tmp"/src/python3.11_"$py_version".orig.tar.*)
  echo "$py_orig_sha256  $orig" | sha256sum -c --quiet - ||
    { echo "build-conda-channel: $orig is not CPython $py_version as pinned" >&2; exit 1; }
  mkdir -p "$tmp/cpython"
  tar -xf "$orig" -C "$tmp/cpython" --strip-components=1
  rm -rf "$py_stage"
  (
    cd "$tmp/cpython"
    nice ./configure -q --prefix="$placeholder" "${py_configure[@]}" >"$tmp/configure.log" 2>&1 ||
      { tail -30 "$tmp/configure.log" >&2; exit 1; }
    nice make -j"$(nproc)" -s >"$tmp/make.log" 2>&1 || { tail -30 "$tmp/make.log" >&2; exit 1; }
    nice make -s install DESTDIR="$py_stage" >"$tmp/install.log" 2>&1 || { tail -30 "$tmp/install.log" >&2; exit 1; }
  )
  touch "$py_stage/.done"
fi

log "packages"
# Every wheel and sdist by its hash, from the package index. The wheels are this python's (CPython 3.11, x86_64,
# glibc 2.28 or newer), whatever the controller's own: the kernel lock names 3.13's wheels too.
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
