"""Does the hub's verdict on a request equal Slurm's? Measured, for one cluster model, against a real Slurm.

``jupyterhub-hpc-agreement --model <file>`` generates a few hundred requests inside, at and just past every limit of
every node type of the model (cores, memory, each GPU type or MIG slice and its count, the walltime, and their
combinations), and for each one compares:

* the hub's decision: ``request_rules.validate_request`` on the model, exactly as the spawner decides;
* the model's physical fit: the same rules on the same model with the form's caps lifted to what the nodes have
  (``physical_cluster``): no per-GPU recommendation, every GPU type and count a node has, the cluster's walltime;
* Slurm's decision: ``sbatch --test-only`` with exactly the ``#SBATCH`` resource options the job script would carry
  for that request (``sbatch_options``, the ``batchspawner`` role's template), run as a test user.

A request the hub refuses although it fits a node is a *policy* refusal (a hub cap below the node: the form's
maximum cores, memory, GPUs or hours, or the per-GPU recommendation), expected, and counted apart. Every other
difference is a *physical-fit disagreement*: the model, the rules or the job script do not describe the cluster
that Slurm runs. The tool prints a table per shape and every disagreement, and exits 1 if there is one.

Standard library only (PyYAML is used if present, to read an inventory's YAML).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyterhub_hpc.cluster_rules import validate_cluster
from jupyterhub_hpc.commands import clean_env
from jupyterhub_hpc.model import Bounds, Cluster, Request
from jupyterhub_hpc.request_rules import validate_request
from jupyterhub_hpc.units import ResourceError

__all__ = [
    "Outcome",
    "Probe",
    "compare",
    "generate_probes",
    "load_model",
    "main",
    "physical_cluster",
    "sbatch_options",
    "summarize",
]

#: What a ``sbatch --test-only`` that Slurm accepts prints (on stderr): ``Job 7 to start at ... using 4 processors``.
_ACCEPTED = " to start at "
#: The batch script given to ``sbatch --test-only``: its options are all on the command line.
_SCRIPT = "#!/bin/sh\ntrue\n"


@dataclass(frozen=True)
class Probe:
    """One request: which limit it probes (``shape``, ``label``) and what it asks for."""

    shape: str
    label: str
    cores: int
    memory_mb: int
    gpu_type: str | None
    gpu_count: int
    time_minutes: int

    def options(self) -> dict[str, str]:
        """The request as the REST API's ``user_options`` (strings, as the form sends them)."""
        return {
            "time": f"{self.time_minutes}m",
            "cores": str(self.cores),
            "memory": str(self.memory_mb),
            "gpu": f"{self.gpu_type}:{self.gpu_count}" if self.gpu_type else "none",
        }

    def describe(self) -> str:
        gpu = f", {self.gpu_count} x {self.gpu_type}" if self.gpu_type else ""
        return f"{self.cores} cores, {self.memory_mb} MB{gpu}, {self.time_minutes} min"


@dataclass(frozen=True)
class Outcome:
    """The three verdicts on one probe, and what they make of it: ``agreed``, ``policy`` or ``disagreed``."""

    probe: Probe
    hub: str  # "" if accepted, else the hub's reason
    model: str  # "" if it fits a node of the model (caps lifted), else the reason
    slurm_ok: bool
    slurm: str  # Slurm's answer, one line
    options: tuple[str, ...]  # the sbatch options tried ((): nothing fits the model's job script at all)

    @property
    def verdict(self) -> str:
        if not self.hub:  # the hub accepts: Slurm must too
            return "agreed" if self.slurm_ok else "disagreed"
        if not self.model:  # refused by a hub cap, though a node can hold it: Slurm must accept
            return "policy" if self.slurm_ok else "disagreed"
        return "disagreed" if self.slurm_ok else "agreed"


# -- the model ---------------------------------------------------------------------------------------------------
def physical_cluster(cluster: Cluster) -> Cluster:
    """``cluster`` with the form's caps lifted to what its nodes have: the hub's rules on it decide physical fit
    (one node of one type holds the cores, memory and GPUs together, within the cluster's walltime)."""
    gpu_types = sorted({g.name for n in cluster.node_types for g in n.gpus})
    form = dataclasses.replace(
        cluster.form,
        time=Bounds(min=1, default=cluster.form.time.default, max=cluster.max_walltime_minutes),
        cores=Bounds(min=1, default=cluster.form.cores.default, max=max(n.cores for n in cluster.node_types)),
        memory=Bounds(min=1, default=cluster.form.memory.default, max=max(n.memory_mb for n in cluster.node_types)),
        gpu_types=tuple(gpu_types),
        gpu_max=max((g.per_node for n in cluster.node_types for g in n.gpus), default=0),
        enforce_gpu_recommendation=False,
    )
    return dataclasses.replace(cluster, form=form)


