#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 (or 13) machine: set-up, lint, unit tests, Molecule scenarios.
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

# The second platform's image (Debian 12, for the conda scenario), built while lint and unit tests run.
bookworm_log=$(mktemp)
bash scripts/build-images.sh bookworm >"$bookworm_log" 2>&1 &
bookworm_pid=$!

phase "lint: ansible-lint (production profile), ruff, mypy"
ansible-lint --offline -q
ruff check .
ruff format --check .
mypy

phase "ansible-test sanity"
bash scripts/sanity.sh

# The unit tests run beside the first scenario's set-up (create, prepare, check, converge: Ansible waiting on
# containers more than computing), niced so that the scenario keeps the CPU it needs: about 6 minutes saved on 2
# cores. Their result is waited for (and printed) after the first scenario, and fails the run like any phase.
phase "unit tests (pytest), beside the first Molecule scenario"
unit_log=$(mktemp)
nice -n 10 pytest -q tests >"$unit_log" 2>&1 &
unit_pid=$!
unit_done=false
unit_result() {
  "$unit_done" && return 0
  unit_done=true
  phase "unit tests (pytest): result"
  if wait "$unit_pid"; then cat "$unit_log"; else cat "$unit_log"; echo "test.sh: the unit tests failed" >&2; return 1; fi
}
# A scenario that fails still shows the unit tests' result.
trap 'unit_result || true' EXIT

# CI runs "default" (every step of the standalone fault and browser scenarios runs inside it, on one converge),
# "conda" (the conda backend end to end, on Debian 12: the second platform) and "narval" (a reference cluster's shapes: its GPUs and MIG slices);
# MOLECULE_SCENARIOS="a b" picks others, "all" runs every scenario.
all_scenarios=$(cd molecule && for d in */molecule.yml; do dirname "$d"; done)
case "${MOLECULE_SCENARIOS:-default conda narval}" in
  all) scenarios=$all_scenarios ;;
  *) scenarios=${MOLECULE_SCENARIOS:-default conda narval} ;;
esac
phase "the Debian 12 image"
wait "$bookworm_pid" || { cat "$bookworm_log" >&2; echo "test.sh: the Debian 12 image did not build" >&2; exit 1; }
cat "$bookworm_log"
for s in $scenarios; do
  phase "molecule test -s $s"
  # phase_times.py passes the output through and ends with how long each action (check, converge, ...) took.
  molecule test -s "$s" 2>&1 | python scripts/phase_times.py
  unit_result
done
unit_result
for s in $all_scenarios; do
  case " $scenarios " in *" $s "*) ;; *)
    case $s in
      # Their own hosts and a Slurm of a reference cluster's shapes: nothing of them runs inside 'default'.
      fir) why="Fir's shapes: the same tests as Narval's, which CI runs (CI stays under 60 minutes on 2 cores)" ;;
      narval) why="a reference cluster's shapes" ;;
      *) why="its steps run inside 'default'" ;;
    esac
    echo "==> NOT RUN: molecule scenario $s ($why; run it alone: molecule test -s $s)" ;;
  esac
done
phase "all tests passed"
