#!/usr/bin/env bash
# Builds CPython from Debian's source package, on the controller, and prints where it is installed.
#   build-python.sh controller   CPython 3.13.5 (trixie's python3.13, as released) installed under
#                                ${JUPYTERHUB_HPC_CACHE:-/var/cache/jupyterhub-hpc}/python-3.13.5-<key>: the controller's
#                                interpreter where the machine's own python3 is older than ansible-core 2.20 accepts
#                                (Debian 12's 3.11; docs/design.md says why it is built and not downloaded)
#   build-python.sh stage VERSION PREFIX DEST
#                                CPython VERSION built for PREFIX and installed into DEST (make install DESTDIR=DEST):
#                                the conda channel's python (scripts/build-conda-channel.sh)
# Debian's orig tarball is the release tarball; its sha256 is pinned below, so the mirror is trusted for nothing.
# The system's apt sources are only read (for the mirror's address); the deb-src line lives in a private apt
# configuration. JUPYTERHUB_HPC_DEBIAN_MIRROR overrides the mirror. Cached by its inputs: a second run prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '==> build-python: %s\n' "$*" >&2; }

# version -> Debian suite, source package, sha256 of the orig tarball
declare -A suite=([3.11.2]=bookworm [3.13.5]=trixie)
declare -A sha=([3.11.2]=2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849
  [3.13.5]=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640)
# The conda package gets pip from the channel; the controller keeps the pip bundled in the source (venv needs it).
configure_flags=(--disable-test-modules)
build_deps=(build-essential libssl-dev libffi-dev zlib1g-dev libsqlite3-dev libbz2-dev liblzma-dev libreadline-dev
  uuid-dev libncurses-dev)

build() { # version prefix destdir [configure flags...]: configure --prefix=prefix, make, make install DESTDIR=destdir
  local version=$1 prefix=$2 dest=$3 minor=${1%.*}
  shift 3
  [ -n "${sha[$version]:-}" ] || { echo "build-python: no pinned source for CPython $version" >&2; exit 1; }
  local missing=() pkg
  for pkg in "${build_deps[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  local tmp; tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  local src_suite=${suite[$version]} host_suite mirror apt
  # shellcheck disable=SC1091
  host_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  mirror=${JUPYTERHUB_HPC_DEBIAN_MIRROR:-$(apt-cache policy | awk -v s="$host_suite/main" '$3 == s {print $2; exit}')}
  [ -n "$mirror" ] || { echo "build-python: no Debian mirror in apt's sources; set JUPYTERHUB_HPC_DEBIAN_MIRROR" >&2; exit 1; }
  apt=$tmp/apt
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/parts" "$tmp/src" "$tmp/cpython"
  echo "deb-src $mirror $src_suite main" >"$apt/sources.list"
  local aptopts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/parts"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt" -o "Dir::Cache::archives=$apt/archives"
    -o "APT::Sandbox::User=root" -qq)
  apt-get "${aptopts[@]}" update
  (cd "$tmp/src" && apt-get "${aptopts[@]}" source --download-only "python$minor" >/dev/null)
  local orig; orig=$(find "$tmp/src" -maxdepth 1 -name "python${minor}_${version}.orig.tar.*" ! -name '*.asc')
  echo "${sha[$version]}  $orig" | sha256sum -c --strict --quiet - ||
    { echo "build-python: $orig is not CPython $version as pinned" >&2; exit 1; }
  tar -xf "$orig" -C "$tmp/cpython" --strip-components=1
  log "CPython $version from Debian's python$minor source package ($src_suite; 3-5 minutes on 2 cores)"
  (
    cd "$tmp/cpython"
    nice ./configure -q --prefix="$prefix" "${configure_flags[@]}" "$@" >"$tmp/configure.log" 2>&1 ||
      { tail -30 "$tmp/configure.log" >&2; exit 1; }
    nice make -j"$(nproc)" -s >"$tmp/make.log" 2>&1 || { tail -30 "$tmp/make.log" >&2; exit 1; }
    nice make -s install DESTDIR="$dest" >"$tmp/install.log" 2>&1 || { tail -30 "$tmp/install.log" >&2; exit 1; }
  )
}

case ${1:-} in
  controller)
    version=3.13.5
    key=$(printf '%s\n' "${sha[$version]}" "${configure_flags[*]}" | sha256sum | cut -c1-12)
    prefix=${JUPYTERHUB_HPC_CACHE:-/var/cache/jupyterhub-hpc}/python-$version-$key
    if [ ! -f "$prefix/.done" ]; then
      rm -rf "$prefix"
      build "$version" "$prefix" /
      "$prefix/bin/python3" -c 'import ssl, sqlite3, ctypes, venv, ensurepip, lzma, bz2, readline' ||
        { echo "build-python: $prefix lacks a module the controller needs" >&2; exit 1; }
      touch "$prefix/.done"
    fi
    echo "$prefix/bin/python3"
    ;;
  stage)
    [ $# -eq 4 ] || { echo "usage: build-python.sh stage VERSION PREFIX DEST" >&2; exit 2; }
    build "$2" "$3" "$4" --without-ensurepip
    ;;
  *) echo "usage: build-python.sh controller | stage VERSION PREFIX DEST" >&2; exit 2 ;;
esac
