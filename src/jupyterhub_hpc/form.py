"""The Server Options form: HTML from the cluster model, the user's accounts and the previous request.

A pure function (no I/O, no spawner): ``HPCSlurmSpawner.render_form`` gathers its inputs and calls ``render``. The
fields, their limits and their labels come from the validated model and ``model.LABELS``, so the form offers
exactly what ``request_rules.validate_request`` accepts. Its words are in the language of the request
(``jupyterhub_hpc.i18n``); every translated word is escaped as any other value.

The site's hints (``model.Hints``): under the Time field, one line per walltime tier that starts sooner, shown when
the requested time is above it (the largest such tier only). The page shows the line of the time it is rendered
with; a small inline script (fixed text, no value in it) shows the line of the time as it is typed, from the lines'
``data-hpc-above`` (hours). Without JavaScript the form works the same: the line is that of the rendered time.
"""

from __future__ import annotations

import html
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from jupyterhub_hpc.cluster_rules import gpu_choices
from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.interactive import OtherJob
from jupyterhub_hpc.model import INTERFACES, LABELS, Cluster
from jupyterhub_hpc.units import MAX_TEXT
from jupyterhub_hpc.usage import SessionUsage

#: Shows the hint line of the largest tier below the typed time (the lines are in ascending order), hides the others.
#: Fixed text: every value it reads is in the page's data attributes, written and escaped by ``_fast_start``.
_HINT_SCRIPT = """<script>
(function () {
  var time = document.getElementById("time");
  var hints = document.querySelectorAll(".hpc-fast-start [data-hpc-above]");
  if (!time || !hints.length) return;
  time.addEventListener("input", function () {
    var hours = parseFloat(time.value), shown = null;
    hints.forEach(function (hint) {
      if (hours > parseFloat(hint.getAttribute("data-hpc-above"))) shown = hint;
    });
    hints.forEach(function (hint) { hint.hidden = hint !== shown; });
  });
})();
</script>"""


def render(
    model: Cluster,
    accounts: Sequence[str] | None,
    prev: Mapping[str, Any],
    notice: str = "",
    *,
    estimate_url: str = "",
    others: Sequence[OtherJob] = (),
    server_jobs: Collection[str] = (),
    hub_url: str = "/hub/",
    usage: SessionUsage | None = None,
) -> str:
    """The form's HTML for the cluster model (``model.Cluster``), the user's accounts (None:
    Slurm cannot tell, so a free text field with the cluster's prefixes as hint; []: no account field), the
    previous request (its values are shown again, e.g. after a broken rule), a notice (why the previous server
    ended, ``job_end.JobEnd``), the user's other interactive jobs (``others``; ``server_jobs``: those of her
    other servers, stopped from the home page, not cancelled here; ``hub_url``: the hub's base URL, for the links)
    and what her last session used (``usage``, ``usage.SessionUsage``). ``estimate_url``: where the page's script
    asks for Slurm's start estimate (estimate.py; "" for none): a line, hidden until the script fills it, so the
    form without JavaScript is the same form. Every value shown is escaped."""
    form = model.form
    cluster = html.escape(_("Cluster: {name}")).format(name=f"<strong>{html.escape(model.display_name)}</strong>")
    parts = [f'<p class="hpc-cluster">{cluster}</p>']
    if others:
        parts.insert(0, interactive_warning(others, server_jobs, hub_url))
    used = usage.message() if usage else ""
    if used:
        parts.insert(0, f'<div class="alert alert-info hpc-last-usage" role="status">{html.escape(used)}</div>')
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
                f'<small class="form-text text-muted">{html.escape(hint)}</small>'
                + (_fast_start(model, value) if key == "time" else ""),
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
    if estimate_url:
        asking = html.escape(_("Asking Slurm when this session would start..."))
        unknown = html.escape(_("Slurm could not estimate when this session would start. You can still press Start."))
        parts.append(
            f'<p class="hpc-estimate text-muted" id="hpc-estimate" role="status" aria-live="polite" hidden '
            f'data-url="{html.escape(estimate_url)}" data-asking="{asking}" data-unknown="{unknown}"></p>'
        )
    return "\n".join(parts)


