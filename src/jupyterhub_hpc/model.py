"""The two shapes data takes between the inventory and the job script: the cluster model and a user's request.

* ``Cluster`` is the validated, normalized model of a cluster (MB, minutes, defaults filled). Only
  ``cluster_rules.validate_cluster`` makes one from the inventory's ``hpc_cluster`` (the preflight, through the filter
  plugin); ``Cluster.to_data`` serializes it as JSON data with a schema version, which the ``batchspawner`` role
  ships to the hub, and ``Cluster.from_data`` loads it back into the same, equal object. The load is structural
  (the schema version, each field's key and type): the rules are not checked twice.
* ``Request`` is a user's validated request. Only ``request_rules.validate_request`` makes one, from the form or
  from the REST API's ``user_options``; it alone fills the job script's variables (``Request.job_vars``).

Both are frozen: once checked, nothing changes them. No I/O; the standard library, and ``i18n.N_`` to mark the
labels for the catalog.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from jupyterhub_hpc.i18n import N_

__all__ = [
    "INTERFACES",
    "LABELS",
    "SCHEMA",
    "Bounds",
    "Cluster",
    "Form",
    "GpuChoice",
    "GpuType",
    "ModelFormatError",
    "NodeType",
    "Request",
    "format_memory",
    "format_slurm_time",
]

#: The version of ``Cluster.to_data``'s layout. A change of layout is a new number: a hub never guesses.
SCHEMA = 1

#: User interfaces the hub offers, and where each lands in the single-user server.
INTERFACES: dict[str, dict[str, str]] = {
    "lab": {"label": N_("JupyterLab"), "url": "/lab"},
    "notebook": {"label": N_("Jupyter Notebook (classic interface)"), "url": "/tree"},
    "terminal": {"label": N_("Terminal"), "url": "/terminals/1"},
}

#: Form field labels, as users see them in the Server Options form and in error messages.
LABELS: dict[str, str] = {
    "account": N_("Account"),
    "time": N_("Time (hours)"),
    "cores": N_("Cores"),
    "memory": N_("Memory (MB)"),
    "gpu": N_("GPU"),
    "interface": N_("User interface"),
}


def format_slurm_time(minutes: int) -> str:
    """Minutes as Slurm's --time: ``HH:MM:00``, or ``D-HH:MM:00`` from one day on."""
    days, rest = divmod(int(minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00" if days else f"{hours:02d}:{mins:02d}:00"


def format_memory(mb: int) -> str:
    """MB as Slurm's --mem value."""
    return f"{int(mb)}M"


# -- the cluster model ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bounds:
    """A form field's limits and default, in the model's unit (minutes, cores, MB)."""

    min: int
    default: int
    max: int


@dataclass(frozen=True)
class GpuType:
    """A GPU type of a node type, with the cores and memory recommended per GPU; ``mig_of``: the full GPU a MIG
    slice is part of."""

    name: str
    per_node: int
    cores: int
    memory_mb: int
    mig_of: str | None


@dataclass(frozen=True)
class NodeType:
    """One kind of node: how many, and what one of them has. ``gpus`` sorted by name."""

    name: str
    count: int
    cores: int
    memory_mb: int
    gpus: tuple[GpuType, ...]

    def gpu(self, name: str) -> GpuType | None:
        return next((g for g in self.gpus if g.name == name), None)


@dataclass(frozen=True)
class Form:
    """What the Server Options form offers. ``gpu_types`` in the inventory's order (the form's order)."""

    time: Bounds
    cores: Bounds
    memory: Bounds
    gpu_types: tuple[str, ...]
    gpu_max: int
    interfaces: tuple[str, ...]
    default_interface: str
    partition: str
    enforce_gpu_recommendation: bool


@dataclass(frozen=True)
class GpuChoice:
    """One GPU configuration the form offers: ``value`` is ``<type>:<count>``."""

    value: str
    type: str
    count: int


@dataclass(frozen=True)
class Cluster:
    """A validated cluster model. ``node_types`` sorted by name, so equal models are equal objects and serialize
    to the same bytes whatever the inventory's order."""

    name: str
    display_name: str
    max_walltime_minutes: int
    account_prefixes: tuple[str, ...]
    node_types: tuple[NodeType, ...]
    form: Form

    def node_type(self, name: str) -> NodeType:
        return next(n for n in self.node_types if n.name == name)

    def to_data(self) -> dict[str, Any]:
        """JSON data (dicts, lists, str, int, bool, null) with the schema version; deterministic: the same model
        gives the same data, in the same order."""

        def bounds(b: Bounds) -> dict[str, int]:
            return {"default": b.default, "max": b.max, "min": b.min}

        form = self.form
        return {
            "account_prefixes": list(self.account_prefixes),
            "display_name": self.display_name,
            "form": {
                "cores": bounds(form.cores),
                "default_interface": form.default_interface,
                "enforce_gpu_recommendation": form.enforce_gpu_recommendation,
                "gpus": {"max": form.gpu_max, "types": list(form.gpu_types)},
                "interfaces": list(form.interfaces),
                "memory": bounds(form.memory),
                "partition": form.partition,
                "time": bounds(form.time),
            },
            "max_walltime_minutes": self.max_walltime_minutes,
            "name": self.name,
            "node_types": {
                n.name: {
                    "cores": n.cores,
                    "count": n.count,
                    "gpus": {
                        g.name: {"cores": g.cores, "memory_mb": g.memory_mb, "mig_of": g.mig_of, "per_node": g.per_node}
                        for g in n.gpus
                    },
                    "memory_mb": n.memory_mb,
                }
                for n in self.node_types
            },
            "schema": SCHEMA,
        }

    def to_json(self) -> str:
        """``to_data`` as JSON text: sorted keys, one form, the same bytes for the same model."""
        return json.dumps(self.to_data(), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_data(cls, data: Any, where: str = "cluster") -> Cluster:
        """The model ``to_data`` made, back as the same object. Structural: the schema version, and each field's
        key and type (no key missing, none unknown); the rules were checked once, by the preflight, and are not
        checked again. Raises ``ModelFormatError`` naming the field."""
        top = _Fields(data, where)
        schema = top.get("schema", int)
        if schema != SCHEMA:
            raise ModelFormatError(
                f"{where}.schema: {schema!r}, but this package reads schema {SCHEMA} (run the playbook of the same "
                "release as the hub's package: its preflight writes the model)"
            )
        raw_form = _Fields(top.get("form", dict), f"{where}.form")
        gpus = _Fields(raw_form.get("gpus", dict), f"{where}.form.gpus")
        form = Form(
            time=_bounds(raw_form.get("time", dict), f"{where}.form.time"),
            cores=_bounds(raw_form.get("cores", dict), f"{where}.form.cores"),
            memory=_bounds(raw_form.get("memory", dict), f"{where}.form.memory"),
            gpu_types=_strings(gpus.get("types", list), f"{where}.form.gpus.types"),
            gpu_max=gpus.get("max", int),
            interfaces=_strings(raw_form.get("interfaces", list), f"{where}.form.interfaces"),
            default_interface=raw_form.get("default_interface", str),
            partition=raw_form.get("partition", str),
            enforce_gpu_recommendation=raw_form.get("enforce_gpu_recommendation", bool),
        )
        gpus.done()
        raw_form.done()
        node_types = []
        for name, raw_node in sorted(top.get("node_types", dict).items()):
            npath = f"{where}.node_types.{name}"
            node = _Fields(raw_node, npath)
            gpu_types = []
            for gpu_name, raw_gpu in sorted(node.get("gpus", dict).items()):
                gpu = _Fields(raw_gpu, f"{npath}.gpus.{gpu_name}")
                gpu_types.append(
                    GpuType(
                        name=gpu_name,
                        per_node=gpu.get("per_node", int),
                        cores=gpu.get("cores", int),
                        memory_mb=gpu.get("memory_mb", int),
                        mig_of=gpu.optional("mig_of", str),
                    )
                )
                gpu.done()
            node_types.append(
                NodeType(
                    name=name,
                    count=node.get("count", int),
                    cores=node.get("cores", int),
                    memory_mb=node.get("memory_mb", int),
                    gpus=tuple(gpu_types),
                )
            )
            node.done()
        cluster = cls(
            name=top.get("name", str),
            display_name=top.get("display_name", str),
            max_walltime_minutes=top.get("max_walltime_minutes", int),
            account_prefixes=_strings(top.get("account_prefixes", list), f"{where}.account_prefixes"),
            node_types=tuple(node_types),
            form=form,
        )
        top.done()
        return cluster

    @classmethod
    def from_json(cls, text: str, where: str = "cluster") -> Cluster:
        return cls.from_data(json.loads(text), where)


class ModelFormatError(ValueError):
    """Serialized model data that is not this package's schema (a field missing, unknown, or of another type)."""


_T = TypeVar("_T")


class _Fields:
    """The fields of one serialized object, read once each; ``done`` refuses any left over (an unknown key)."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping) or not all(isinstance(key, str) for key in data):
            raise ModelFormatError(f"{where}: expected an object, got {type(data).__name__}")
        self.data, self.where, self.left = data, where, set(data)

    def get(self, key: str, kind: type[_T]) -> _T:
        value = self.optional(key, kind)
        if value is None:
            raise ModelFormatError(f"{self.where}.{key}: expected {kind.__name__}, got null")
        return value

    def optional(self, key: str, kind: type[_T]) -> _T | None:
        """The field (present, ``null`` allowed)."""
        if key not in self.data:
            raise ModelFormatError(f"{self.where}.{key}: missing")
        self.left.discard(key)
        value = self.data[key]
        # bool is an int in Python, never in the model.
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise ModelFormatError(f"{self.where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
        return value

    def done(self) -> None:
        if self.left:
            raise ModelFormatError(f"{self.where}: unknown field(s) {', '.join(sorted(self.left))}")


def _bounds(data: Any, where: str) -> Bounds:
    fields = _Fields(data, where)
    bounds = Bounds(min=fields.get("min", int), default=fields.get("default", int), max=fields.get("max", int))
    fields.done()
    return bounds


def _strings(data: Sequence[Any], where: str) -> tuple[str, ...]:
    if not all(isinstance(item, str) for item in data):
        raise ModelFormatError(f"{where}: expected a list of strings")
    return tuple(data)


# -- a user's request ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """A user's validated request. The job script's variables come from it alone (``job_vars``)."""

    account: str  # "" when Slurm picks the user's default account
    time_minutes: int
    cores: int
    memory_mb: int
    gpu_type: str | None
    gpu_count: int
    partition: str
    interface: str
    node_types: tuple[str, ...]  # the node types it fits on

    @property
    def runtime(self) -> str:
        return format_slurm_time(self.time_minutes)

    @property
    def memory(self) -> str:
        return format_memory(self.memory_mb)

    @property
    def gpus(self) -> str:
        return f"{self.gpu_type}:{self.gpu_count}" if self.gpu_type else ""

    @property
    def default_url(self) -> str:
        return INTERFACES[self.interface]["url"]

    def job_vars(self) -> dict[str, str]:
        """The job script's variables for its ``#SBATCH`` lines (``--account``, ``--time``, ``--cpus-per-task``,
        ``--mem``, ``--gpus-per-node``, ``--partition``); ``""``: the line is left out."""
        return {
            "account": self.account,
            "runtime": self.runtime,
            "nprocs": str(self.cores),
            "memory": self.memory,
            "gpus": self.gpus,
            "partition": self.partition,
        }

    def to_data(self) -> dict[str, Any]:
        """JSON data: the request's values, with the job script's forms of them (the filter's answer)."""
        return {
            **self.job_vars(),
            "time_minutes": self.time_minutes,
            "cores": self.cores,
            "memory_mb": self.memory_mb,
            "gpu_type": self.gpu_type or "",
            "gpu_count": self.gpu_count,
            "interface": self.interface,
            "default_url": self.default_url,
            "node_types": list(self.node_types),
        }
