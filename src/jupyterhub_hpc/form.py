"""The Server Options form: HTML from the cluster model, the user's accounts and the previous request.

A pure function (no I/O, no spawner): ``HPCSlurmSpawner.render_form`` gathers its inputs and calls ``render``. The
fields, their limits and their labels come from the validated model and ``model.LABELS``, so the form offers
exactly what ``request_rules.validate_request`` accepts. Its words are in the language of the request
(``jupyterhub_hpc.i18n``); every translated word is escaped as any other value.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from jupyterhub_hpc.cluster_rules import gpu_choices
from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.model import INTERFACES, LABELS, Cluster


def render(model: Cluster, accounts: Sequence[str] | None, prev: Mapping[str, Any], notice: str = "") -> str:
    """The form's HTML for the cluster model (``model.Cluster``), the user's accounts (None:
    Slurm cannot tell, so a free text field with the cluster's prefixes as hint; []: no account field), the
    previous request (its values are shown again, e.g. after a broken rule) and a notice (why the previous server
    ended, ``job_end.JobEnd``). Every value shown is escaped."""
    form = model.form
    cluster = html.escape(_("Cluster: {name}")).format(name=f"<strong>{html.escape(model.display_name)}</strong>")
    parts = [f'<p class="hpc-cluster">{cluster}</p>']
    if notice:
        parts.insert(0, f'<div class="alert alert-warning hpc-job-end" role="status">{html.escape(notice)}</div>')

    if accounts:
        current = prev.get("account") or accounts[0]
        options = "".join(
            f'<option value="{html.escape(a)}"{" selected" if a == current else ""}>{html.escape(a)}</option>'
            for a in accounts
        )
        parts.append(_field("account", f'<select class="form-control" name="account" id="account">{options}</select>'))
    elif accounts is None:
        hint = ", ".join(model.account_prefixes) or _("your account")
        value = html.escape(str(prev.get("account", "")))
        parts.append(
            _field(
                "account",
                f'<input class="form-control" name="account" id="account" value="{value}" '
                f'placeholder="{html.escape(hint)}...">',
            )
        )

    for key, bounds, step, scale in (
        ("time", form.time, "0.5", 60),
        ("cores", form.cores, "1", 1),
        ("memory", form.memory, "1", 1),
    ):
        lo, hi, dflt = (value / scale for value in (bounds.min, bounds.max, bounds.default))
        value = prev.get(key, f"{dflt:g}")
        low, high = f"{lo:g}", f"{hi:g}"
        hint = _("{low} to {high}").format(low=low, high=high)
        parts.append(
            _field(
                key,
                f'<input class="form-control" type="number" name="{key}" id="{key}" min="{low}" max="{high}" '
                f'step="{step}" value="{html.escape(str(value))}" required>'
                f'<small class="form-text text-muted">{html.escape(hint)}</small>',
            )
        )

    choices = gpu_choices(model)
    if choices:
        current = prev.get("gpu", "none")
        # Not _() in the f-string: on Python 3.11 an f-string is one token, where Babel's extractor sees no call.
        none = html.escape(_("None"))
        options = f'<option value="none">{none}</option>' + "".join(
            f'<option value="{html.escape(c.value)}"{" selected" if c.value == current else ""}>'
            f"{c.count} x {html.escape(c.type)}</option>"
            for c in choices
        )
        parts.append(_field("gpu", _select("gpu", options)))

    current = prev.get("interface", form.default_interface)
    # Marked in model.py (N_). Not _(INTERFACES[i]["label"]): Babel's extractor takes any literal in _() for a message.
    names = {i: INTERFACES[i]["label"] for i in form.interfaces}
    labels = {i: html.escape(_(name)) for i, name in names.items()}
    options = "".join(
        f'<option value="{i}"{" selected" if i == current else ""}>{label}</option>' for i, label in labels.items()
    )
    parts.append(
        _field("interface", f'<select class="form-control" name="interface" id="interface">{options}</select>')
    )
    return "\n".join(parts)


def _field(key: str, control: str) -> str:
    label = html.escape(_(LABELS[key]))
    return f'<div class="form-group mb-3"><label for="{key}">{label}</label>{control}</div>'


def _select(key: str, options: str) -> str:
    return f'<select class="form-control" name="{key}" id="{key}">{options}</select>'
