"""The one-interactive-job rule, told before Start: the user's other interactive jobs on the cluster.

On the clusters of the seeds, only one interactive job per user at a time gets the priority boost that starts it in
seconds or minutes; ``salloc``, ``srun`` and JupyterHub sessions all count, and a second one waits with the regular
batch jobs (often past the spawn's timeout). The Server Options form names the user's other such jobs and offers to
cancel them (``CancelInteractiveHandler``, at ``/hub/hpc/interactive/cancel``).

What counts as another interactive job of the user's: a pending or running job of hers that is an allocation
(squeue's ``BatchFlag`` 0: ``salloc``, ``srun`` outside a batch job), or a batch job with the hub's job name (another
session of this hub, e.g. a named server), except the job of the server being spawned.

The hub asks Slurm (``UserQueries.interactive_jobs_cmd``, run as the hub's own user, bounded in time and bytes) and
reads its answer here: every field is checked against Slurm's shapes and a length, the user name must be the user
asked about, and a line that does not fit is skipped, so nothing but digits, capitals and times ever reaches a page.
The cancel handler asks again (never the cache) and cancels only a job in that fresh list, as the user (sudo), so
Slurm itself refuses another user's job too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jupyterhub_hpc.i18n import N_
from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.job_state import _checked_start
from jupyterhub_hpc.ledger import JOB_ID

Kind = Literal["allocation", "session"]

#: squeue's fields, in this order, each followed by "|" (so the last one too: the line ends with "|").
FORMAT = "JobID:|,BatchFlag:|,State:|,StartTime:|,TimeLeft:|,UserName:|,Name:|"
#: Lines and characters of squeue's answer read at most (a user has a few jobs; more is a queue gone wild).
MAX_LINES = 200
MAX_LINE = 512
#: Bytes of squeue's answer kept.
OUTPUT_LIMIT = 64 * 1024

#: The states of a job that holds (or waits for) the user's boost: listed, not ending.
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "REQUEUED", "RESIZING"})
_STATE = re.compile(r"[A-Z_]{1,32}")
#: squeue's %L / TimeLeft: [days-]hours:minutes:seconds, minutes:seconds, or one of its words.
_TIME_LEFT = re.compile(r"(?:[0-9]{1,5}-)?[0-9]{1,2}:[0-9]{2}:[0-9]{2}|[0-9]{1,2}:[0-9]{2}")
_TIME_WORDS = frozenset({"UNLIMITED", "INVALID", "NOT_SET"})
_NO_START = frozenset({"N/A", "Unknown", "None"})
#: A job name of Slurm's (any printable characters but the separator), only compared, never shown.
_NAME_LIMIT = 200

KIND_WORDS = {
    "allocation": N_("an interactive allocation (salloc or srun)"),
    "session": N_("another session of this hub"),
}


@dataclass(frozen=True)
class OtherJob:
    """One of the user's other interactive jobs, each field checked: ``start`` is ISO 8601 or "" (Slurm does not
    know yet), ``time_left`` Slurm's ``[D-]HH:MM:SS`` or ``MM:SS`` or one of its words."""

    id: str
    kind: Kind
    state: str
    start: str
    time_left: str

    def kind_words(self) -> str:
        return _(KIND_WORDS[self.kind])


