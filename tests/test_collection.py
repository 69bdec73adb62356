"""The project as a site installs it: the collection built with ``ansible-galaxy collection build``, installed from
its tarball into an empty collections path, and its preflight run against an inventory that lives outside the
repository (no copy of a reference inventory, no link back into the product), as ``ansible-playbook -i <inventory>
jupyterhub_hpc.hub.preflight`` with no project configuration. No host is contacted: the preflight runs on the
controller."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the controller virtualenv's Ansible, whatever PATH says
FQCN = "jupyterhub_hpc.hub"
HUB = "hub.site.example.org"

# A small cluster model written here, as a site writes its own (filter_plugins/README.md describes the fields).
CLUSTER: dict[str, Any] = {
    "name": "mysite",
    "display_name": "My Site",
    "max_walltime": "24h",
    "account_prefixes": ["def-"],
    "node_types": {"cpu": {"count": 10, "cores": 32, "memory": 128000}},
    "form": {
        "time": {"min": 0.5, "default": 1, "max": 8},
        "cores": {"min": 1, "default": 1, "max": 16},
        "memory": {"min": 1000, "default": 4000, "max": 64000},
        "gpus": {"max": 0, "types": []},
        "interfaces": ["lab", "terminal"],
        "default_interface": "lab",
        "partition": "",
    },
}


def run(*args: str, cwd: Path, collections: Path | None = None) -> subprocess.CompletedProcess[str]:
    """An Ansible command as on a site's controller: from the site's directory, without the project's ansible.cfg
    (ANSIBLE_* settings of the caller dropped), the collection found only where it was installed."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_HOME=str(cwd / ".ansible"))
    if collections is not None:
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = run("ansible-galaxy", "collection", "build", "--output-path", str(out), str(ROOT), cwd=out)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("jupyterhub_hpc-hub-*.tar.gz")
    return path


