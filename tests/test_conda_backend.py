"""jupyter_env's conda backend, run by ansible-playbook on this machine against a stand-in conda that behaves as
conda 24.7.1 does where the role depends on it (its arguments, a failed solve, `env create --yes` over a
directory). The real conda runs in the Molecule scenario molecule/conda."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the role writes root-owned files")

# conda 24.7.1's behaviour: `env update` takes neither --offline nor --yes (argparse: "unrecognized arguments", exit
# 2); `env create --yes` deletes what stands at the prefix; a pin the channel lacks fails the solve (exit 1).
FAKE_CONDA = """#!{python}
import argparse, json, os, shutil, sys
import yaml
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(root, "calls.log"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
parser = argparse.ArgumentParser(prog="conda")
sub = parser.add_subparsers(dest="command", required=True)
listing = sub.add_parser("list")
listing.add_argument("--json", action="store_true")
listing.add_argument("--prefix", "-p", required=True)
env = sub.add_parser("env").add_subparsers(dest="env_command", required=True)
create = env.add_parser("create")
update = env.add_parser("update")
for p in (create, update):
    p.add_argument("--prefix", "-p", required=True)
    p.add_argument("--file", "-f", required=True)
create.add_argument("--offline", action="store_true")
create.add_argument("--yes", "-y", action="store_true")
update.add_argument("--prune", action="store_true")
args = parser.parse_args()
meta = os.path.join(args.prefix, "conda-meta")
if args.command == "list":
    with open(os.path.join(meta, "installed.json")) as f:
        print(json.dumps([{{"name": n, "version": v}} for n, v in sorted(json.load(f).items())]))
    sys.exit(0)
with open(os.path.join(root, "channel.json")) as f:
    channel = json.load(f)
with open(args.file) as f:
    specs = [d.replace("==", "=").split("=")[:2] for d in yaml.safe_load(f)["dependencies"]]
missing = [f"{{n}}={{v}}" for n, v in specs if v not in channel.get(n, [])]
if missing:
    print("\\nResolvePackageNotFound: \\n" + "".join(f"  - {{m}}\\n" for m in missing), file=sys.stderr)
    sys.exit(1)
if args.env_command == "create":
    if os.path.exists(args.prefix) and args.yes:
        shutil.rmtree(args.prefix)
    os.makedirs(meta)
    open(os.path.join(meta, "history"), "w").close()
    installed = {{}}
else:
    with open(os.path.join(meta, "installed.json")) as f:
        installed = {{}} if args.prune else json.load(f)
installed.update(dict(specs))
with open(os.path.join(meta, "installed.json"), "w") as f:
    json.dump(installed, f)
"""

INSTALLER = """#!/bin/bash
# A stand-in for a Miniconda installer: bash THIS -b -p PREFIX
set -eu
[ "$1" = -b ] && [ "$2" = -p ]
mkdir -p "$3/bin"
cat >"$3/bin/conda" <<'CONDA'
{conda}CONDA
chmod 0755 "$3/bin/conda"
"""

CHANNEL = {"python": ["3.11.2"], "ipykernel": ["7.4.0"], "tzdata": ["2025.2", "2026.6"], "comm": ["0.2.3"]}


class Site:
    """A conda prefix, an installer and one environment "shared" under a temporary directory."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.installer = tmp / "installer.sh"
        self.installer.write_text(INSTALLER.format(conda=FAKE_CONDA.format(python=sys.executable)))
        self.prefix = tmp / "opt" / "conda"
        self.env = tmp / "opt" / "shared"
        self.lock = tmp / "kernel.lock.txt"
        self.lock.write_text(
            "# a lock as scripts/lock-environments.sh writes them\n"
            "comm==0.2.3 --hash=sha256:00\nipykernel==7.4.0 --hash=sha256:00\ntzdata==2026.6 --hash=sha256:00\n"
        )
        self.packages = ["python=3.11.2"]

    def vars(self) -> dict[str, Any]:
        return {
            "jupyter_env_root": str(self.tmp / "opt"),
            "jupyter_env_wheelhouse_dir": str(self.tmp / "cache" / "wheelhouse"),
            "jupyter_env_conda_installer": str(self.installer),
            "jupyter_env_conda_installer_sha256": hashlib.sha256(self.installer.read_bytes()).hexdigest(),
            "jupyter_env_conda_prefix": str(self.prefix),
            "jupyter_env_conda_channels": ["file:///srv/conda-channel"],
            "jupyter_env_environments": {},
            "jupyter_env_extra_environments": {
                "shared": {"backend": "conda", "path": str(self.env), "lock": str(self.lock), "packages": self.packages}
            },
        }

    def converge(self) -> subprocess.CompletedProcess[str]:
        (self.tmp / "vars.json").write_text(json.dumps(self.vars()))
        return subprocess.run(
            [
                str(Path(sys.executable).parent / "ansible-playbook"),
                "tests/playbooks/conda_backend.yml",
                "-e",
                f"@{self.tmp / 'vars.json'}",
            ],
            cwd=ROOT,
            env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def installed(self) -> dict[str, str]:
        result: dict[str, str] = json.loads((self.env / "conda-meta" / "installed.json").read_text())
        return result

    def calls(self) -> list[list[str]]:
        log = self.prefix / "calls.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def recap(run: subprocess.CompletedProcess[str]) -> str:
    return run.stdout[run.stdout.rfind("PLAY RECAP") :]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    site = Site(tmp_path)
    # The installer runs during the first converge; the stand-in's channel must be there before conda is asked.
    site.prefix.mkdir(parents=True)
    (site.prefix / "channel.json").write_text(json.dumps(CHANNEL))
    return site


def test_conda_environment_is_created_offline_and_converges_to_changed_0(site: Site) -> None:
    first = site.converge()
    assert first.returncode == 0, first.stdout[-3000:]
    assert site.installed() == {"comm": "0.2.3", "ipykernel": "7.4.0", "python": "3.11.2", "tzdata": "2026.6"}
    create = [c for c in site.calls() if c[:2] == ["env", "create"]]
    assert len(create) == 1 and "--offline" in create[0] and "--yes" in create[0]
    env_file = json.loads(Path(f"{site.env}.environment.yml").read_text())
    assert env_file["channels"] == ["file:///srv/conda-channel", "nodefaults"]
    assert env_file["dependencies"] == ["comm==0.2.3", "ipykernel==7.4.0", "python==3.11.2", "tzdata==2026.6"]
    again = site.converge()
    assert again.returncode == 0 and "changed=0" in recap(again), again.stdout[-3000:]


def test_a_changed_pin_updates_with_arguments_conda_env_update_takes(site: Site) -> None:
    """Regression: `conda env update --offline --yes` is refused by every conda (unrecognized arguments)."""
    assert site.converge().returncode == 0
    site.packages.append("tzdata=2025.2")
    run = site.converge()
    assert run.returncode == 0, run.stdout[-3000:]
    assert site.installed()["tzdata"] == "2025.2"
    update = [c for c in site.calls() if c[:2] == ["env", "update"]]
    assert update and "--offline" not in update[-1] and "--yes" not in update[-1]


def test_a_failed_update_fails_the_play_and_is_retried_next_run(site: Site) -> None:
    """Regression: the environment file was written before conda ran, so a failed run was never retried."""
    assert site.converge().returncode == 0
    site.packages.append("tzdata=1999.1")
    failed = site.converge()
    assert failed.returncode != 0
    assert "ResolvePackageNotFound" in failed.stdout and "tzdata=1999.1" in failed.stdout
    again = site.converge()
    assert again.returncode != 0, "the second run reported success with the pin still missing"
    assert "ResolvePackageNotFound" in again.stdout
    site.packages.remove("tzdata=1999.1")
    fixed = site.converge()
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert site.installed()["tzdata"] == "2026.6"


def test_an_existing_directory_that_is_not_an_environment_is_never_replaced(site: Site) -> None:
    """Regression: `conda env create --yes` deleted whatever directory stood at a mistyped path."""
    site.env.mkdir(parents=True)
    (site.env / "precious").write_text("a user's work\n")
    run = site.converge()
    assert run.returncode != 0
    assert f"jupyter_env_extra_environments.shared.path: {site.env} exists and is not a conda environment" in (
        " ".join(run.stdout.split())
    )
    assert (site.env / "precious").read_text() == "a user's work\n"
    assert not [c for c in site.calls() if c[:1] == ["env"]]


def test_condarc_is_offline_strict_and_adds_no_pip(site: Site) -> None:
    """Regression: conda adds pip to every python unless add_pip_as_python_dependency is false."""
    assert site.converge().returncode == 0
    condarc = json.loads((site.prefix / ".condarc").read_text())
    assert condarc["add_pip_as_python_dependency"] is False
    assert condarc["offline"] is True
    assert condarc["channels"] == ["file:///srv/conda-channel"]
    assert condarc["channel_priority"] == "strict"


def test_an_environment_unlike_its_pins_is_repaired(site: Site) -> None:
    """Compared with what is installed, not with the file: a package added by hand (pip) is pruned next run."""
    assert site.converge().returncode == 0
    installed = site.installed() | {"pip": "25.0"}
    (site.env / "conda-meta" / "installed.json").write_text(json.dumps(installed))
    run = site.converge()
    assert run.returncode == 0, run.stdout[-3000:]
    assert "pip" not in site.installed()
    assert [c for c in site.calls() if c[:2] == ["env", "update"]][-1][2] == "--prune"


def test_the_check_names_what_is_not_pinned(site: Site) -> None:
    """Strict pins: a conda whose result is not exactly the pins fails the play with both differences."""
    assert site.converge().returncode == 0
    conda = site.prefix / "bin" / "conda"
    # A conda that installs a dependency nobody pinned: the check after it must catch it.
    conda.write_text(
        conda.read_text().replace("installed.update(dict(specs))", 'installed.update(dict(specs), pip="25.0")')
    )
    site.packages.append("tzdata=2025.2")
    run = site.converge()
    assert run.returncode != 0
    out = " ".join(run.stdout.split())
    assert "jupyter_env_extra_environments.shared:" in out and "is not exactly its pins" in out
    assert "Installed, not as pinned:" in out and "pip" in out


def test_bad_pins_are_refused_before_conda_runs(site: Site) -> None:
    site.packages.append("numpy>=1")
    run = site.converge()
    assert run.returncode != 0
    assert "jupyter_env_extra_environments.shared: a conda environment needs" in " ".join(run.stdout.split())
    assert "numpy>=1" in run.stdout
