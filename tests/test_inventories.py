"""The inventories through Ansible itself: the preflight accepts the reference clusters and refuses broken
copies with the variable named; the rendered spawner configuration matches its golden file."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_hpc_resources import filter_plugin
from test_model import inventory_cluster

from jupyterhub_hpc.model import Cluster
from jupyterhub_hpc.resources import validate_cluster

ROOT = Path(__file__).resolve().parents[1]
CLUSTERS = ("fir", "narval", "rorqual", "demo")
GOLDEN = Path(__file__).parent / "golden"


def ansible_playbook(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    return subprocess.run(
        # The ansible-playbook installed beside this Python (the controller virtualenv), whatever PATH says.
        [str(Path(sys.executable).parent / "ansible-playbook"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_reference_inventories_pass_the_preflight(cluster: str) -> None:
    run = ansible_playbook("-i", f"inventories/{cluster}", "playbooks/preflight.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "failed=0" in run.stdout


def broken_copy(tmp_path: Path, cluster: str, old: str, new: str) -> Path:
    inventory = tmp_path / cluster
    shutil.copytree(ROOT / "inventories" / cluster, inventory, symlinks=False)
    model = inventory / "group_vars" / "all" / "cluster.yml"
    text = model.read_text()
    assert old in text
    model.write_text(text.replace(old, new))
    return inventory


@pytest.mark.parametrize(
    ("cluster", "old", "new", "message"),
    [
        (
            "fir",
            "cores: {min: 1, default: 1, max: 48}",
            "cores: {min: 1, default: 1, max: 256}",
            "hpc_cluster.form.cores.max: 256 is above the largest node type's cores (192, node type 'cpu')",
        ),
        (
            "narval",
            "time: {min: 0.5, default: 1, max: 24}",
            "time: {min: 0.5, default: 1, max: 200}",
            "hpc_cluster.form.time.max: 200 (200 h) is above hpc_cluster.max_walltime (168 h)",
        ),
        (
            "rorqual",
            "h100_1g.10gb: {per_node: 28, cores: 2,",
            "h100_1g.10gb: {per_node: 28, cores: 20,",
            "hpc_cluster.node_types.gpu.gpus.h100_1g.10gb.cores: 20 is above the 16 cores recommended for a full "
            "h100 GPU",
        ),
        (
            "fir",
            "gpus: {max: 1, types: [h100,",
            "gpus: {max: 1, types: [a100, h100,",
            "hpc_cluster.form.gpus.types[0]: 'a100' is on no node type",
        ),
    ],
)
def test_broken_inventory_fails_the_preflight_of_site_yml_in_check_mode(
    tmp_path: Path, cluster: str, old: str, new: str, message: str
) -> None:
    inventory = broken_copy(tmp_path, cluster, old, new)
    run = ansible_playbook("--check", "-i", str(inventory), "site.yml")
    assert run.returncode != 0
    assert f"{inventory}: the cluster model is inconsistent, nothing was deployed" in run.stdout
    assert message in run.stdout
    # It stopped in the preflight: no task ran on the hub.
    assert "PLAY [JupyterHub on Slurm]" not in run.stdout


def test_an_inventory_needs_no_link_into_the_product(tmp_path: Path) -> None:
    """The layout the roles share is in their defaults: an inventory anywhere, with only the site's own files, passes
    (tests/test_collection.py does the same with the installed collection)."""
    assert not [path for path in (ROOT / "inventories").rglob("*") if path.is_symlink()]
    inventory = tmp_path / "fir"
    shutil.copytree(ROOT / "inventories" / "fir", inventory, symlinks=True)
    run = ansible_playbook("-i", str(inventory), "playbooks/preflight.yml")
    assert run.returncode == 0, run.stdout[-3000:]


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_rendered_spawner_configuration_matches_golden_file(tmp_path: Path, cluster: str) -> None:
    (tmp_path / "jupyterhub_config.d").mkdir()
    run = ansible_playbook(
        "-i", f"inventories/{cluster}", "tests/playbooks/render_spawner_config.yml", "-e", f"render_dir={tmp_path}"
    )
    assert run.returncode == 0, run.stdout[-3000:]
    rendered = (tmp_path / "jupyterhub_config.d" / "50-batchspawner.json").read_text()
    golden = GOLDEN / f"{cluster}.batchspawner.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text(), f"rendered differs from {golden} (UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_the_hub_loads_exactly_the_model_the_preflight_validated(cluster: str) -> None:
    """The golden files are what the role ships (checked above): their model is the filter's output for the inventory,
    and the hub's loader reads it back as the very object the preflight's rules made."""
    shipped = json.loads((GOLDEN / f"{cluster}.batchspawner.json").read_text())["HPCSlurmSpawner"]["cluster"]
    validated = validate_cluster(inventory_cluster(cluster))
    filters = filter_plugin().FilterModule().filters()
    assert shipped == filters["hpc_validate_cluster"](inventory_cluster(cluster)) == validated.to_data()
    assert Cluster.from_data(shipped) == validated


def sudo_allows(rule: str, command: str) -> bool:
    """Whether a Cmnd_Alias entry allows the command line, as sudo matches them (fnmatch-style wildcards; no
    wildcard: the same arguments exactly)."""
    return fnmatch.fnmatchcase(command, rule) if "*" in rule else command == rule


@pytest.mark.parametrize("cluster", ["demo", "fir"])
def test_the_sudo_rule_allows_exactly_what_the_spawner_runs_as_a_user(tmp_path: Path, cluster: str) -> None:
    """One source: the rule is rendered from the spawner's configuration, character for character."""
    (tmp_path / "jupyterhub_config.d").mkdir()
    run = ansible_playbook(
        "-i", f"inventories/{cluster}", "tests/playbooks/render_spawner_config.yml", "-e", f"render_dir={tmp_path}"
    )
    assert run.returncode == 0, run.stdout[-3000:]
    config = json.loads((tmp_path / "jupyterhub_config.d" / "50-batchspawner.json").read_text())
    (alias,) = [line for line in (tmp_path / "sudoers").read_text().splitlines() if line.startswith("Cmnd_Alias ")]
    rules = alias.split(" = ", 1)[1].split(", ")
    slurm, ours = config["SlurmSpawner"], config["HPCSlurmSpawner"]
    # What the spawner runs after exec_prefix ("sudo -E -u <user>"), with its placeholders filled.
    as_user = [
        slurm["batch_submit_cmd"],
        slurm["batch_query_cmd"].format(job_id="4242"),
        slurm["batch_cancel_cmd"].format(job_id="4242"),
        ours["output_tail_cmd"].format(max_bytes=4096, path="/home/alice/.jupyterhub-slurm-4242.log"),
    ]
    assert [[rule for rule in rules if sudo_allows(rule, command)] for command in as_user] == [[r] for r in rules]
    assert rules == [
        "/usr/bin/sbatch --parsable",
        "/usr/bin/squeue -h -j [0-9]*",
        "/usr/bin/scancel [0-9]*",
        "/usr/bin/python3 -I -S /usr/local/libexec/jupyterhub-hpc/job_tail.py *",
    ]
    for other in ("/usr/bin/sbatch --parsable --wrap=id", "/usr/bin/scancel --user=bob", "/usr/bin/squeue -u bob"):
        assert not any(sudo_allows(rule, other) for rule in rules), other


