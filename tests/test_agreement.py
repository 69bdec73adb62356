"""The agreement tool (jupyterhub_hpc.agreement): its requests, its comparison (against a fake sbatch that knows the
model's nodes), the job script's options it tries, and the demo-only role's Slurm configuration of a model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import jinja2
import pytest

from jupyterhub_hpc import agreement
from jupyterhub_hpc.model import Cluster, NodeType
from jupyterhub_hpc.request_rules import validate_request

ROOT = Path(__file__).resolve().parent.parent
CLUSTERS = ("fir", "narval")


def model(cluster: str) -> Cluster:
    return agreement.load_model(ROOT / "inventories" / cluster / "group_vars" / "all" / "cluster.yml")


def parse(options: Sequence[str]) -> dict[str, str]:
    return dict(o.removeprefix("--").split("=", 1) for o in options if "=" in o)


def minutes(slurm_time: str) -> int:
    days, _sep, clock = slurm_time.rpartition("-")
    hours, mins, _secs = clock.split(":")
    return (int(days or 0) * 24 + int(hours)) * 60 + int(mins)


def fake_slurm(nodes: Sequence[NodeType], max_minutes: int) -> agreement.Sbatch:
    """A Slurm that knows these nodes: a job fits if one node holds its cores, memory and GPUs of one type."""

    def sbatch(options: Sequence[str]) -> tuple[bool, str]:
        opts = parse(options)
        if minutes(opts["time"]) > max_minutes:
            return False, "allocation failure: Requested time limit is invalid (missing or exceeds some limit)"
        cores, memory = int(opts.get("cpus-per-task", "1")), int(opts["mem"].removesuffix("M"))
        gpu_type, _sep, count = opts.get("gpus-per-node", ":0").partition(":")
        for node in nodes:
            gpu = node.gpu(gpu_type)
            if (
                cores <= node.cores
                and memory <= node.memory_mb
                and (not gpu_type or (gpu and gpu.per_node >= int(count)))
            ):
                return (
                    True,
                    f"sbatch: Job 1 to start at 2026-01-01T00:00:00 using {cores} processors on nodes {node.name}",
                )
        return False, "allocation failure: Requested node configuration is not available"

    return sbatch


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_probes_cover_every_limit_of_every_node_type(cluster: str) -> None:
    model_ = model(cluster)
    probes = agreement.generate_probes(model_)
    assert len(probes) >= 300
    keys = [(p.shape, p.cores, p.memory_mb, p.gpu_type, p.gpu_count, p.time_minutes) for p in probes]
    assert len(keys) == len(set(keys))
    for node in model_.node_types:
        mine = [p for p in probes if p.shape == f"{node.name}: cores, memory"]
        for cores in (node.cores - 1, node.cores, node.cores + 1):
            assert any(p.cores == cores and p.memory_mb == node.memory_mb for p in mine)
        for memory in (node.memory_mb - 1, node.memory_mb, node.memory_mb + 1):
            assert any(p.memory_mb == memory and p.cores == node.cores for p in mine)
        for gpu in node.gpus:
            theirs = [p for p in probes if p.gpu_type == gpu.name]
            for count in (1, gpu.per_node, gpu.per_node + 1):
                assert any(
                    p.gpu_count == count and p.cores == node.cores and p.memory_mb == node.memory_mb for p in theirs
                )
                assert any(p.gpu_count == count and p.cores == node.cores + 1 for p in theirs)
    walltimes = {p.time_minutes for p in probes if p.shape == "walltime"}
    assert {model_.form.time.max + 1, model_.max_walltime_minutes, model_.max_walltime_minutes + 1} <= walltimes


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_a_slurm_of_the_models_nodes_agrees_and_policy_is_counted_apart(cluster: str) -> None:
    model_ = model(cluster)
    outcomes = agreement.compare(
        model_, agreement.generate_probes(model_), fake_slurm(model_.node_types, model_.max_walltime_minutes)
    )
    total = agreement.summarize(outcomes)[-1]
    assert total["disagreed"] == 0
    assert total["policy"] > 0 and total["agreed"] > 0
    assert total["requests"] == total["agreed"] + total["policy"]
    # What the hub accepts, Slurm accepts; what no node holds, Slurm refuses; the hub's caps are policy.
    assert all(o.slurm_ok for o in outcomes if not o.hub)
    assert all(not o.slurm_ok for o in outcomes if o.model)
    caps = ("above the maximum", "recommended", "is not offered")
    assert all(any(cap in o.hub for cap in caps) for o in outcomes if o.verdict == "policy")
    assert "Disagreements: 0" in agreement.report(model_, outcomes)


def test_a_node_smaller_than_the_model_is_a_physical_disagreement() -> None:
    model_ = model("narval")
    gpu = model_.node_type("gpu")
    smaller = [n for n in model_.node_types if n.name != "gpu"] + [
        NodeType(gpu.name, gpu.count, gpu.cores, gpu.memory_mb - 1, gpu.gpus)
    ]
    outcomes = agreement.compare(
        model_, agreement.generate_probes(model_), fake_slurm(smaller, model_.max_walltime_minutes)
    )
    wrong = [o for o in outcomes if o.verdict == "disagreed"]
    assert wrong and all(o.probe.memory_mb == gpu.memory_mb and o.probe.gpu_type for o in wrong)
    assert all(not o.model and not o.slurm_ok for o in wrong)  # the model says it fits, Slurm refuses
    text = agreement.report(model_, outcomes)
    assert f"Disagreements: {len(wrong)}" in text and "--mem=510000M" in text


def test_a_node_larger_than_the_model_is_a_physical_disagreement() -> None:
    model_ = model("fir")
    larger = [NodeType(n.name, n.count, n.cores + 1, n.memory_mb, n.gpus) for n in model_.node_types]
    outcomes = agreement.compare(
        model_, agreement.generate_probes(model_), fake_slurm(larger, model_.max_walltime_minutes)
    )
    wrong = [o for o in outcomes if o.verdict == "disagreed"]
    assert wrong and all(o.model and o.slurm_ok for o in wrong)  # no node of the model holds it, Slurm runs it
    assert {193, 49} <= {o.probe.cores for o in wrong}


def template_options(job_vars: dict[str, str]) -> list[str]:
    """The #SBATCH lines batchspawner renders from the role's job script template (its raw block)."""
    text = (ROOT / "roles/batchspawner/templates/batch_script.sh.j2").read_text()
    raw = text.split("{% raw %}", 1)[1].split("{% endraw %}", 1)[0]
    rendered = jinja2.Template(raw).render(homedir="/home/u", keepvars="ALL", **job_vars)
    lines = [line.removeprefix("#SBATCH ") for line in rendered.splitlines() if line.startswith("#SBATCH ")]
    return [line for line in lines if not line.startswith(("--chdir", "--export"))]


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_the_options_tried_are_the_job_scripts(cluster: str) -> None:
    model_ = model(cluster)
    physical = agreement.physical_cluster(model_)
    for probe in agreement.generate_probes(model_)[::7]:
        try:
            request = validate_request({**probe.options(), "account": "def-alice"}, physical)
        except ValueError:
            continue
        assert agreement.sbatch_options(request) == template_options(request.job_vars())