def parse_line(line: str, user: str, hub_job_name: str) -> OtherJob | None:
    """One line of squeue's answer (``FORMAT``), or None when any field does not fit, the job is another user's, it
    is a batch job other than the hub's, or it has ended."""
    if len(line) > MAX_LINE:
        return None
    # The job's name is the user's own text, last on the line: split six times, the name is what is left (a "|" in
    # it shifts no field).
    fields = line.rstrip("\r").split("|", 6)
    if len(fields) != 7 or not fields[6].endswith("|"):
        return None
    fields[6] = fields[6][:-1]
    job_id, batch_flag, state, start, time_left, owner, name = (field.strip() for field in fields)
    if not JOB_ID.fullmatch(job_id) or owner != user or not user:
        return None
    if not _STATE.fullmatch(state) or state not in ACTIVE_STATES:
        return None
    if start in _NO_START:
        start = ""
    else:
        start = _checked_start(start)
        if not start:
            return None
    if not (time_left in _TIME_WORDS or _TIME_LEFT.fullmatch(time_left)):
        return None
    if len(name) > _NAME_LIMIT:
        return None
    if batch_flag == "0":
        kind: Kind = "allocation"
    elif batch_flag == "1" and hub_job_name and name == hub_job_name:
        kind = "session"
    else:
        return None  # a batch job of her own (sbatch): it has no boost to take
    return OtherJob(job_id, kind, state, start, time_left)


def parse(output: str, user: str, hub_job_name: str, exclude: Iterable[str] = ()) -> list[OtherJob]:
    """squeue's answer, at most ``MAX_LINES`` lines read, without the jobs in ``exclude`` (the server being
    spawned) and without repeats, in Slurm's order."""
    excluded = set(exclude)
    found: list[OtherJob] = []
    seen: set[str] = set()
    # Lines end at "\n" only: str.splitlines also splits at \x0b, \x1c, \u2028 ..., which a job name may hold.
    for number, line in enumerate(output.split("\n")):
        if number >= MAX_LINES:
            break
        job = parse_line(line, user, hub_job_name)
        if job is not None and job.id not in excluded and job.id not in seen:
            seen.add(job.id)
            found.append(job)
    return found


class RateLimit:
    """At most ``count`` events per ``seconds`` per key (a user): the cancel page's bound."""

    def __init__(self, count: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.count = count
        self.seconds = seconds
        self.clock = clock
        self._events: dict[str, list[float]] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        recent = [t for t in self._events.get(key, []) if now - t < self.seconds]
        if len(recent) >= self.count:
            self._events[key] = recent
            return False
        recent.append(now)
        self._events[key] = recent
        if len(self._events) > 10_000:  # forget idle users
            self._events = {k: v for k, v in self._events.items() if v and now - v[-1] < self.seconds}
        return True


Outcome = Literal["confirm", "cancelled", "failed", "not_yours", "malformed", "too_many"]


@dataclass(frozen=True)
class CancelAnswer:
    """What the cancel page does: its HTTP status, its outcome and the job it is about (None if none of hers)."""

    status: int
    outcome: Outcome
    job: OtherJob | None = None
    problem: str = ""


async def cancel_answer(
    user: str,
    job_id: str,
    confirmed: bool,
    list_jobs: Callable[[], Awaitable[Sequence[OtherJob]]],
    cancel: Callable[[str], Awaitable[Any]],
    allowed: bool = True,
) -> CancelAnswer:
    """The cancel page's decision, apart from tornado: ``job_id`` must be Slurm's digits (400), the rate bound must
    allow it (429), and the job must be in ``list_jobs()``, the user's own interactive jobs as the hub asks Slurm now
    (404 otherwise: another user's job, her own server's, a batch job, an ended one are all "not one of yours").
    Unconfirmed: the confirmation page. Confirmed: ``cancel(job_id)`` (scancel as the user)."""
    if not JOB_ID.fullmatch(job_id or ""):
        return CancelAnswer(400, "malformed")
    if not allowed:
        return CancelAnswer(429, "too_many")
    job = next((job for job in await list_jobs() if job.id == job_id), None)
    if job is None:
        return CancelAnswer(404, "not_yours")
    if not confirmed:
        return CancelAnswer(200, "confirm", job)
    try:
        await cancel(job_id)
    except Exception as err:  # SlurmRefused, CommandNoAnswer: told, never a 500
        problem = str(getattr(err, "stderr", "") or type(err).__name__)
        return CancelAnswer(502, "failed", job, problem.strip()[-200:])
    return CancelAnswer(200, "cancelled", job)
