"""The resource model of an HPC cluster, for JupyterHub on Slurm.

One module, two users:

* Ansible's preflight validates each inventory's ``hpc_cluster`` with ``validate_cluster`` (through the filter
  plugin ``filter_plugins/hpc_resources.py``, a thin adapter over this module) and refuses an inconsistent one. The
  ``model.Cluster`` it returns is what the hub receives (serialized with ``Cluster.to_data``, loaded back with
  ``Cluster.from_data``): the model is validated once, on the controller.
* The hub's spawner (``jupyterhub_hpc.spawner``) validates every request, from the form or the REST API, once, with
  ``validate_request``, into the ``model.Request`` that fills the job script.

So the rules exist once. Everything here is a pure function of its arguments: standard library only, no I/O, no
Ansible import. Errors are ``ResourceError`` (a ``ValueError``) whose message names the field, the value and the
limit; the filter plugin turns them into ``AnsibleFilterError`` with the same text.

Units: memory is in MB as Slurm counts them (1 GB = 1024 MB); plain numbers are MB, strings may carry
K/M/G/T. Times are kept in minutes; plain numbers are hours (the form's unit), strings may be ``90m``,
``3h``, ``7d`` or Slurm's ``[D-]HH:MM[:SS]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from jupyterhub_hpc.i18n import N_, _
from jupyterhub_hpc.model import (
    INTERFACES,
    LABELS,
    Bounds,
    Cluster,
    Form,
    GpuChoice,
    GpuType,
    NodeType,
    Request,
    format_memory,
    format_slurm_time,
)

__all__ = [
    "INTERFACES",
    "LABELS",
    "Cluster",
    "Request",
    "ResourceError",
    "fitting_node_types",
    "format_memory",
    "format_slurm_time",
    "gpu_choices",
    "parse_memory_mb",
    "parse_walltime_minutes",
    "validate_cluster",
    "validate_request",
]

# ASCII only (re.ASCII): str.isdigit(), a Unicode \d or \s, and int()/float() accept characters such as '²', '\u0661'
# or '\x1f'. Patterns are used with fullmatch: '$' also matches before a trailing newline.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)
_ACCOUNT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)
_PARTITION_RE = re.compile(r"[A-Za-z0-9_,-]*", re.ASCII)
_NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
_MEMORY_FACTORS: dict[str, Fraction] = {
    "K": Fraction(1, 1024),
    "M": Fraction(1),
    "G": Fraction(1024),
    "T": Fraction(1024**2),
}
_DURATION_FACTORS = {"": 60, "m": 1, "min": 1, "h": 60, "d": 24 * 60}  # no unit: hours
_SLURM_TIME = r"(?:([0-9]+)-)?([0-9]+)(?::([0-9]+))?(?::([0-9]+))?"


def _grammar(pattern: str, strict: bool) -> re.Pattern[str]:
    """``strict``: the pattern alone (a user's request); otherwise ASCII whitespace around and between tokens
    (the inventory's YAML, as documented)."""
    return re.compile(pattern.replace("~", "" if strict else r"\s*"), re.IGNORECASE | re.ASCII)


# A user's request (strict) and the inventory (lenient). The request's memory needs a unit letter before 'B'.
_MEMORY_RE = {
    True: _grammar(rf"{_NUMBER}(?:([KMGT])(?:i?B)?)?", strict=True),
    False: _grammar(rf"~{_NUMBER}~([KMGT])?(?:i?B)?~", strict=False),
}
_DURATION_RE = {strict: _grammar(rf"~{_NUMBER}~(m|min|h|d)?~", strict) for strict in (True, False)}
_SLURM_TIME_RE = {strict: _grammar(rf"~{_SLURM_TIME}~", strict) for strict in (True, False)}
_INT_RE = {strict: _grammar("~([0-9]+)~", strict) for strict in (True, False)}

#: The longest string any value may be: longer ones are refused before any parsing, whatever they contain.
MAX_TEXT = 256
_SHOWN = 40  # a value in a message: at most this many characters of its repr


class ResourceError(ValueError):
    """A value breaks the cluster model. ``problems`` lists each broken rule; ``str()`` joins them."""

    def __init__(self, problems: Sequence[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def _show(value: Any) -> str:
    """``value`` for a message: one line, at most about 40 characters, and cheap whatever it is (a 100k-character
    string, an integer beyond int->str's digit limit, a deeply nested list)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**_SHOWN:
        digits = f"{len(str(abs(value)))}" if value.bit_length() < 4000 else "more than 1200"
        return f"{'-' if value < 0 else ''}<an integer of {digits} digits>"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        # repr escapes every non-printable character (newlines, controls, Unicode separators): one line.
        text = repr(value[: _SHOWN + 1])
        return text if len(value) <= _SHOWN and len(text) <= _SHOWN + 2 else f"{text[:_SHOWN]}...'"
    kind = (
        "list" if isinstance(value, (list, tuple)) else "object" if isinstance(value, Mapping) else type(value).__name__
    )
    return f"<a JSON {kind}>"  # never the repr of a container: it may be huge, or too deep to print


def _plain(value: Any) -> str:
    """A value already known to be in a field's grammar, as the user typed it (``193`` rather than ``'193'``)."""
    return (value if len(value) <= _SHOWN else f"{value[: _SHOWN - 3]}...") if isinstance(value, str) else _show(value)


def _text(value: Any, field: str) -> str | None:
    """``value`` if it is a string of at most ``MAX_TEXT`` characters; ``None`` if not a string."""
    if not isinstance(value, str):
        return None
    if len(value) > MAX_TEXT:
        raise ResourceError(
            _("{field}: {value} is too long ({length} characters, at most {limit})").format(
                field=field, value=_show(value), length=len(value), limit=MAX_TEXT
            )
        )
    return value


# -- units ---------------------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _exact(value: int | float, field: str) -> Fraction:
    """A number, exactly: a float as the decimal it prints as (``0.1`` is 1/10), never via float arithmetic,
    which overflows on integers such as ``10**400`` and rounds ``16.9 * 60`` to 1013.9999999999999."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ResourceError(_("{field}: {value} is not a finite number").format(field=field, value=_show(value)))
        return Fraction(repr(value))
    return Fraction(value)


def _whole_positive(amount: Fraction, value: Any, field: str, positive: str, unit: str) -> int:
    """``amount`` (parsed from ``value``) as a whole, positive number of ``unit``."""
    if amount <= 0:
        raise ResourceError(
            _("{field}: {value} must be {positive}").format(field=field, value=_show(value), positive=_(positive))
        )
    if amount.denominator != 1:
        raise ResourceError(
            _("{field}: {value} is not a whole number of {unit}").format(field=field, value=_show(value), unit=_(unit))
        )
    return int(amount)


def _memory_mb(value: Any, field: str, strict: bool) -> int:
    mb: Fraction
    if _is_number(value):
        mb = _exact(value, field)
    elif (text := _text(value, field)) is not None and (match := _MEMORY_RE[strict].fullmatch(text)):
        mb = Fraction(match.group(1)) * _MEMORY_FACTORS[(match.group(2) or "M").upper()]
    else:
        raise ResourceError(
            _("{field}: {value} is not a memory size (examples: 4000, '4000M', '4G')").format(
                field=field, value=_show(value)
            )
        )
    return _whole_positive(mb, value, field, N_("more than 0 MB"), N_("MB"))


def _duration_minutes(value: Any, field: str, strict: bool) -> int:
    minutes: Fraction
    if _is_number(value):
        minutes = _exact(value, field) * 60
    elif (text := _text(value, field)) is not None and (match := _DURATION_RE[strict].fullmatch(text)):
        minutes = Fraction(match.group(1)) * _DURATION_FACTORS[(match.group(2) or "").lower()]
    elif text is not None and ("-" in text or ":" in text) and (match := _SLURM_TIME_RE[strict].fullmatch(text)):
        days, first, second, third = (int(g) if g else 0 for g in match.groups())
        if match.group(1) is not None:  # D-HH[:MM[:SS]]
            seconds = ((days * 24 + first) * 60 + second) * 60 + third
        elif match.group(4) is not None:  # HH:MM:SS
            seconds = (first * 60 + second) * 60 + third
        else:  # MM:SS
            seconds = first * 60 + second
        minutes = Fraction(-(-seconds // 60))  # seconds round up to a minute, in integers
    else:
        raise ResourceError(
            _("{field}: {value} is not a duration (examples: 3, '90m', '3h', '7d', '1-12:00:00')").format(
                field=field, value=_show(value)
            )
        )
    return _whole_positive(minutes, value, field, N_("longer than 0 minutes"), N_("minutes"))


def parse_memory_mb(value: Any, field: str = "memory") -> int:
    """Memory in whole MB (Slurm's --mem unit). ``4000`` and ``"4000"`` are MB; ``"4G"`` is 4096 MB; ASCII
    whitespace around the number and unit is allowed (inventory YAML: ``"4 GB"``)."""
    return _memory_mb(value, field, strict=False)


def parse_walltime_minutes(value: Any, field: str = "time") -> int:
    """Duration in whole minutes. Numbers (and digit strings) are hours; ``"90m"``, ``"3h"``, ``"7d"`` and
    Slurm's ``"D-HH:MM:SS"``, ``"HH:MM:SS"``, ``"D-HH"`` are accepted; seconds round up to a minute."""
    return _duration_minutes(value, field, strict=False)


def _hours(minutes: int) -> str:
    """Minutes as hours for a message: ``1.5``, ``24`` (never a float overflow, however large)."""
    return f"{minutes / 60:g}" if abs(minutes) < 10**15 else _show(minutes // 60)


# -- the cluster model (deploy time) -------------------------------------------------------------------------
class _Problems:
    """Collects every broken rule, so one preflight run lists them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def guard(self, func: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        try:
            return func(*args)
        except ResourceError as err:
            self.items.extend(err.problems)
            return default


def _int(value: Any, field: str, minimum: int = 1, strict: bool = False) -> int:
    """A whole number: an int (never a bool, never a float) or its ASCII digits as text; ``strict`` (a user's
    request) allows nothing else in the text, otherwise ASCII whitespace around the digits is allowed (YAML)."""
    number = value
    # ASCII spaces only: int() refuses some characters str.isspace() and a Unicode \s accept ('0\x1f').
    if (text := _text(value, field)) is not None and (whole := _INT_RE[strict].fullmatch(text)):
        number = int(whole.group(1))  # at most MAX_TEXT digits: within int()'s digit limit
    if not isinstance(number, int) or isinstance(number, bool):
        if isinstance(number, float):
            message = _("{field}: {value} is not a whole number (an integer, not a float)")
        else:
            message = _("{field}: {value} is not a whole number")
        raise ResourceError(message.format(field=field, value=_show(value)))
    if number < minimum:
        raise ResourceError(
            _("{field}: {value} is below the minimum of {limit}").format(
                field=field, value=_show(number), limit=minimum
            )
        )
    return number


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ResourceError(f"{field}: expected a mapping, got {type(value).__name__}")
    return value


def _name(value: Any, field: str, pattern: re.Pattern[str] = _NAME_RE) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or not pattern.fullmatch(value):
        raise ResourceError(f"{field}: {_show(value)} is not a valid name (letters, digits, '_', '.', '-')")
    return value


def _node_type(raw: Any, path: str, problems: _Problems) -> dict[str, Any] | None:
    spec = problems.guard(_mapping, raw, path)
    if spec is None:
        return None
    count = problems.guard(_int, spec.get("count", 1), f"{path}.count")
    cores = problems.guard(_int, spec.get("cores"), f"{path}.cores")
    memory = problems.guard(parse_memory_mb, spec.get("memory"), f"{path}.memory")
    gpus: dict[str, dict[str, Any]] = {}
    raw_gpus = problems.guard(_mapping, spec.get("gpus", {}), f"{path}.gpus", default={})
    for gpu_type, raw_gpu in raw_gpus.items():
        if problems.guard(_name, gpu_type, f"{path}.gpus") is None:  # (the bad name is not part of the path)
            continue
        gpath = f"{path}.gpus.{gpu_type}"
        gspec = problems.guard(_mapping, raw_gpu, gpath)
        if gspec is None:
            continue
        mig_of = gspec.get("mig_of")
        if mig_of is not None and not isinstance(mig_of, str):
            problems.add(f"{gpath}.mig_of: {_show(mig_of)} is not a GPU type name")
            mig_of = None
        gpu = {
            "per_node": problems.guard(_int, gspec.get("per_node"), f"{gpath}.per_node"),
            "cores": problems.guard(_int, gspec.get("cores"), f"{gpath}.cores"),
            "memory_mb": problems.guard(parse_memory_mb, gspec.get("memory"), f"{gpath}.memory"),
            "mig_of": mig_of,
        }
        if gpu["cores"] is not None and cores is not None and gpu["cores"] > cores:
            problems.add(f"{gpath}.cores: {gpu['cores']} is above the node type's {cores} cores")
        if gpu["memory_mb"] is not None and memory is not None and gpu["memory_mb"] > memory:
            problems.add(f"{gpath}.memory: {gpu['memory_mb']} MB is above the node type's {memory} MB")
        if None not in (gpu["cores"], gpu["per_node"], cores) and gpu["cores"] * gpu["per_node"] > cores:
            problems.add(
                f"{gpath}: {gpu['per_node']} GPUs x {gpu['cores']} recommended cores = "
                f"{gpu['per_node'] * gpu['cores']}, above the node type's {cores} cores"
            )
        gpus[gpu_type] = gpu
    # A MIG slice is a fraction of one of the node's full GPUs: never more cores or memory than it.
    for gpu_type, gpu in gpus.items():
        parent_name = gpu["mig_of"]
        if parent_name is None:
            continue
        gpath = f"{path}.gpus.{gpu_type}.mig_of"
        parent = gpus.get(parent_name)
        if parent is None or parent["mig_of"] is not None:
            problems.add(f"{gpath}: {_show(parent_name)} is not a full GPU type of this node type")
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
    if None in (count, cores, memory):
        return None
    return {"count": count, "cores": cores, "memory_mb": memory, "gpus": gpus}


def _bounds(raw: Any, path: str, parse: Callable[[Any, str], int], problems: _Problems) -> dict[str, int] | None:
    spec = problems.guard(_mapping, raw, path)
    if spec is None:
        return None
    out = {key: problems.guard(parse, spec.get(key), f"{path}.{key}") for key in ("min", "default", "max")}
    if None in out.values():
        return None
    if out["min"] > out["max"]:
        problems.add(f"{path}.min: {_show(spec.get('min'))} is above {path}.max ({_show(spec.get('max'))})")
    elif not out["min"] <= out["default"] <= out["max"]:
        problems.add(
            f"{path}.default: {_show(spec.get('default'))} is outside "
            f"[{_show(spec.get('min'))}, {_show(spec.get('max'))}]"
        )
    return out


def validate_cluster(cluster: Any, path: str = "hpc_cluster") -> Cluster:
    """Check a cluster model from the inventory and return it normalized (MB, minutes, defaults filled), as the
    ``Cluster`` the hub receives.

    Raises ``ResourceError`` listing every broken rule, each with its variable path, value and limit.
    """
    problems = _Problems()
    spec = _mapping(cluster, path)
    name = problems.guard(_name, spec.get("name"), f"{path}.name")
    max_walltime = problems.guard(parse_walltime_minutes, spec.get("max_walltime"), f"{path}.max_walltime")

    prefixes_raw = spec.get("account_prefixes", [])
    prefixes: list[str] = []
    if not isinstance(prefixes_raw, Sequence) or isinstance(prefixes_raw, str):
        problems.add(f"{path}.account_prefixes: expected a list of prefixes such as ['def-', 'rrg-']")
    else:
        for i, prefix in enumerate(prefixes_raw):
            if isinstance(prefix, str) and re.fullmatch(r"[A-Za-z0-9_.-]+", prefix):
                prefixes.append(prefix)
            else:
                problems.add(f"{path}.account_prefixes[{i}]: {_show(prefix)} is not an account prefix")

    node_types: dict[str, dict[str, Any]] = {}
    raw_types = problems.guard(_mapping, spec.get("node_types"), f"{path}.node_types", default={})
    if not raw_types:
        problems.add(f"{path}.node_types: at least one node type is required")
    for type_name, raw in raw_types.items():
        if problems.guard(_name, type_name, f"{path}.node_types") is None:  # (the bad name is not part of the path)
            continue
        tpath = f"{path}.node_types.{type_name}"
        node = _node_type(raw, tpath, problems)
        if node is not None:
            node_types[type_name] = node

    form_path = f"{path}.form"
    form_spec = problems.guard(_mapping, spec.get("form"), form_path, default={})
    time = _bounds(form_spec.get("time"), f"{form_path}.time", parse_walltime_minutes, problems)
    cores = _bounds(form_spec.get("cores"), f"{form_path}.cores", _int, problems)
    memory = _bounds(form_spec.get("memory"), f"{form_path}.memory", parse_memory_mb, problems)

    if time and max_walltime and time["max"] > max_walltime:
        problems.add(
            f"{form_path}.time.max: {_show(form_spec['time']['max'])} ({_hours(time['max'])} h) is above "
            f"{path}.max_walltime ({_hours(max_walltime)} h)"
        )
    # Each maximum within what the largest node type has.
    for key, bounds, attr, unit in (("cores", cores, "cores", ""), ("memory", memory, "memory_mb", " MB")):
        if node_types and bounds:
            biggest, node = max(node_types.items(), key=lambda item: item[1][attr])
            if bounds["max"] > node[attr]:
                problems.add(
                    f"{form_path}.{key}.max: {_show(bounds['max'])}{unit} is above the largest node type's {key} "
                    f"({node[attr]}{unit}, node type '{biggest}')"
                )

    gpu_spec = problems.guard(_mapping, form_spec.get("gpus", {}), f"{form_path}.gpus", default={})
    gpu_types_raw = gpu_spec.get("types", [])
    gpu_types: list[str] = []
    if not isinstance(gpu_types_raw, Sequence) or isinstance(gpu_types_raw, str):
        problems.add(f"{form_path}.gpus.types: expected a list of GPU types")
        gpu_types_raw = []
    for i, gpu_type in enumerate(gpu_types_raw):
        if not isinstance(gpu_type, str):  # (a list is not even hashable)
            problems.add(f"{form_path}.gpus.types[{i}]: {_show(gpu_type)} is not a GPU type name")
            continue
        per_node = [n["gpus"][gpu_type]["per_node"] for n in node_types.values() if gpu_type in n["gpus"]]
        if not per_node:
            known = sorted({g for n in node_types.values() for g in n["gpus"]})
            problems.add(
                f"{form_path}.gpus.types[{i}]: {_show(gpu_type)} is on no node type (known GPU types: "
                f"{', '.join(known) if known else 'none'})"
            )
        else:
            gpu_types.append(gpu_type)
    gpu_max = 0
    if gpu_types:
        gpu_max = problems.guard(_int, gpu_spec.get("max", 1), f"{form_path}.gpus.max", default=0)
        most = max(n["gpus"][t]["per_node"] for n in node_types.values() for t in gpu_types if t in n["gpus"])
        if gpu_max > most:
            problems.add(f"{form_path}.gpus.max: {gpu_max} is above the most GPUs of one type on a node ({most})")

    interfaces_raw = form_spec.get("interfaces", list(INTERFACES))
    interfaces: list[str] = []
    if not isinstance(interfaces_raw, Sequence) or isinstance(interfaces_raw, str) or not interfaces_raw:
        problems.add(f"{form_path}.interfaces: expected a non-empty list from {sorted(INTERFACES)}")
    else:
        for i, interface in enumerate(interfaces_raw):
            if isinstance(interface, str) and interface in INTERFACES:
                interfaces.append(interface)
            else:
                problems.add(
                    f"{form_path}.interfaces[{i}]: {_show(interface)} is not one of {', '.join(sorted(INTERFACES))}"
                )
    default_interface = form_spec.get("default_interface", interfaces[0] if interfaces else "lab")
    if interfaces and default_interface not in interfaces:
        problems.add(f"{form_path}.default_interface: {_show(default_interface)} is not in {form_path}.interfaces")

    partition = form_spec.get("partition", "")
    if not isinstance(partition, str) or len(partition) > MAX_TEXT or not _PARTITION_RE.fullmatch(partition):
        problems.add(f"{form_path}.partition: {_show(partition)} is not a Slurm partition list")
    enforce = form_spec.get("enforce_gpu_recommendation", True)
    if not isinstance(enforce, bool):
        problems.add(f"{form_path}.enforce_gpu_recommendation: {_show(enforce)} is not true or false")

    if problems.items:
        raise ResourceError(problems.items)

    assert time and cores and memory and name and max_walltime  # for the type checker: no problems, all parsed
    model = Cluster(
        name=name,
        display_name=str(spec.get("display_name") or name),
        max_walltime_minutes=max_walltime,
        account_prefixes=tuple(prefixes),
        node_types=tuple(
            NodeType(
                name=type_name,
                count=node["count"],
                cores=node["cores"],
                memory_mb=node["memory_mb"],
                gpus=tuple(GpuType(name=gpu_name, **gpu) for gpu_name, gpu in sorted(node["gpus"].items())),
            )
            for type_name, node in sorted(node_types.items())
        ),
        form=Form(
            time=Bounds(**time),
            cores=Bounds(**cores),
            memory=Bounds(**memory),
            gpu_types=tuple(gpu_types),
            gpu_max=gpu_max,
            interfaces=tuple(interfaces),
            default_interface=default_interface,
            partition=partition,
            enforce_gpu_recommendation=enforce,
        ),
    )
    # The form's own default request must be one that some node can run.
    if not fitting_node_types(model, cores["default"], memory["default"], None, 0):
        raise ResourceError(
            f"{form_path}: the default request ({cores['default']} cores, {memory['default']} MB) fits no node type"
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


# -- a user's request (spawn time) ---------------------------------------------------------------------------
#: What reaches the job script's #SBATCH lines, checked once more on the way out (the cluster model and the
#: user's account list come from elsewhere): ASCII, no whitespace, no shell metacharacter.
_SLURM_VALUES: dict[str, tuple[str, re.Pattern[str]]] = {
    "account": ("Account", re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9_.-]*)?", re.ASCII)),
    "runtime": (LABELS["time"], re.compile(r"(?:[1-9][0-9]*-)?[0-9]{2}:[0-5][0-9]:00", re.ASCII)),
    "nprocs": (LABELS["cores"], re.compile(r"[1-9][0-9]*", re.ASCII)),
    "memory": (LABELS["memory"], re.compile(r"[1-9][0-9]*M", re.ASCII)),
    "gpus": (LABELS["gpu"], re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9_.-]*:[1-9][0-9]*)?", re.ASCII)),
    "partition": ("Partition (hpc_cluster.form.partition)", _PARTITION_RE),
}


def _label(key: str) -> str:
    """A form field's label (``LABELS``, marked ``N_`` in model.py) in the current language. Not ``_(LABELS["cores"])``
    where the key is a literal: Babel's extractor (scripts/i18n.py) would take the key for a message."""
    return _(LABELS[key])


def _single(options: Mapping[str, Any], key: str) -> Any:
    """Form data arrives as lists of strings, the REST API as JSON values: take the one value. A string longer
    than ``MAX_TEXT`` is refused here, before any parsing."""
    value = options.get(key)
    if isinstance(value, list):
        if len(value) != 1:
            raise ResourceError(
                _("{field}: expected one value, got {count}").format(field=_label(key), count=len(value))
            )
        value = value[0]
    _text(value, _label(key))
    return value


def _blank(value: Any) -> bool:
    """Absent: ``None`` or ``""`` (an empty form field). Whitespace is not absent: it is refused."""
    return value is None or (isinstance(value, str) and not value)


def _option_name(key: Any) -> str:
    return key if isinstance(key, str) and _NAME_RE.fullmatch(key) and len(key) <= _SHOWN else _show(key)


def _request_cores(value: Any, field: str) -> int:
    return _int(value, field, strict=True)


def _request_minutes(value: Any, field: str) -> int:
    return _duration_minutes(value, field, strict=True)


def _request_memory_mb(value: Any, field: str) -> int:
    return _memory_mb(value, field, strict=True)


def validate_request(options: Mapping[str, Any], cluster: Cluster, accounts: Sequence[str] | None = None) -> Request:
    """Check a user's Server Options against the cluster model and return the ``Request`` for the job script.

    ``options`` keys: account, time (hours), cores, memory (MB), gpu ("none" or "<type>:<count>"),
    interface (lab, notebook, terminal); missing ones take the form's defaults. ``accounts``, when given, are
    the user's own Slurm accounts: the account must be one of them. Raises ``ResourceError`` naming each
    field, value and limit; an accepted request fits on at least one node type with everything together.

    The grammar of each value (the form sends strings, the REST API any JSON). A value may come as a list of
    exactly one value (form data). ``None`` or ``""`` means absent (the default). Every string is at most
    ``MAX_TEXT`` (256) characters, ASCII, with no whitespace anywhere: ``" 4"``, ``"4\\n"``, ``"1_0"``,
    ``"+4"``, ``"1e3"``, ``"NaN"``, ``"\\u0661"`` (Arabic-Indic 1) or ``"\\uff11"`` (fullwidth 1) are refused.
    ``True``/``False`` are never numbers. Anything else (lists, objects, other keys) is refused.

    * account: ``[A-Za-z0-9][A-Za-z0-9_.-]*``, starting with one of the cluster's account prefixes.
    * time (hours): an int or a finite float (hours), or text ``[0-9]+(.[0-9]+)?`` (hours) with an optional unit
      ``m``, ``min``, ``h`` or ``d``, or Slurm's ``D-H``, ``D-H:M``, ``D-H:M:S``, ``H:M:S``, ``M:S`` (digits);
      a whole number of minutes (seconds round up), between the form's min and max.
    * cores: an int, or text ``[0-9]+``; between the form's min and max. A float (even ``4.0``) is refused.
    * memory (MB): an int or a finite float, or text ``[0-9]+(.[0-9]+)?`` with an optional unit ``K``, ``M``,
      ``G``, ``T`` (1024-based, optionally followed by ``B`` or ``iB``); a whole number of MB, between the
      form's min and max.
    * gpu: ``"none"`` or exactly one of the offered ``"<type>:<count>"`` values (``gpu_choices``).
    * interface: exactly one of the form's interfaces.

    Numbers are compared exactly (no float arithmetic): ``10**400`` is simply above the maximum.
    """
    if not isinstance(options, Mapping):
        raise ResourceError(
            _("Server options: expected a JSON object of fields, got {value}").format(value=_show(options))
        )
    model = cluster
    form = model.form
    problems = _Problems()

    # Keys of any type (a Python caller's ints or None): never sorted together, never printed whole.
    unknown = sorted(_option_name(key) for key in options if not (isinstance(key, str) and key in LABELS))
    if unknown:
        names = ", ".join(unknown[:5])
        if len(unknown) > 5:
            problems.add(_("Unknown option(s): {names} (and {count} more)").format(names=names, count=len(unknown) - 5))
        else:
            problems.add(_("Unknown option(s): {names}").format(names=names))

    def field(key: str) -> Any:
        return problems.guard(_single, options, key)

    # Account
    account = field("account")
    prefixes = model.account_prefixes
    if _blank(account):
        account = ""
        if accounts and len(accounts) == 1:
            account = accounts[0]
        elif accounts:
            problems.add(_("Account: choose one of your accounts ({accounts})").format(accounts=", ".join(accounts)))
    elif not isinstance(account, str) or not _ACCOUNT_RE.fullmatch(account):
        # Found by the property tests: a falsy non-string (0, -0.0, False) must not slip through as "no account",
        # and 'def-alice\n' must not pass as 'def-alice' ('$' matches before a final newline: fullmatch).
        problems.add(_("Account: {value} is not a valid account name").format(value=_show(account)))
        account = ""
    else:
        if prefixes and not account.startswith(tuple(prefixes)):
            problems.add(
                _("Account: {value} does not start with one of {prefixes}").format(
                    value=_show(account), prefixes=", ".join(prefixes)
                )
            )
        elif accounts is not None and account not in accounts:
            problems.add(
                _("Account: {value} is not one of your accounts ({accounts})").format(
                    value=_show(account), accounts=", ".join(accounts) if accounts else _("none")
                )
            )

    # Time, cores, memory: the form's default when absent, its bounds when present.
    def bounded(key: str, bounds: Bounds, parse: Callable[[Any, str], int], unit: Callable[[int], str]) -> int | None:
        raw = field(key)
        if _blank(raw):
            return bounds.default
        label = _label(key)
        value: int | None = problems.guard(parse, raw, label)
        if value is None:
            return None
        if value < bounds.min:
            problems.add(
                _("{field}: {value} is below the minimum of {limit}").format(
                    field=label, value=_plain(raw), limit=unit(bounds.min)
                )
            )
        elif value > bounds.max:
            problems.add(
                _("{field}: {value} is above the maximum of {limit}").format(
                    field=label, value=_plain(raw), limit=unit(bounds.max)
                )
            )
        return value

    time_minutes = bounded("time", form.time, _request_minutes, _hours)
    cores = bounded("cores", form.cores, _request_cores, str)
    memory_mb = bounded("memory", form.memory, _request_memory_mb, str)

    # GPU
    gpu = field("gpu")
    gpu_type: str | None = None
    gpu_count = 0
    if not _blank(gpu) and not (isinstance(gpu, str) and gpu == "none"):
        offered = {c.value for c in gpu_choices(model)}
        if not isinstance(gpu, str) or gpu not in offered:
            allowed = ", ".join(sorted(offered)) if offered else _("no GPU on this hub")
            problems.add(
                _("GPU: {value} is not offered (choices: none, {allowed})").format(value=_show(gpu), allowed=allowed)
            )
        else:
            gpu_type, count = gpu.rsplit(":", 1)
            gpu_count = int(count)

    # User interface
    interface = field("interface")
    interface = form.default_interface if _blank(interface) else interface
    if not isinstance(interface, str) or interface not in form.interfaces:
        problems.add(
            _("User interface: {value} is not one of {choices}").format(
                value=_show(interface), choices=", ".join(form.interfaces)
            )
        )

    if problems.items:
        raise ResourceError(problems.items)
    assert time_minutes is not None and cores is not None and memory_mb is not None

    # Cross-field: everything together on one node of one type.
    fits = fitting_node_types(model, cores, memory_mb, gpu_type, gpu_count)
    if not fits:
        gpu_text = _("{count} x {type} GPU").format(count=gpu_count, type=gpu_type) if gpu_type else _("no GPU")
        largest = "; ".join(
            _("{name}: {cores} cores, {memory} MB").format(name=t.name, cores=t.cores, memory=t.memory_mb)
            + "".join(f", {g.per_node} x {g.name}" for g in t.gpus)
            for t in model.node_types
        )
        raise ResourceError(
            _(
                "No node of {cluster} can give {cores} cores, {memory} MB and {gpus} together (node types: {types})"
            ).format(cluster=model.display_name, cores=cores, memory=memory_mb, gpus=gpu_text, types=largest)
        )
    if gpu_type and form.enforce_gpu_recommendation:
        per_gpu = [g for n in fits if (g := model.node_type(n).gpu(gpu_type)) is not None]
        max_cores = max(g.cores for g in per_gpu) * gpu_count
        max_memory = max(g.memory_mb for g in per_gpu) * gpu_count
        if cores > max_cores:
            problems.add(
                _("{field}: {value} is above the {limit} recommended for {count} x {type}").format(
                    field=_label("cores"), value=cores, limit=max_cores, count=gpu_count, type=gpu_type
                )
            )
        if memory_mb > max_memory:
            problems.add(
                _("{field}: {value} is above the {limit} recommended for {count} x {type}").format(
                    field=_label("memory"), value=memory_mb, limit=max_memory, count=gpu_count, type=gpu_type
                )
            )
        if problems.items:
            raise ResourceError(problems.items)

    request = Request(
        account=account,
        time_minutes=time_minutes,
        cores=cores,
        memory_mb=memory_mb,
        gpu_type=gpu_type,
        gpu_count=gpu_count,
        partition=form.partition,
        interface=interface,
        node_types=tuple(fits),
    )
    # The model came from the preflight and is not checked again on the hub: what reaches #SBATCH is, here.
    job_vars = request.job_vars()
    for key, (label, pattern) in _SLURM_VALUES.items():
        value = job_vars[key]
        if not isinstance(value, str) or len(value) > MAX_TEXT or not pattern.fullmatch(value):
            problems.add(f"{label}: {_show(value)} cannot be passed to Slurm (it must match {pattern.pattern})")
    if problems.items:
        raise ResourceError(problems.items)
    return request