def test_preflight_refuses_an_oath_users_file_the_hub_cannot_write() -> None:
    run = ansible_playbook(
        "-i", "inventories/demo", "playbooks/preflight.yml", "-e", "jupyterhub_pam_oath_users_file=/etc/users.oath"
    )
    assert run.returncode != 0
    assert "jupyterhub_pam_oath_users_file (/etc/users.oath) must be an absolute path outside /etc" in run.stdout


@pytest.mark.parametrize(
    ("extra", "refused"),
    [
        ({"jupyterhub_subdomain_host": ""}, True),
        ({"jupyterhub_subdomain_host": "", "jupyterhub_allow_single_origin": True}, False),
        ({"jupyterhub_subdomain_host": "https://jupyterhub.fir.alliancecan.ca/hub"}, True),
        ({"jupyterhub_subdomain_host": "jupyterhub.fir.alliancecan.ca"}, True),
        ({"jupyterhub_subdomain_host": "http://jupyterhub.fir.alliancecan.ca"}, True),  # TLS on: https
        ({"jupyterhub_subdomain_host": "https://Hub_1.example.org"}, True),
        ({"jupyterhub_subdomain_host": "https://hub.example.org:8443"}, False),
    ],
)
def test_preflight_wants_users_host_names_or_an_accepted_single_origin(extra: dict[str, object], refused: bool) -> None:
    run = ansible_playbook("-i", "inventories/fir", "playbooks/preflight.yml", "-e", json.dumps(extra))
    assert (run.returncode != 0) == refused, run.stdout[-2000:]
    if refused:
        assert f"jupyterhub_subdomain_host: {json.dumps(extra['jupyterhub_subdomain_host'])} must be" in run.stdout
        assert "jupyterhub_allow_single_origin: true" in run.stdout
