"""The deploy-time rules: an inventory's ``hpc_cluster`` checked into the ``model.Cluster`` the hub receives.

Ansible's preflight validates each inventory's ``hpc_cluster`` with ``validate_cluster`` (through the filter plugin
``filter_plugins/hpc_resources.py``, a thin adapter) and refuses an inconsistent one, listing every broken rule, each
named by its variable path (``hpc_cluster.form.cores.max: ...``), in English: the operator reads them. The
``Cluster`` it returns is serialized with ``Cluster.to_data`` and loaded back on the hub with ``Cluster.from_data``:
the model is validated once, on the controller. ``fitting_node_types`` and ``gpu_choices`` answer what a validated
model offers (the request rules, the form and the filters ask them).

Each rule is a small function of its part of the inventory and a ``units.Problems`` that collects what it finds
broken. Pure functions, no I/O, no Ansible import; values are read with the grammar of ``units``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jupyterhub_hpc.model import INTERFACES, Bounds, Cluster, Form, GpuChoice, GpuType, NodeType
from jupyterhub_hpc.units import (
    MAX_TEXT,
    NAME,
    PARTITION,
    Problems,
    ResourceError,
    hours,
    parse_memory_mb,
    parse_walltime_minutes,
    show,
    whole_number,
)

__all__ = ["fitting_node_types", "gpu_choices", "validate_cluster"]

_PREFIX = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)


def validate_cluster(cluster: Any, path: str = "hpc_cluster") -> Cluster:
    """Check a cluster model from the inventory and return it normalized (MB, minutes, defaults filled), as the
    ``Cluster`` the hub receives.

    Raises ``ResourceError`` listing every broken rule, each with its variable path, value and limit.
    """
    problems = Problems()
    spec = _mapping(cluster, path)
    name = problems.guard(_name, spec.get("name"), f"{path}.name")
    max_walltime = problems.guard(parse_walltime_minutes, spec.get("max_walltime"), f"{path}.max_walltime")
    prefixes = _account_prefixes(spec.get("account_prefixes", []), path, problems)
    node_types = _node_types(spec.get("node_types"), path, problems)
    form = _form(spec.get("form"), path, max_walltime, node_types, problems)
    problems.raise_any()

    assert name and max_walltime and form  # for the type checker: no problems, all parsed
    model = Cluster(
        name=name,
        display_name=str(spec.get("display_name") or name),
        max_walltime_minutes=max_walltime,
        account_prefixes=tuple(prefixes),
        node_types=tuple(_node_type_model(type_name, node) for type_name, node in sorted(node_types.items())),
        form=form,
    )
    # The form's own default request must be one that some node can run.
    if not fitting_node_types(model, form.cores.default, form.memory.default, None, 0):
        raise ResourceError(
            f"{path}.form: the default request ({form.cores.default} cores, {form.memory.default} MB) fits no node type"
        )
    return model


def fitting_node_types(cluster: Cluster, cores: int, memory_mb: int, gpu_type: str | None, gpu_count: int) -> list[str]:
    """Names of the node types on which cores, memory and GPUs fit together on one node (sorted)."""
    fits = []
    for node in cluster.node_types:
        if cores > node.cores or memory_mb > node.memory_mb:
            continue
        gpu = node.gpu(gpu_type) if gpu_type else None
        if gpu_type and (gpu.per_node if gpu else 0) < gpu_count:
            continue
        fits.append(node.name)
    return fits


def gpu_choices(cluster: Cluster) -> list[GpuChoice]:
    """The GPU configurations the form offers: ``h100:1``, ``h100:2``, ... in the form's order of types."""
    choices = []
    for gpu_type in cluster.form.gpu_types:
        most = max(g.per_node for n in cluster.node_types if (g := n.gpu(gpu_type)) is not None)
        for count in range(1, min(most, cluster.form.gpu_max) + 1):
            choices.append(GpuChoice(value=f"{gpu_type}:{count}", type=gpu_type, count=count))
    return choices


# -- values --------------------------------------------------------------------------------------------------
def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ResourceError(f"{field}: expected a mapping, got {type(value).__name__}")
    return value


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or not NAME.fullmatch(value):
        raise ResourceError(f"{field}: {show(value)} is not a valid name (letters, digits, '_', '.', '-')")
    return value