def load_model(path: Path) -> Cluster:
    """A cluster model from a file: the validated model's JSON (``Cluster.to_json``, schema 1), the hub's
    ``50-batchspawner.json`` (``HPCSlurmSpawner.cluster``), or an inventory's YAML or JSON with ``hpc_cluster``
    (validated here by the preflight's own rules)."""
    text = path.read_text(encoding="utf-8")
    data: Any
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            import yaml  # optional: only to read an inventory's YAML
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise SystemExit(f"{path}: not JSON, and PyYAML is not installed to read it as YAML") from err
        data = yaml.safe_load(text)
    if isinstance(data, Mapping) and "HPCSlurmSpawner" in data:
        data = data["HPCSlurmSpawner"]["cluster"]
    if isinstance(data, Mapping) and "hpc_cluster" in data:
        return validate_cluster(data["hpc_cluster"])
    return Cluster.from_data(data, str(path))


# -- the requests --------------------------------------------------------------------------------------------------
def generate_probes(cluster: Cluster) -> list[Probe]:
    """Requests inside, at and just past every limit of every node type, and the hub's caps; no duplicate."""
    time = cluster.form.time.default
    small_memory = min(cluster.form.memory.default, min(n.memory_mb for n in cluster.node_types))
    probes: dict[tuple[Any, ...], Probe] = {}

    def add(
        shape: str, label: str, cores: int, memory: int, gpu: str | None = None, count: int = 0, t: int = 0
    ) -> None:
        if cores < 1 or memory < 1 or (gpu and count < 1):
            return
        probe = Probe(shape, label, cores, memory, gpu, count if gpu else 0, t or time)
        probes.setdefault(
            (shape, probe.cores, probe.memory_mb, probe.gpu_type, probe.gpu_count, probe.time_minutes), probe
        )

    for node in cluster.node_types:
        shape = f"{node.name}: cores, memory"
        for cores in (1, node.cores - 1, node.cores, node.cores + 1):
            for memory in (small_memory, node.memory_mb - 1, node.memory_mb, node.memory_mb + 1):
                add(shape, f"cores {cores}/{node.cores}, memory {memory}/{node.memory_mb}", cores, memory)
        for gpu in node.gpus:
            shape = f"{node.name}: {gpu.name}"
            counts = sorted({1, gpu.per_node - 1, gpu.per_node, gpu.per_node + 1})
            for count in counts:
                core_values = sorted({1, gpu.cores * count, gpu.cores * count + 1, node.cores, node.cores + 1})
                memory_values = sorted(
                    {small_memory, gpu.memory_mb * count, gpu.memory_mb * count + 1, node.memory_mb, node.memory_mb + 1}
                )
                for cores in core_values:
                    for memory in memory_values:
                        add(
                            shape,
                            f"{count}/{gpu.per_node} GPUs, cores {cores}, memory {memory}",
                            cores,
                            memory,
                            gpu.name,
                            count,
                        )
    # The walltime: the form's maximum (a hub cap) and the cluster's (Slurm's partition limit).
    form = cluster.form
    for minutes in sorted(
        {
            form.time.min,
            form.time.max,
            form.time.max + 1,
            cluster.max_walltime_minutes,
            cluster.max_walltime_minutes + 1,
        }
    ):
        add(
            "walltime",
            f"{minutes}/{cluster.max_walltime_minutes} min",
            form.cores.default,
            form.memory.default,
            t=minutes,
        )
    # The form's caps, on their own.
    shape = "hub caps"
    for cores in (form.cores.max, form.cores.max + 1):
        add(shape, f"cores {cores} (form max {form.cores.max})", cores, small_memory)
    for memory in (form.memory.max, form.memory.max + 1):
        add(shape, f"memory {memory} (form max {form.memory.max})", form.cores.default, memory)
    for gpu_type in form.gpu_types:
        for count in (form.gpu_max, form.gpu_max + 1):
            add(shape, f"{count} x {gpu_type} (form max {form.gpu_max})", 1, small_memory, gpu_type, count)
    return list(probes.values())


# -- the job script's options --------------------------------------------------------------------------------------
def sbatch_options(request: Request) -> list[str]:
    """The resource options the job script (``roles/batchspawner/templates/batch_script.sh.j2``) carries for
    ``request``, in its order: ``#SBATCH`` lines from ``Request.job_vars``, an empty value leaving its line out."""
    values = request.job_vars()
    options = ["--nodes=1", "--ntasks=1", "--no-requeue"]
    for option, key in (
        ("--partition", "partition"),
        ("--account", "account"),
        ("--time", "runtime"),
        ("--mem", "memory"),
        ("--cpus-per-task", "nprocs"),
        ("--gpus-per-node", "gpus"),
    ):
        if values[key]:
            options.append(f"{option}={values[key]}")
    return options


# -- Slurm ---------------------------------------------------------------------------------------------------------
Sbatch = Callable[[Sequence[str]], tuple[bool, str]]


