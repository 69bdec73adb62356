"""Slurm's start estimate for the Server Options form, before the user presses Start.

The form posts its values to ``/hub/hpc/estimate`` a few hundred milliseconds after the last change (its script;
without JavaScript the form works as before and shows no estimate). The hub validates them with the very rules of a
spawn (``ServerOptions.validated``: a refused value is a 400 naming the field), renders the very job script a spawn
would submit from that ``Request``, and gives it to ``sbatch --test-only`` run as the user (the sudo rule allows
this one command line, with no argument of the user's: the script arrives on stdin and its directives are the
validated request's). ``--test-only`` submits nothing: Slurm answers when and where the job would start.

Bounded like every command the hub runs for a user, and more:

* seconds: ``UserQueries.estimate_timeout`` (then the command is ended, and the form says Slurm did not answer);
* bytes: the answer is one line; at most ``OUTPUT_LIMIT`` bytes are read, and only a line of Slurm's exact shape
  (checked field by field) becomes an estimate, shown as text (the page sets ``textContent``, never HTML);
* rate: per user, ``UserQueries.estimate_per_minute`` estimates a minute and one at a time; hub-wide, ``concurrency`` at
  once and never a slot a spawn would wait for (a busy gate answers at once, "try again", rather than queueing).
  The same request of the same user within ``cache_seconds`` gets the answer already given, without Slurm.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from jupyterhub.handlers.base import BaseHandler
from tornado import web

from jupyterhub_hpc.estimate_gate import EstimateGate
from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.ledger import JOB_ID
from jupyterhub_hpc.model import Request
from jupyterhub_hpc.options import form_options

__all__ = ["OUTPUT_LIMIT", "Estimate", "EstimateHandler", "Estimator", "parse", "start_estimate"]

#: Bytes of sbatch's answer the hub reads (each stream): the one line it needs is below 300.
OUTPUT_LIMIT = 4096

# sbatch --test-only's answer on stderr (Slurm 22.05 to 24.11, src/sbatch/sbatch.c):
#   sbatch: Job 3 to start at 2026-12-07T23:05:35 using 1 processors on nodes c1 in partition cpu
_ANSWER = re.compile(
    r"sbatch: Job (?P<job>[0-9]{1,10}) to start at (?P<start>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}) "
    r"using (?P<cpus>[0-9]{1,7}) processors on nodes (?P<nodes>[A-Za-z0-9][A-Za-z0-9_.,\[\]-]{0,199}) "
    r"in partition (?P<partition>[A-Za-z0-9_.-]{1,64})"
)
# What Slurm said when it cannot estimate ("sbatch: error: ..."): shown as Slurm's words, checked, shortened.
_REFUSAL = re.compile(r"[A-Za-z0-9 _(),.:;=/'\[\]+-]{1,2000}")
_REFUSAL_SHOWN = 200


@dataclass(frozen=True)
class Estimate:
    """Slurm's answer: when and where the job would start (``start`` None: Slurm did not say; ``problem``: its
    reason, checked)."""

    start: datetime | None = None
    nodes: str = ""
    partition: str = ""
    problem: str = ""

    @property
    def known(self) -> bool:
        return self.start is not None

    def minutes_from(self, now: datetime) -> int:
        """Whole minutes from ``now`` to the start (0: now or past); both the hub's local time, as sbatch prints."""
        if self.start is None:
            return 0
        return max(0, math.ceil((self.start.astimezone() - now.astimezone()).total_seconds() / 60 - 0.5))

    def message(self, request: Request, now: datetime) -> str:
        """The form's line, in the request's language."""
        if self.start is None:
            if self.problem:
                return _("Slurm cannot estimate when this session would start: {reason}").format(reason=self.problem)
            return _("Slurm could not estimate when this session would start. You can still press Start.")
        where = (
            _("on node type {node_type}").format(node_type=request.node_types[0])
            if len(request.node_types) == 1
            else _("on {nodes}").format(nodes=self.nodes)
        )
        minutes = self.minutes_from(now)
        if minutes <= 1:
            return _("Slurm expects this session to start now {where}.").format(where=where)
        if minutes < 120:
            return _("Slurm expects this session to start in about {minutes} min {where}.").format(
                minutes=minutes, where=where
            )
        hours = round(minutes / 60)
        return _("Slurm expects this session to start in about {hours} h {where} (at {time}).").format(
            hours=hours, where=where, time=self.start.astimezone().strftime("%Y-%m-%d %H:%M %Z")
        )


def parse(returncode: int | None, stderr: str) -> Estimate:
    """sbatch --test-only's status and stderr as an ``Estimate``: a line of Slurm's exact shape, or its checked
    reason, or nothing known."""
    if returncode == 0:
        for line in stderr.split("\n")[:20]:
            found = _ANSWER.fullmatch(line.strip())
            if found is None or not JOB_ID.fullmatch(found["job"]):
                continue
            try:
                start = datetime.fromisoformat(found["start"])
            except ValueError:
                continue
            return Estimate(start, found["nodes"], found["partition"])
        return Estimate()
    if returncode is None:
        return Estimate()
    for line in stderr.split("\n")[:20]:
        # Slurm's own refusal only: not sudo's ("Sorry, user ... is not allowed ..." names the hub's account and
        # host), nor a site plugin's note before it.
        if not line.startswith(("sbatch: error: ", "allocation failure: ")):
            continue
        reason = line.strip().removeprefix("sbatch: error: ").removeprefix("Batch job submission failed: ").strip()
        if reason and _REFUSAL.fullmatch(reason):
            if len(reason) > _REFUSAL_SHOWN:
                reason = reason[: _REFUSAL_SHOWN - 3].rstrip() + "..."
            return Estimate(problem=reason)
    return Estimate()