FAKE_SBATCH = """\
import re, sys
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if "=" in a)
assert "--test-only" in sys.argv and sys.stdin.read().startswith("#!")
gpu = opts.get("gpus-per-node", "")
ok = int(opts.get("cpus-per-task", 1)) <= 48 and int(opts["mem"][:-1]) <= 510000 and gpu in ("", "a100:1")
print("sbatch: Job 3 to start at now using 1 processors on nodes n1" if ok else
      "allocation failure: Requested node configuration is not available", file=sys.stderr)
sys.exit(0 if ok else 1)
"""


def test_the_command_runs_sbatch_and_exits_1_on_a_disagreement(tmp_path: Path) -> None:
    script = tmp_path / "sbatch.py"
    script.write_text(FAKE_SBATCH)
    model_file = ROOT / "inventories/narval/group_vars/all/cluster.yml"
    argv = ["--model", str(model_file), "--sbatch", f"{sys.executable} {script}"]
    done = subprocess.run(
        [sys.executable, "-m", "jupyterhub_hpc.agreement", *argv],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.returncode == 1, done.stderr
    assert "| total | " in done.stdout
    # The fake node has no MIG slices and only one a100 to give: the model's other shapes are disagreements.
    assert re.search(r"1 x a100_1g\.5gb, 60 min: hub accepts; model: fits a node; Slurm refuses", done.stdout)
    assert agreement.main([*argv[:2], "--list"]) == 0


def test_the_model_loads_from_the_hubs_configuration_and_its_json(tmp_path: Path) -> None:
    model_ = model("fir")
    (tmp_path / "model.json").write_text(model_.to_json())
    (tmp_path / "50-batchspawner.json").write_text('{"HPCSlurmSpawner": {"cluster": ' + model_.to_json() + "}}")
    assert agreement.load_model(tmp_path / "model.json") == model_
    assert agreement.load_model(tmp_path / "50-batchspawner.json") == model_


def test_the_demo_roles_slurm_configuration_has_the_models_shapes(tmp_path: Path) -> None:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    playbook = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventories/narval"]
    subprocess.run(
        [*playbook, "tests/playbooks/render_demo_slurm.yml", "-e", f"render_dir={tmp_path}"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    conf = (tmp_path / "slurm.conf").read_text()
    gres = (tmp_path / "gres.conf").read_text()
    narval = model("narval")
    for node in narval.node_types:
        line = next(
            line for line in conf.splitlines() if line.startswith(f"NodeName=narval-{node.name.replace('_', '-')} ")
        )
        assert f" CPUs={node.cores} RealMemory={node.memory_mb}" in line
        gres_items = ",".join(f"gpu:{g.name}:{g.per_node}" for g in node.gpus)
        assert (f" Gres={gres_items} " in line) == bool(node.gpus)
        # One stand-in device per GPU or MIG slice, numbered on across the node's types.
        first = 0
        for g in node.gpus:
            assert (
                f"Name=gpu Type={g.name} File=/var/lib/slurm/fake-gpus/gpu[{first}-{first + g.per_node - 1}]\n" in gres
            )
            first += g.per_node
    assert "AutoDetect=off" in gres
    assert "SlurmdParameters=config_overrides" in conf and "GresTypes=gpu" in conf
    assert re.search(rf"^PartitionName=narval .*Default=YES MaxTime={narval.max_walltime_minutes} ", conf, re.M)
    # With accounting (the Molecule scenarios), jobs' TRES name the GPU types.
    assert "AccountingStorageTRES" not in conf
    subprocess.run(
        [*playbook, "tests/playbooks/render_demo_slurm.yml", "-e", f"render_dir={tmp_path}", "-e", "accounting=true"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    types = sorted({g.name for n in narval.node_types for g in n.gpus})
    tres = "AccountingStorageTRES=gres/gpu," + ",".join(f"gres/gpu:{t}" for t in types) + "\n"
    assert tres in (tmp_path / "slurm.conf").read_text()
