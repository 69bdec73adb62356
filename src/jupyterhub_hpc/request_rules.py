"""The spawn-time rules: a user's Server Options checked against the cluster model into a ``model.Request``.

The hub's spawner (``jupyterhub_hpc.spawner``) validates every request, from the form or the REST API, once, with
``validate_request``, into the frozen ``Request`` that alone fills the job script. Every message names the field by
its form label (``model.LABELS``), the value and the limit, in the language of the request (``jupyterhub_hpc.i18n``);
a request with several problems gets them all. What reaches the job script's ``#SBATCH`` lines is matched once more
against strict patterns on the way out.

Each rule is a small function of the options and a ``units.Problems`` that collects what it finds broken. Pure
functions, no I/O; values are read with the strict grammar of ``units``. Besides ``validate_request`` this module
gives the names its callers need with it: ``LABELS`` (the fields), ``MAX_TEXT`` (the longest value) and
``ResourceError`` (what it raises).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jupyterhub_hpc.accounts import ACCOUNT
from jupyterhub_hpc.cluster_rules import fitting_node_types, gpu_choices
from jupyterhub_hpc.i18n import _
from jupyterhub_hpc.model import LABELS, Bounds, Cluster, Form, Request
from jupyterhub_hpc.units import (
    MAX_TEXT,
    NAME,
    PARTITION,
    SHOWN,
    Problems,
    ResourceError,
    duration_minutes,
    hours,
    memory_mb,
    plain,
    show,
    text,
    whole_number,
)

__all__ = ["LABELS", "MAX_TEXT", "ResourceError", "validate_request"]

#: What reaches the job script's #SBATCH lines, checked once more on the way out (the cluster model and the
#: user's account list come from elsewhere): ASCII, no whitespace, no shell metacharacter.
_SLURM_VALUES: dict[str, tuple[str, re.Pattern[str]]] = {
    "account": ("Account", re.compile(rf"(?:{ACCOUNT.pattern})?", re.ASCII)),
    "runtime": (LABELS["time"], re.compile(r"(?:[1-9][0-9]*-)?[0-9]{2}:[0-5][0-9]:00", re.ASCII)),
    "nprocs": (LABELS["cores"], re.compile(r"[1-9][0-9]*", re.ASCII)),
    "memory": (LABELS["memory"], re.compile(r"[1-9][0-9]*M", re.ASCII)),
    "gpus": (LABELS["gpu"], re.compile(rf"(?:{NAME.pattern}:[1-9][0-9]*)?", re.ASCII)),
    "partition": ("Partition (hpc_cluster.form.partition)", PARTITION),
}


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

    * account: ``[A-Za-z0-9][A-Za-z0-9_.-]*`` (``accounts.ACCOUNT``), starting with one of the cluster's account
      prefixes.
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
            _("Server options: expected a JSON object of fields, got {value}").format(value=show(options))
        )
    form = cluster.form
    problems = Problems()
    _unknown_options(options, problems)
    account = _account(options, cluster.account_prefixes, accounts, problems)
    # Time, cores, memory: the form's default when absent, its bounds when present.
    time_minutes = _bounded(options, "time", form.time, _minutes, hours, problems)
    cores = _bounded(options, "cores", form.cores, _cores, str, problems)
    memory = _bounded(options, "memory", form.memory, _memory_mb, str, problems)
    gpu_type, gpu_count = _gpu(options, cluster, problems)
    interface = _interface(options, form, problems)
    problems.raise_any()
    assert time_minutes is not None and cores is not None and memory is not None

    request = Request(
        account=account,
        time_minutes=time_minutes,
        cores=cores,
        memory_mb=memory,
        gpu_type=gpu_type,
        gpu_count=gpu_count,
        partition=form.partition,
        interface=interface,
        node_types=tuple(_fitting_node_types(cluster, cores, memory, gpu_type, gpu_count)),
    )
    if gpu_type and form.enforce_gpu_recommendation:
        _within_the_gpu_recommendation(cluster, request, problems)
        problems.raise_any()
    _slurm_values(request, problems)
    problems.raise_any()
    return request


# -- reading the options -------------------------------------------------------------------------------------
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
    text(value, _label(key))
    return value


def _field(options: Mapping[str, Any], key: str, problems: Problems) -> Any:
    """The one value of a field (``None`` when it cannot be read: its problem is collected)."""
    return problems.guard(_single, options, key)


def _blank(value: Any) -> bool:
    """Absent: ``None`` or ``""`` (an empty form field). Whitespace is not absent: it is refused."""
    return value is None or (isinstance(value, str) and not value)


def _option_name(key: Any) -> str:
    return key if isinstance(key, str) and NAME.fullmatch(key) and len(key) <= SHOWN else show(key)


def _cores(value: Any, field: str) -> int:
    return whole_number(value, field, strict=True)


def _minutes(value: Any, field: str) -> int:
    return duration_minutes(value, field, strict=True)


def _memory_mb(value: Any, field: str) -> int:
    return memory_mb(value, field, strict=True)


# -- each field ----------------------------------------------------------------------------------------------
def _unknown_options(options: Mapping[Any, Any], problems: Problems) -> None:
    # Keys of any type (a Python caller's ints or None): never sorted together, never printed whole.
    unknown = sorted(_option_name(key) for key in options if not (isinstance(key, str) and key in LABELS))
    if not unknown:
        return
    names = ", ".join(unknown[:5])
    if len(unknown) > 5:
        problems.add(_("Unknown option(s): {names} (and {count} more)").format(names=names, count=len(unknown) - 5))
    else:
        problems.add(_("Unknown option(s): {names}").format(names=names))


def _account(
    options: Mapping[str, Any], prefixes: Sequence[str], accounts: Sequence[str] | None, problems: Problems
) -> str:
    """The account ("": Slurm's default account for the user): one of the user's ``accounts`` when known."""
    account = _field(options, "account", problems)
    if _blank(account):
        return _default_account(accounts, problems)
    if not isinstance(account, str) or not ACCOUNT.fullmatch(account):
        # Found by the property tests: a falsy non-string (0, -0.0, False) must not slip through as "no account",
        # and 'def-alice\n' must not pass as 'def-alice' ('$' matches before a final newline: fullmatch).
        problems.add(_("Account: {value} is not a valid account name").format(value=show(account)))
        return ""
    if prefixes and not account.startswith(tuple(prefixes)):
        problems.add(
            _("Account: {value} does not start with one of {prefixes}").format(
                value=show(account), prefixes=", ".join(prefixes)
            )
        )
    elif accounts is not None and account not in accounts:
        problems.add(
            _("Account: {value} is not one of your accounts ({accounts})").format(
                value=show(account), accounts=", ".join(accounts) if accounts else _("none")
            )
        )
    return account


def _default_account(accounts: Sequence[str] | None, problems: Problems) -> str:
    """No account asked for: the user's only account, or Slurm's default ("") when Slurm could not tell."""
    if accounts and len(accounts) == 1:
        return accounts[0]
    if accounts:
        problems.add(_("Account: choose one of your accounts ({accounts})").format(accounts=", ".join(accounts)))
    return ""


def _bounded(
    options: Mapping[str, Any],
    key: str,
    bounds: Bounds,
    parse: Callable[[Any, str], int],
    unit: Callable[[int], str],
    problems: Problems,
) -> int | None:
    """A number within the form's bounds, its default when absent (None: refused, its problem collected)."""
    raw = _field(options, key, problems)
    if _blank(raw):
        return bounds.default
    label = _label(key)
    value: int | None = problems.guard(parse, raw, label)
    if value is None:
        return None
    if value < bounds.min:
        problems.add(
            _("{field}: {value} is below the minimum of {limit}").format(
                field=label, value=plain(raw), limit=unit(bounds.min)
            )
        )
    elif value > bounds.max:
        problems.add(
            _("{field}: {value} is above the maximum of {limit}").format(
                field=label, value=plain(raw), limit=unit(bounds.max)
            )
        )
    return value


def _gpu(options: Mapping[str, Any], cluster: Cluster, problems: Problems) -> tuple[str | None, int]:
    """The GPU type and count asked for: ``(None, 0)`` for none."""
    gpu = _field(options, "gpu", problems)
    if _blank(gpu) or (isinstance(gpu, str) and gpu == "none"):
        return None, 0
    offered = {c.value for c in gpu_choices(cluster)}
    if not isinstance(gpu, str) or gpu not in offered:
        allowed = ", ".join(sorted(offered)) if offered else _("no GPU on this hub")
        problems.add(
            _("GPU: {value} is not offered (choices: none, {allowed})").format(value=show(gpu), allowed=allowed)
        )
        return None, 0
    gpu_type, count = gpu.rsplit(":", 1)
    return gpu_type, int(count)


def _interface(options: Mapping[str, Any], form: Form, problems: Problems) -> Any:
    interface = _field(options, "interface", problems)
    interface = form.default_interface if _blank(interface) else interface
    if not isinstance(interface, str) or interface not in form.interfaces:
        problems.add(
            _("User interface: {value} is not one of {choices}").format(
                value=show(interface), choices=", ".join(form.interfaces)
            )
        )
    return interface


# -- everything together -------------------------------------------------------------------------------------
def _fitting_node_types(cluster: Cluster, cores: int, memory: int, gpu_type: str | None, gpu_count: int) -> list[str]:
    """The node types with cores, memory and GPUs together on one node; none is a ``ResourceError``."""
    fits = fitting_node_types(cluster, cores, memory, gpu_type, gpu_count)
    if fits:
        return fits
    gpu_text = _("{count} x {type} GPU").format(count=gpu_count, type=gpu_type) if gpu_type else _("no GPU")
    largest = "; ".join(
        _("{name}: {cores} cores, {memory} MB").format(name=t.name, cores=t.cores, memory=t.memory_mb)
        + "".join(f", {g.per_node} x {g.name}" for g in t.gpus)
        for t in cluster.node_types
    )
    raise ResourceError(
        _("No node of {cluster} can give {cores} cores, {memory} MB and {gpus} together (node types: {types})").format(
            cluster=cluster.display_name, cores=cores, memory=memory, gpus=gpu_text, types=largest
        )
    )


def _within_the_gpu_recommendation(cluster: Cluster, request: Request, problems: Problems) -> None:
    """At most the cores and memory recommended per GPU, times the GPUs, on the node types the request fits."""
    assert request.gpu_type is not None
    gpu_type, gpu_count = request.gpu_type, request.gpu_count
    per_gpu = [g for n in request.node_types if (g := cluster.node_type(n).gpu(gpu_type)) is not None]
    max_cores = max(g.cores for g in per_gpu) * gpu_count
    max_memory = max(g.memory_mb for g in per_gpu) * gpu_count
    for key, value, limit in (("cores", request.cores, max_cores), ("memory", request.memory_mb, max_memory)):
        if value > limit:
            problems.add(
                _("{field}: {value} is above the {limit} recommended for {count} x {type}").format(
                    field=_label(key), value=value, limit=limit, count=gpu_count, type=gpu_type
                )
            )


def _slurm_values(request: Request, problems: Problems) -> None:
    """The model came from the preflight and is not checked again on the hub: what reaches #SBATCH is, here."""
    job_vars = request.job_vars()
    for key, (label, pattern) in _SLURM_VALUES.items():
        value = job_vars[key]
        if not isinstance(value, str) or len(value) > MAX_TEXT or not pattern.fullmatch(value):
            problems.add(f"{label}: {show(value)} cannot be passed to Slurm (it must match {pattern.pattern})")