def _is_list(value: Any) -> bool:
    """A YAML list (a string is a sequence too, but not a list of anything here)."""
    return isinstance(value, Sequence) and not isinstance(value, str)


def _account_prefixes(raw: Any, path: str, problems: Problems) -> list[str]:
    if not _is_list(raw):
        problems.add(f"{path}.account_prefixes: expected a list of prefixes such as ['def-', 'rrg-']")
        return []
    prefixes: list[str] = []
    for i, prefix in enumerate(raw):
        if isinstance(prefix, str) and _PREFIX.fullmatch(prefix):
            prefixes.append(prefix)
        else:
            problems.add(f"{path}.account_prefixes[{i}]: {show(prefix)} is not an account prefix")
    return prefixes


# -- node types and their GPUs -------------------------------------------------------------------------------
def _node_types(raw: Any, path: str, problems: Problems) -> dict[str, dict[str, Any]]:
    """The node types that could be read, by name: each ``{"count", "cores", "memory_mb", "gpus"}``."""
    node_types: dict[str, dict[str, Any]] = {}
    raw_types = problems.guard(_mapping, raw, f"{path}.node_types", default={})
    if not raw_types:
        problems.add(f"{path}.node_types: at least one node type is required")
    for type_name, spec in raw_types.items():
        if problems.guard(_name, type_name, f"{path}.node_types") is None:  # (the bad name is not part of the path)
            continue
        node = _node_type(spec, f"{path}.node_types.{type_name}", problems)
        if node is not None:
            node_types[type_name] = node
    return node_types


def _node_type(raw: Any, path: str, problems: Problems) -> dict[str, Any] | None:
    spec = problems.guard(_mapping, raw, path)
    if spec is None:
        return None
    count = problems.guard(whole_number, spec.get("count", 1), f"{path}.count")
    cores = problems.guard(whole_number, spec.get("cores"), f"{path}.cores")
    memory = problems.guard(parse_memory_mb, spec.get("memory"), f"{path}.memory")
    gpus = _gpus(spec.get("gpus", {}), path, cores, memory, problems)
    if None in (count, cores, memory):
        return None
    return {"count": count, "cores": cores, "memory_mb": memory, "gpus": gpus}


def _gpus(raw: Any, path: str, cores: int | None, memory: int | None, problems: Problems) -> dict[str, dict[str, Any]]:
    """A node type's GPU types that could be read, by name; ``cores`` and ``memory``: the node type's (None: not
    read)."""
    gpus: dict[str, dict[str, Any]] = {}
    raw_gpus = problems.guard(_mapping, raw, f"{path}.gpus", default={})
    for gpu_type, raw_gpu in raw_gpus.items():
        if problems.guard(_name, gpu_type, f"{path}.gpus") is None:  # (the bad name is not part of the path)
            continue
        gpu = _gpu(raw_gpu, f"{path}.gpus.{gpu_type}", problems)
        if gpu is not None:
            _gpu_within_node(gpu, f"{path}.gpus.{gpu_type}", cores, memory, problems)
            gpus[gpu_type] = gpu
    _mig_slices_within_their_gpu(gpus, path, problems)
    return gpus


def _gpu(raw: Any, gpath: str, problems: Problems) -> dict[str, Any] | None:
    """One GPU type: ``{"per_node", "cores", "memory_mb", "mig_of"}``, a value None where it could not be read."""
    gspec = problems.guard(_mapping, raw, gpath)
    if gspec is None:
        return None
    mig_of = gspec.get("mig_of")
    if mig_of is not None and not isinstance(mig_of, str):
        problems.add(f"{gpath}.mig_of: {show(mig_of)} is not a GPU type name")
        mig_of = None
    return {
        "per_node": problems.guard(whole_number, gspec.get("per_node"), f"{gpath}.per_node"),
        "cores": problems.guard(whole_number, gspec.get("cores"), f"{gpath}.cores"),
        "memory_mb": problems.guard(parse_memory_mb, gspec.get("memory"), f"{gpath}.memory"),
        "mig_of": mig_of,
    }


