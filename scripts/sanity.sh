#!/usr/bin/env bash
# ansible-test sanity on the collection. ansible-test wants the collection at .../ansible_collections/<namespace>/<name>/
# (galaxy.yml's), so this copies the tracked files (git ls-files: nothing gitignored, no build/ or .venv) into such a
# tree in a temporary directory and runs the tests there, each in its own virtualenv of pinned requirements
# (--venv; ansible-test keeps them in ~/.ansible/test/venv, so only a first run installs them), for the Python that runs
# ansible-test. Exits non-zero if any test fails. Arguments go to ansible-test (e.g. --test pep8).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# ansible-test from the active virtualenv (scripts/test.sh activates .venv), else the checkout's .venv.
ansible_test=$(command -v ansible-test || echo "$root/.venv/bin/ansible-test")
python="$(dirname "$ansible_test")/python"
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# ansible-test skips its shellcheck test, with only a warning, where there is no shellcheck: refuse instead.
command -v shellcheck >/dev/null || { echo "no shellcheck: ansible-test would skip its test (apt-get install shellcheck)" >&2; exit 1; }
collection=$("$python" -c '
import yaml
galaxy = yaml.safe_load(open("galaxy.yml"))
print(galaxy["namespace"], galaxy["name"])')
read -r namespace name <<<"$collection"

# ansible-test puts pip into each new virtualenv with a get-pip.py that it downloads from Ansible's CI file server into
# its cache (~/.ansible/test/cache); the project's machines reach the package index but not that server. Where the
# cache has none, scripts/ansible_test_get_pip.py goes there: it installs the same pinned pip from the package index.
pip_version=$("$python" -c '
import sys, types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])' "$version")
get_pip="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [[ ! -e $get_pip ]]; then
  echo "ansible-test's cache has no get-pip.py for pip $pip_version: $get_pip is scripts/ansible_test_get_pip.py"
  mkdir -p "$(dirname "$get_pip")"
  cp scripts/ansible_test_get_pip.py "$get_pip.tmp"
  mv "$get_pip.tmp" "$get_pip"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree="$work/ansible_collections/$namespace/$name"
mkdir -p "$tree"
# The tracked files as they are in the work tree (symbolic links as links), those deleted but not yet committed left out.
git ls-files -z | while IFS= read -r -d '' f; do if [[ -e $f || -L $f ]]; then printf '%s\0' "$f"; fi; done \
  | tar --null -T - -cf - | tar -xf - -C "$tree"
# A git repository (nothing committed): ansible-test then tests exactly the files git lists, and sees a symbolic link to a
# directory as one (without git it walks the tree and misses those). tests/output/ is ansible-test's own (its virtualenv).
git -C "$tree" init -q
echo "/tests/output/" >>"$tree/.git/info/exclude"

cmd=("$ansible_test" sanity --venv --python "$version" --color no "$@")
echo "ansible-test $("$ansible_test" --version | awk '{print $NF}'), Python $version, in $tree"
echo "+ ${cmd[*]}"
cd "$tree"
"${cmd[@]}"