def interactive_warning(others: Sequence[OtherJob], server_jobs: Collection[str], hub_url: str) -> str:
    """The one-interactive-job rule before Start: each of the user's other interactive jobs, named, with a link to
    the page that cancels it after a confirmation (a GET that only asks; the cancel is that page's POST), or, for
    another of her servers, to the home page where she stops it. Inside the spawn form: links, not forms (a form
    in a form is not HTML)."""
    items = []
    for job in others:
        start = job.start.replace("T", " ") if job.start else _("not known yet")
        words = _("Slurm job {job_id}: {kind}, {state}, start {start}, time left {time_left}.").format(
            job_id=job.id, kind=job.kind_words(), state=job.state, start=start, time_left=job.time_left
        )
        if job.id in server_jobs:
            label = html.escape(_("Stop it from the home page"))
            action = f'<a class="btn btn-sm btn-outline-secondary" href="{html.escape(hub_url)}home">{label}</a>'
        else:
            label = html.escape(_("Cancel job {job_id}...").format(job_id=job.id))
            url = f"{hub_url}hpc/interactive/cancel?job_id={quote(job.id)}"
            action = (
                f'<a class="btn btn-sm btn-outline-danger hpc-interactive-cancel" href="{html.escape(url)}">{label}</a>'
            )
        items.append(f'<li data-job-id="{html.escape(job.id)}">{html.escape(words)} {action}</li>')
    rule = _(
        "Only one interactive job per user at a time gets the priority boost that starts it in seconds or minutes "
        "(salloc, srun and JupyterHub sessions all count). You already have one, so this session would wait with "
        "the regular batch jobs in the queue, and may not start before the time limit. If you can, stop or cancel "
        "your other interactive job first."
    )
    return (
        '<div class="alert alert-warning hpc-interactive" role="status">'
        f"<p>{html.escape(rule)}</p><ul>{''.join(items)}</ul></div>"
    )


def _fast_start(model: Cluster, value: Any) -> str:
    """The Time field's hint lines (one per tier, all but the crossed one hidden) and their script; "" for none."""
    tiers = model.hints.fast_start_minutes
    if not tiers:
        return ""
    crossed = model.hints.fast_start_tier(_hours(value) * 60)
    cluster = model.display_name
    lines = []
    for i, tier in enumerate(tiers):
        hours = f"{tier // 60}"
        if i == 0:
            text = _("Sessions of {hours} h or less start fastest on {cluster}.").format(hours=hours, cluster=cluster)
        else:
            text = _("Sessions of {hours} h or less start sooner on {cluster}.").format(hours=hours, cluster=cluster)
        hidden = "" if tier == crossed else " hidden"
        lines.append(f'<small class="form-text" data-hpc-above="{hours}"{hidden}>{html.escape(text)}</small>')
    return f'<div class="hpc-fast-start" aria-live="polite">{"".join(lines)}</div>{_HINT_SCRIPT}'


def _hours(value: Any) -> float:
    """The form's time value (hours, as the user typed it) as a number; 0 if it is not one (no hint)."""
    text = str(value)
    if len(text) > MAX_TEXT:  # not a value a field may hold (options.shown_again)
        return 0.0
    try:
        hours = float(text)
    except ValueError:
        return 0.0
    return hours if math.isfinite(hours) else 0.0


def _field(key: str, control: str) -> str:
    label = html.escape(_(LABELS[key]))
    return f'<div class="form-group mb-3"><label for="{key}">{label}</label>{control}</div>'


def _select(key: str, options: str) -> str:
    return f'<select class="form-control" name="{key}" id="{key}">{options}</select>'