def _gpu_within_node(
    gpu: dict[str, Any], gpath: str, cores: int | None, memory: int | None, problems: Problems
) -> None:
    """A GPU's recommended cores and memory, and those of all its node's GPUs together, fit in the node."""
    if gpu["cores"] is not None and cores is not None and gpu["cores"] > cores:
        problems.add(f"{gpath}.cores: {gpu['cores']} is above the node type's {cores} cores")
    if gpu["memory_mb"] is not None and memory is not None and gpu["memory_mb"] > memory:
        problems.add(f"{gpath}.memory: {gpu['memory_mb']} MB is above the node type's {memory} MB")
    if None not in (gpu["cores"], gpu["per_node"], cores) and gpu["cores"] * gpu["per_node"] > cores:
        problems.add(
            f"{gpath}: {gpu['per_node']} GPUs x {gpu['cores']} recommended cores = "
            f"{gpu['per_node'] * gpu['cores']}, above the node type's {cores} cores"
        )


def _mig_slices_within_their_gpu(gpus: dict[str, dict[str, Any]], path: str, problems: Problems) -> None:
    """A MIG slice is a fraction of one of the node's full GPUs: never more cores or memory than it."""
    for gpu_type, gpu in gpus.items():
        parent_name = gpu["mig_of"]
        if parent_name is None:
            continue
        parent = gpus.get(parent_name)
        if parent is None or parent["mig_of"] is not None:
            problems.add(f"{path}.gpus.{gpu_type}.mig_of: {show(parent_name)} is not a full GPU type of this node type")
            continue
        if None not in (gpu["cores"], parent["cores"]) and gpu["cores"] > parent["cores"]:
            problems.add(
                f"{path}.gpus.{gpu_type}.cores: {gpu['cores']} is above the {parent['cores']} cores "
                f"recommended for a full {parent_name} GPU"
            )
        if None not in (gpu["memory_mb"], parent["memory_mb"]) and gpu["memory_mb"] > parent["memory_mb"]:
            problems.add(
                f"{path}.gpus.{gpu_type}.memory: {gpu['memory_mb']} MB is above the {parent['memory_mb']} MB "
                f"recommended for a full {parent_name} GPU"
            )


def _node_type_model(name: str, node: dict[str, Any]) -> NodeType:
    return NodeType(
        name=name,
        count=node["count"],
        cores=node["cores"],
        memory_mb=node["memory_mb"],
        gpus=tuple(GpuType(name=gpu_name, **gpu) for gpu_name, gpu in sorted(node["gpus"].items())),
    )


# -- the form ------------------------------------------------------------------------------------------------
def _form(
    raw: Any, path: str, max_walltime: int | None, node_types: dict[str, dict[str, Any]], problems: Problems
) -> Form | None:
    """The form's settings; None where a bound could not be read. Only used when ``problems`` is empty."""
    form_path = f"{path}.form"
    spec = problems.guard(_mapping, raw, form_path, default={})
    time = _bounds(spec.get("time"), f"{form_path}.time", parse_walltime_minutes, problems)
    cores = _bounds(spec.get("cores"), f"{form_path}.cores", whole_number, problems)
    memory = _bounds(spec.get("memory"), f"{form_path}.memory", parse_memory_mb, problems)
    if time and max_walltime and time.max > max_walltime:
        problems.add(
            f"{form_path}.time.max: {show(spec['time']['max'])} ({hours(time.max)} h) is above "
            f"{path}.max_walltime ({hours(max_walltime)} h)"
        )
    _within_the_largest_node_type(form_path, cores, memory, node_types, problems)
    gpu_types, gpu_max = _form_gpus(spec.get("gpus", {}), form_path, node_types, problems)
    interfaces, default_interface = _interfaces(spec, form_path, problems)
    partition = spec.get("partition", "")
    if not isinstance(partition, str) or len(partition) > MAX_TEXT or not PARTITION.fullmatch(partition):
        problems.add(f"{form_path}.partition: {show(partition)} is not a Slurm partition list")
    enforce = spec.get("enforce_gpu_recommendation", True)
    if not isinstance(enforce, bool):
        problems.add(f"{form_path}.enforce_gpu_recommendation: {show(enforce)} is not true or false")
    if not (time and cores and memory):
        return None
    return Form(
        time=time,
        cores=cores,
        memory=memory,
        gpu_types=tuple(gpu_types),
        gpu_max=gpu_max,
        interfaces=tuple(interfaces),
        default_interface=default_interface,
        partition=partition,
        enforce_gpu_recommendation=enforce,
    )