async def estimate_script(spawner: Any, request: Request) -> str:
    """The script a Start of ``request`` would submit (its #SBATCH lines are what Slurm estimates), rendered
    without changing the spawner: batchspawner computes its ``keepvars`` (the names of the job's environment, for
    ``--export``) once per spawner, at the first call, and before a Start the server's URL variables are not in that
    environment yet. A job submitted with names fixed by an estimate would lose JUPYTERHUB_SERVICE_PREFIX and
    serve at the wrong path: so until a Start has fixed them, an estimate takes today's names and keeps nothing."""
    if spawner.trait_has_value("req_keepvars"):
        subvars = spawner.job_script_vars(request)
    else:
        keepvars = ",".join(spawner.get_env())
        extra = getattr(spawner, "req_keepvars_extra", "")
        with_keepvars = {"keepvars": f"{keepvars},{extra}" if extra else keepvars}
        names = [name for name in spawner.trait_names() if name.startswith("req_") and name != "req_keepvars"]
        subvars = {**{name[4:]: getattr(spawner, name) for name in names}, **with_keepvars, **request.job_vars()}
    return str(await spawner._get_batch_script(**subvars, cmd=spawner.cmd_formatted_for_batch()))


def answer_of(estimate: Estimate, request: Request, now: datetime) -> dict[str, str]:
    """The JSON answer for the page: a state ("start", "refused", "unknown"), the line to show, the start (ISO)."""
    state = "start" if estimate.known else ("refused" if estimate.problem else "unknown")
    start = estimate.start.astimezone().isoformat() if estimate.start else ""  # with the hub's zone
    return {"state": state, "message": estimate.message(request, now), "start": start}


class EstimateHandler(BaseHandler):  # type: ignore[misc]
    """POST /hub/hpc/estimate: the form's values (as the form posts them), for the logged-in user's own default
    server. JSON ``{"state", "message", "start"}``; 400 with the broken rules; 429 over the user's rate; 503 when
    the hub is busy with other estimates; 404 when the hub's spawner gives no estimate. JupyterHub has checked the
    XSRF token (the page's fetch sends it as X-XSRFToken) and the login cookie before this runs."""

    @web.authenticated
    async def post(self) -> None:
        spawner = self.current_user.get_spawner("", replace_failed=False)
        if not isinstance(spawner, Estimator) or not spawner.services.queries.estimate_cmd:
            raise web.HTTPError(404, "No start estimate on this hub")
        options = {
            key: [v.decode(errors="replace") for v in values] for key, values in self.request.body_arguments.items()
        }
        status, answer = await start_estimate(spawner, options)
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(answer))


@runtime_checkable
class Estimator(Protocol):
    """What an estimate needs of a spawner (``HPCSlurmSpawner``)."""

    services: Any
    user: Any

    async def validated(self, options: Mapping[str, Any]) -> Request: ...

    def job_script_vars(self, request: Request) -> dict[str, Any]: ...


async def start_estimate(spawner: Estimator, fields: Mapping[str, list[str]]) -> tuple[int, dict[str, str]]:
    """The HTTP status and JSON answer for the form's ``fields``: validated as a spawn's (400 with the broken
    rules), then the gate (429, 503), the cache, and Slurm."""
    try:
        request = await spawner.validated(form_options(fields))
    except ValueError as err:
        return 400, {"state": "invalid", "message": str(err), "start": ""}
    user = spawner.user.name
    queries = spawner.services.queries
    gate: EstimateGate = queries.estimates
    kept = gate.cached(user, request)
    if kept is not None:
        return 200, kept
    refused = gate.admit(user)
    if refused:
        message = (
            _("Too many estimates asked: the next one in a few seconds.")
            if refused == "user"
            else _("The hub is busy with other estimates: the next one in a few seconds.")
        )
        return (429 if refused == "user" else 503), {"state": "later", "message": message, "start": ""}
    answer: dict[str, str] | None = None
    try:  # whatever happens, the user's turn ends (else every later estimate of hers would be a 429)
        script = await estimate_script(spawner, request)
        cmd = spawner.services.as_user(user, queries.estimate_cmd)
        timeout = min(queries.estimate_timeout, queries.query_timeout * 2)
        result = await spawner.services.run(
            cmd, stdin=script.encode(), limit=OUTPUT_LIMIT, timeout=timeout, pool=queries.pool
        )
        estimate = parse(result.returncode, result.stderr.decode(errors="replace"))
        answer = answer_of(estimate, request, datetime.now())
    finally:
        gate.done(user, request, answer)
    return 200, answer