def sbatch_runner(command: Sequence[str], timeout: float = 60) -> Sbatch:
    """``sbatch --test-only`` through ``command`` (``["sbatch"]``, or ``["runuser", "-u", "alice", "--", "sbatch"]``):
    accepted when it exits 0 and says when the job would start."""

    def run(options: Sequence[str]) -> tuple[bool, str]:
        argv = [*command, "--test-only", "--job-name=jupyterhub-agreement", *options]
        try:
            # The hub's sbatch gets a clean environment: SBATCH_* or SLURM_* of the operator's shell would change
            # Slurm's verdict here and not there.
            done = subprocess.run(
                argv, input=_SCRIPT, capture_output=True, text=True, timeout=timeout, check=False, env=clean_env()
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return False, f"could not run {shlex.join(argv)}: {err}"
        output = " ".join((done.stderr + " " + done.stdout).split())
        return done.returncode == 0 and _ACCEPTED in output, output

    return run


def compare(cluster: Cluster, probes: Iterable[Probe], sbatch: Sbatch, account: str = "") -> list[Outcome]:
    """The hub's, the model's and Slurm's verdicts on each probe."""
    physical = physical_cluster(cluster)
    outcomes = []
    for probe in probes:
        options = probe.options()
        if account:
            options["account"] = account
        hub = model = ""
        try:
            validate_request(options, cluster)
        except ResourceError as err:
            hub = str(err).replace("\n", "; ")
        request: Request | None = None
        try:
            request = validate_request(options, physical)
        except ResourceError as err:
            model = str(err).replace("\n", "; ")
        if request is None:
            # Refused by the model: ask Slurm about the same values, as a job script would carry them.
            request = _unchecked_request(probe, cluster, account)
        argv = sbatch_options(request)
        ok, answer = sbatch(argv)
        outcomes.append(Outcome(probe, hub, model, ok, answer, tuple(argv)))
    return outcomes


def _unchecked_request(probe: Probe, cluster: Cluster, account: str) -> Request:
    """A request the rules refuse, built by hand: what its job script would carry had it been accepted."""
    return Request(
        account=account,
        time_minutes=probe.time_minutes,
        cores=probe.cores,
        memory_mb=probe.memory_mb,
        gpu_type=probe.gpu_type,
        gpu_count=probe.gpu_count,
        partition=cluster.form.partition,
        interface=cluster.form.default_interface,
        node_types=(),
    )


# -- the report ----------------------------------------------------------------------------------------------------
def summarize(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """One row per shape (in the order met), and a total: requests, agreed, policy, disagreed."""
    rows: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        row = rows.setdefault(
            outcome.probe.shape, {"shape": outcome.probe.shape, "requests": 0, "agreed": 0, "policy": 0, "disagreed": 0}
        )
        row["requests"] += 1
        row[outcome.verdict] += 1
    total = {
        "shape": "total",
        **{k: sum(r[k] for r in rows.values()) for k in ("requests", "agreed", "policy", "disagreed")},
    }
    return [*rows.values(), total]


def report(cluster: Cluster, outcomes: Sequence[Outcome]) -> str:
    """The table (Markdown) and every disagreement."""
    lines = [
        f"Cluster {cluster.name}: {len(outcomes)} requests; hub = the hub's rules, Slurm = sbatch --test-only",
        "",
        "| shape | requests | agreed | policy (hub cap below the node) | disagreed (physical fit) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in summarize(outcomes):
        lines.append(f"| {row['shape']} | {row['requests']} | {row['agreed']} | {row['policy']} | {row['disagreed']} |")
    disagreements = [o for o in outcomes if o.verdict == "disagreed"]
    lines += ["", f"Disagreements: {len(disagreements)}"]
    for o in disagreements:
        hub = "accepts" if not o.hub else f"refuses ({o.hub})"
        model = "fits a node" if not o.model else "fits no node"
        slurm = "accepts" if o.slurm_ok else "refuses"
        lines.append(
            f"- [{o.probe.shape}] {o.probe.describe()}: hub {hub}; model: {model}; Slurm {slurm} "
            f"({o.slurm}) with {' '.join(o.options)}"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jupyterhub-hpc-agreement",
        description="Compare the hub's verdict on requests at every limit of a cluster model with Slurm's "
        "(sbatch --test-only). Exit status 1 if a physical-fit verdict differs.",
    )
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="the cluster model: an inventory's YAML with hpc_cluster, the model's JSON, or the hub's "
        "jupyter_config.d/50-batchspawner.json",
    )
    parser.add_argument("--user", help="run sbatch as this user (with runuser: needs root)")
    parser.add_argument("--sbatch", default="sbatch", help="the sbatch command (default: sbatch)")
    parser.add_argument("--account", default="", help="the account to submit with (default: the user's default)")
    parser.add_argument("--list", action="store_true", help="print the requests and the options only, run nothing")
    parser.add_argument("--json", action="store_true", help="print every outcome as JSON lines after the table")
    args = parser.parse_args(argv)

    cluster = load_model(args.model)
    probes = generate_probes(cluster)
    command = shlex.split(args.sbatch)
    if args.user:
        command = ["runuser", "-u", args.user, "--", *command]
    if args.list:
        for p in probes:
            print(f"[{p.shape}] {p.describe()}")
        return 0
    outcomes = compare(cluster, probes, sbatch_runner(command), args.account)
    print(report(cluster, outcomes), end="")
    if args.json:
        for o in outcomes:
            print(json.dumps({**dataclasses.asdict(o), "verdict": o.verdict}, sort_keys=True))
    return 1 if any(o.verdict == "disagreed" for o in outcomes) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