def _bounds(raw: Any, path: str, parse: Callable[[Any, str], int], problems: Problems) -> Bounds | None:
    spec = problems.guard(_mapping, raw, path)
    if spec is None:
        return None
    out = {key: problems.guard(parse, spec.get(key), f"{path}.{key}") for key in ("min", "default", "max")}
    if None in out.values():
        return None
    if out["min"] > out["max"]:
        problems.add(f"{path}.min: {show(spec.get('min'))} is above {path}.max ({show(spec.get('max'))})")
    elif not out["min"] <= out["default"] <= out["max"]:
        problems.add(
            f"{path}.default: {show(spec.get('default'))} is outside [{show(spec.get('min'))}, {show(spec.get('max'))}]"
        )
    return Bounds(**out)


def _within_the_largest_node_type(
    form_path: str,
    cores: Bounds | None,
    memory: Bounds | None,
    node_types: dict[str, dict[str, Any]],
    problems: Problems,
) -> None:
    """Each maximum within what the largest node type has."""
    for key, bounds, attr, unit in (("cores", cores, "cores", ""), ("memory", memory, "memory_mb", " MB")):
        if node_types and bounds:
            biggest, node = max(node_types.items(), key=lambda item: item[1][attr])
            if bounds.max > node[attr]:
                problems.add(
                    f"{form_path}.{key}.max: {show(bounds.max)}{unit} is above the largest node type's {key} "
                    f"({node[attr]}{unit}, node type '{biggest}')"
                )


def _form_gpus(
    raw: Any, form_path: str, node_types: dict[str, dict[str, Any]], problems: Problems
) -> tuple[list[str], int]:
    """The GPU types the form offers (each on some node type) and the most GPUs of one request."""
    spec = problems.guard(_mapping, raw, f"{form_path}.gpus", default={})
    gpu_types = _offered_gpu_types(spec.get("types", []), form_path, node_types, problems)
    if not gpu_types:
        return gpu_types, 0
    gpu_max: int = problems.guard(whole_number, spec.get("max", 1), f"{form_path}.gpus.max", default=0)
    per_node = [n["gpus"][t]["per_node"] for n in node_types.values() for t in gpu_types if t in n["gpus"]]
    if None in per_node:  # a count that could not be read is a problem of its own: the most is unknown
        return gpu_types, gpu_max
    most = max(per_node)
    if gpu_max > most:
        problems.add(f"{form_path}.gpus.max: {gpu_max} is above the most GPUs of one type on a node ({most})")
    return gpu_types, gpu_max


def _offered_gpu_types(
    raw: Any, form_path: str, node_types: dict[str, dict[str, Any]], problems: Problems
) -> list[str]:
    if not _is_list(raw):
        problems.add(f"{form_path}.gpus.types: expected a list of GPU types")
        return []
    gpu_types: list[str] = []
    for i, gpu_type in enumerate(raw):
        if not isinstance(gpu_type, str):  # (a list is not even hashable)
            problems.add(f"{form_path}.gpus.types[{i}]: {show(gpu_type)} is not a GPU type name")
        elif any(gpu_type in n["gpus"] for n in node_types.values()):
            gpu_types.append(gpu_type)
        else:
            known = sorted({g for n in node_types.values() for g in n["gpus"]})
            problems.add(
                f"{form_path}.gpus.types[{i}]: {show(gpu_type)} is on no node type (known GPU types: "
                f"{', '.join(known) if known else 'none'})"
            )
    return gpu_types


def _interfaces(spec: Mapping[str, Any], form_path: str, problems: Problems) -> tuple[list[str], Any]:
    """The user interfaces the form offers, and its default one (as the inventory says it)."""
    raw = spec.get("interfaces", list(INTERFACES))
    interfaces: list[str] = []
    if not _is_list(raw) or not raw:
        problems.add(f"{form_path}.interfaces: expected a non-empty list from {sorted(INTERFACES)}")
    else:
        for i, interface in enumerate(raw):
            if isinstance(interface, str) and interface in INTERFACES:
                interfaces.append(interface)
            else:
                problems.add(
                    f"{form_path}.interfaces[{i}]: {show(interface)} is not one of {', '.join(sorted(INTERFACES))}"
                )
    default_interface = spec.get("default_interface", interfaces[0] if interfaces else "lab")
    if interfaces and default_interface not in interfaces:
        problems.add(f"{form_path}.default_interface: {show(default_interface)} is not in {form_path}.interfaces")
    return interfaces, default_interface
