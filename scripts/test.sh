#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: set-up, lint, unit tests, Molecule scenarios.
# Exits non-zero on the first failure. .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_CONFIG="$PWD/ansible.cfg" PY_COLORS=0 ANSIBLE_FORCE_COLOR=0 NO_COLOR=1
SECONDS=0
phase() { printf '\n==> [%4ss] %s\n' "$SECONDS" "$*"; }

phase "bootstrap"
bash scripts/bootstrap.sh
# shellcheck disable=SC1091
source .venv/bin/activate

phase "lint: ansible-lint (production profile), ruff, mypy"
ansible-lint --offline -q
ruff check .
ruff format --check .
mypy

phase "unit tests (pytest)"
pytest -q tests

scenarios=${MOLECULE_SCENARIOS:-$(cd molecule && for d in */molecule.yml; do dirname "$d"; done)}
for s in $scenarios; do
  phase "molecule test -s $s"
  # phase_times.py passes the output through and ends with how long each action (check, converge, ...) took.
  molecule test -s "$s" 2>&1 | python scripts/phase_times.py
done
phase "all tests passed"