@pytest.fixture(scope="module")
def installed(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty collections path with the collection installed from its tarball; its dependencies (ansible.posix,
    community.crypto, community.docker) are those the pinned `ansible` package bundles (--offline: no Galaxy)."""
    collections = tmp_path_factory.mktemp("collections")
    done = run(
        "ansible-galaxy", "collection", "install", "--offline", "-p", str(collections), str(tarball), cwd=collections
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (collections / "ansible_collections" / "jupyterhub_hpc" / "hub" / "MANIFEST.json").is_file()
    return collections


def site_inventory(directory: Path, **overrides: object) -> Path:
    """A site's inventory outside the repository: its hub, who may log in, its cluster model and where its built
    artefacts are (stand-ins: the preflight only checks they exist)."""
    assert ROOT not in directory.parents
    artefacts = directory / "artefacts"
    artefacts.mkdir()
    for name in ("wheelhouse.tar", "proxy.tar"):
        (artefacts / name).write_bytes(b"")
    inventory = directory / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"hub": {"hosts": {HUB: None}}}))
    settings = {
        "jupyterhub_allowed_groups": ["hpcusers"],
        "jupyterhub_subdomain_host": "https://hub.site.example.org",
        "jupyterhub_hpc_build_dir": str(artefacts),
        "hpc_cluster": CLUSTER,
        **overrides,
    }
    (inventory / "group_vars" / "all" / "site.yml").write_text(yaml.safe_dump(settings))
    return inventory


def test_the_tarball_holds_the_collection_and_not_the_checkouts_tooling(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        members = {member.name: member for member in tar.getmembers()}
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    tops = {name.split("/")[0] for name in members}
    assert not tops & {"tests", "molecule", "bench", "build", ".venv", ".ci", "collections", "scripts", ".git"}, tops
    assert not any(name.startswith("docs/screenshots") or "__pycache__" in name for name in members)
    for playbook in ("site", "preflight", "jupyterhub"):
        assert f"playbooks/{playbook}.yml" in members
    for role in ("jupyter_env", "jupyterhub_proxy", "jupyterhub", "jupyterhub_pam", "batchspawner"):
        assert f"roles/{role}/defaults/main.yml" in members
    # The filter for collection users and for the collection's own playbooks: the one source, filter_plugins/.
    assert members["plugins/filter/hpc_resources.py"].linkname == "../../filter_plugins/hpc_resources.py"
    assert members["playbooks/filter_plugins/hpc_resources.py"].linkname == "../../filter_plugins/hpc_resources.py"
    assert members["filter_plugins/hpc_resources.py"].isfile()
    # Nothing of the demo (its Slurm and munge key, users with known passwords): never run on a site's hosts.
    assert not [name for name in members if "demo" in name], [name for name in members if "demo" in name]
    # No inventory links back into the product.
    assert not [name for name, member in members.items() if member.issym() and name.startswith("inventories/")]
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"]) == ("jupyterhub_hpc", "hub")
    assert set(info["dependencies"]) == {"ansible.posix", "community.crypto", "community.docker"}


def test_one_version_everywhere() -> None:
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    pyproject = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    changelog = re.search(r"^## \[(\d[^\]]*)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert pyproject is not None and changelog is not None
    assert galaxy["version"] == pyproject.group(1) == changelog.group(1)
    requirements = yaml.safe_load((ROOT / "requirements.yml").read_text())
    assert {entry["name"]: entry["version"] for entry in requirements["collections"]} == galaxy["dependencies"]


def test_the_installed_collections_preflight_accepts_a_sites_own_inventory(installed: Path, tmp_path: Path) -> None:
    inventory = site_inventory(tmp_path)
    done = run("ansible-playbook", "-i", str(inventory), f"{FQCN}.preflight", cwd=tmp_path, collections=installed)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "failed=0" in done.stdout
    summary = "My Site: 1 node types, walltime up to 24 h; the form offers 16 cores, 64000 MB, 8.0 h at most."
    assert summary in done.stdout
    # The roles (their defaults and argument specs) came from the installed collection, nothing from the checkout.
    assert f"TASK [{FQCN}.batchspawner : Validating arguments" in done.stdout
    assert str(ROOT) not in done.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # The artefacts are not where the site said.
        (
            {"jupyterhub_hpc_build_dir": "/nonexistent/artefacts"},
            "jupyter_env_wheelhouse_archive: /nonexistent/artefacts/wheelhouse.tar does not exist",
        ),
        # A form that offers more cores than any node has.
        (
            {"hpc_cluster": {**CLUSTER, "form": {**CLUSTER["form"], "cores": {"min": 1, "default": 1, "max": 64}}}},
            "hpc_cluster.form.cores.max: 64 is above the largest node type's cores (32, node type 'cpu')",
        ),
    ],
)
def test_the_installed_collections_preflight_refuses_a_broken_value_naming_it(
    installed: Path, tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    inventory = site_inventory(tmp_path, **overrides)
    done = run("ansible-playbook", "-i", str(inventory), f"{FQCN}.site", cwd=tmp_path, collections=installed)
    assert done.returncode != 0
    assert message in done.stdout, done.stdout[-3000:]
    # It stopped in the preflight: the deploying play never started, no host was contacted.
    assert "PLAY [JupyterHub on Slurm]" not in done.stdout
    assert "unreachable=0" in done.stdout


def test_the_site_playbook_has_a_tag_per_role(installed: Path, tmp_path: Path) -> None:
    inventory = site_inventory(tmp_path)
    done = run(
        "ansible-playbook", "-i", str(inventory), f"{FQCN}.site", "--list-tags", cwd=tmp_path, collections=installed
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tags = {tag.strip() for line in re.findall(r"TASK TAGS: \[(.*)\]", done.stdout) for tag in line.split(",")}
    assert {"preflight", "jupyter_env", "jupyterhub_proxy", "jupyterhub", "jupyterhub_pam", "batchspawner"} <= tags


def test_collection_users_get_the_filters_by_their_full_name(installed: Path, tmp_path: Path) -> None:
    playbook = tmp_path / "sizes.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "A site's own playbook",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Memory in MB",
                            "ansible.builtin.debug": {"msg": "size={{ '4G' | jupyterhub_hpc.hub.hpc_memory_mb }}"},
                        }
                    ],
                }
            ]
        )
    )
    done = run("ansible-playbook", "-i", "localhost,", str(playbook), cwd=tmp_path, collections=installed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "size=4096" in done.stdout
