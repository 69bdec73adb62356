#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh Debian 12 or 13 machine, idempotently:
# Debian packages (Docker engine, debootstrap, Node/npm for the proxy bundle, Chromium for the browser tests), a running Docker daemon,
# the controller virtualenv (.venv, hash-locked requirements-dev.txt, and the project's package installed editable),
# the systemd base image, the offline wheelhouse + proxy bundle the hosts install from, and the local conda channel and
# installer (scripts/build-conda-channel.sh). Run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
command -v docker >/dev/null || need_pkgs+=(docker.io)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap debian-archive-keyring)
command -v npm >/dev/null || need_pkgs+=(npm)
command -v git >/dev/null || need_pkgs+=(git)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need_pkgs+=(python3 python3-venv)
command -v iptables >/dev/null || need_pkgs+=(iptables)
# The browser tests: Debian's Chromium (Playwright drives it; its own browser download is not used).
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
[ -x /usr/bin/chromedriver ] || need_pkgs+=(chromium-driver)
command -v fc-list >/dev/null || need_pkgs+=(fonts-dejavu-core fontconfig)
command -v shellcheck >/dev/null || need_pkgs+=(shellcheck)  # ansible-test sanity's shellcheck test (scripts/sanity.sh)
dpkg -s libpam-oath oathtool >/dev/null 2>&1 || need_pkgs+=(libpam-oath oathtool)  # tests/test_pam_unit.py: real PAM + pam_oath
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" ca-certificates >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting the Docker daemon"
  if [ -d /run/systemd/system ]; then
    systemctl start docker
  else
    # No init system (CI, containers): run dockerd in the background.
    nohup dockerd >/var/log/jupyterhub-hpc-dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/jupyterhub-hpc-dockerd.log" >&2; exit 1; }
fi

# The systemd image (Debian 13) is built in the background meanwhile: it waits on the archive, the rest on the CPU.
log "systemd image (Debian 13), in the background"
images_log=$(mktemp)
bash scripts/build-images.sh trixie >"$images_log" 2>&1 &
images_pid=$!

# The controller's Python: PYTHON if set, else python3 on PATH when it is 3.13 (Debian 13), else CPython 3.13 built
# once from Debian's source (scripts/build-python.sh: Debian 12's 3.11 is older than ansible-core 2.20 accepts, and
# requirements-dev.txt is locked for 3.13; docs/design.md says why it is built and not downloaded).
py313() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif py313 python3; then
  PY=python3
else
  log "the controller's CPython 3.13 (built once, then cached)"
  PY=$(bash scripts/build-python.sh controller)
fi
py313 "$PY" || { echo "bootstrap: $PY is not CPython 3.13 (requirements-dev.txt is locked for it)" >&2; exit 1; }
# A venv of another interpreter (an older checkout's 3.11) is made again.
if [ -x .venv/bin/python ] && ! py313 .venv/bin/python; then rm -rf .venv; fi
if [ ! -x .venv/bin/python ] || ! cmp -s requirements-dev.txt .venv/.requirements-dev.txt; then
  log "controller virtualenv (.venv)"
  "$PY" -m venv .venv
  # (the grep only hides pip's notes about this machine's unused extra index folders; pip's own exit status counts)
  # requirements-dev.txt is uv's lock (scripts/lock-environments.sh): every package, pip too, with its hashes.
  .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
  cp requirements-dev.txt .venv/.requirements-dev.txt
fi
# The project's own package (src/jupyterhub_hpc), editable: the unit tests and the Ansible filter plugin import it
# by name, from the sources as they are. Offline: setuptools from requirements-dev.txt, no build isolation, no index.
# Again when its metadata (pyproject.toml: entry points) changed or the venv's copy points at another checkout.
package_here() {
  .venv/bin/python -c 'import pathlib, sys, jupyterhub_hpc as p
sys.exit(pathlib.Path(p.__file__).resolve().parent != pathlib.Path("src/jupyterhub_hpc").resolve())' 2>/dev/null
}
if ! cmp -s pyproject.toml .venv/.pyproject.toml || ! package_here; then
  log "the project's package, editable (jupyterhub_hpc)"
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation --no-index -e . 2>&1 | { grep -v '^WARNING: Location' || true; }
  cp pyproject.toml .venv/.pyproject.toml
fi

log "offline wheelhouse and proxy bundle"
PIP=.venv/bin/pip bash scripts/build-wheelhouse.sh
# The conda scenario's channel and installer (python built from source: 3-5 minutes the first time, then cached).
log "local conda channel and installer"
PYTHON=$PY bash scripts/build-conda-channel.sh
log "systemd image (Debian 13)"
wait "$images_pid" || { cat "$images_log" >&2; echo "bootstrap: the image build failed" >&2; exit 1; }
cat "$images_log"; rm -f "$images_log"
