"""What the user's last session used: requested against used resources from Slurm's accounting, told on the form.

Sessions are charged on what they request, not on what they use, and a smaller request starts sooner. The form
says what the user's previous session (the most recent ended job with the hub's job name that ran) used of what it
asked for, from one ``sacct`` run as the hub's own user (``UserQueries.usage_cmd``, its format ``FORMAT``):

* cores: TotalCPU over the elapsed time (the job's TotalCPU, or the sum of its steps' if larger), out of AllocCPUS;
* memory: MaxRSS, the largest of the job's steps' (sacct prints it on ``123.batch``, ``123.extern``, ``123.0``,
  not on the allocation's line), out of ReqMem (``32G``, ``4000M``; before Slurm 21.08 ``4000Mn`` per node or
  ``4000Mc`` per core);
* GPUs: the allocation's ``gres/gpu=N`` (AllocTRES): how many it held (their use is not told).

Slurm's words only, each checked against Slurm's shapes and lengths (the job id, times as ``[DD-[HH:]]MM:SS(.mmm)``,
sizes as ``2048K``, ``512M``, ``1.5T``, bounded counts), the output bounded in bytes (``OUTPUT_LIMIT``), lines
(``MAX_LINES``) and line length (``MAX_LINE``): a line of another shape and the whole answer says nothing (None),
rather than something false. Without jobacct_gather (no MaxRSS) only the cores are told; without TotalCPU only the
memory; without either, nothing. The suggestion (``far_larger``) is made only after a session long enough to tell
(``MIN_SECONDS``) that used less than a quarter (``FAR_LARGER``) of the cores or of the memory it asked for.
"""

from __future__ import annotations

import logging
import re
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from jupyterhub_hpc import i18n
from jupyterhub_hpc.commands import Result
from jupyterhub_hpc.i18n import N_
from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.ledger import JOB_ID

#: sacct's fields, in this order (``--parsable2``: separated by ``|``, none at the end).
FIELDS = ("JobID", "State", "End", "ElapsedRaw", "AllocCPUS", "TotalCPU", "ReqMem", "MaxRSS", "AllocTRES")
FORMAT = ",".join(FIELDS)
#: The ended states sacct is asked for (``--state``): completed, cancelled, timeout, failed, out of memory, node
#: failure, preempted.
STATES = "CD,CA,TO,F,OOM,NF,PR"
#: How far back sacct looks (``--starttime``).
WINDOW = "now-14days"

OUTPUT_LIMIT = 64 * 1024  # bytes of sacct's answer read (a longer one is not told: its newest jobs come last)
MAX_LINES = 2000
MAX_LINE = 512
MIN_SECONDS = 600  # a shorter session tells too little to suggest anything
FAR_LARGER = 0.25  # used less than this share of a request: far larger than the use
MIN_CORES = 2  # one core cannot be made smaller
MIN_MEMORY_MB = 2048  # nor can a small memory request be much smaller
MAX_MB = 1 << 40  # a petabyte in MB: any larger size is not Slurm's
MAX_SECONDS = 10**9  # about 31 years

_STEP = re.compile(r"([0-9]{1,20})\.([A-Za-z0-9_-]{1,32})")  # 123.batch, 123.extern, 123.0, 123.interactive
_OTHER_JOB = re.compile(r"[0-9]{1,20}[_+][0-9A-Za-z_+.\[\]%,-]{1,64}")  # an array's or heterogeneous job's part
_STATE = re.compile(r"[A-Z_]{1,32}(?: by [0-9]{1,10})?")
_END = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}|Unknown|None")
_COUNT = re.compile(r"[0-9]{1,9}")
_TIME = re.compile(
    r"(?:(?:(?P<days>[0-9]{1,5})-)?(?P<hours>[0-9]{1,2}):)?(?P<minutes>[0-9]{1,2}):(?P<seconds>[0-9]{1,2})"
    r"(?:\.(?P<fraction>[0-9]{1,6}))?"
)
_SIZE = re.compile(r"(?P<number>[0-9]{1,13}(?:\.[0-9]{1,3})?)(?P<unit>[KMGTP]?)(?P<per>[nc]?)")
_TRES = re.compile(r"(?P<key>[a-z]{1,16}(?:/[A-Za-z0-9_.:-]{1,64})?)=(?P<value>[0-9]{1,13}(?:\.[0-9]{1,3})?[KMGTP]?)")
_UNITS_MB = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}

SENTENCE = N_("Your last session (Slurm job {job_id}, {duration}) used {what}.")
CORES = N_("{used} of {total} cores")
ONE_CORE = N_("{used} of 1 core")
MEMORY = N_("{used} of {total} GB of memory")
BOTH = N_("{cores} and {memory}")
ONE_GPU = N_("It held 1 GPU.")
GPUS = N_("It held {gpus} GPUs.")
SUGGESTION = N_("A smaller request starts sooner and costs your allocation less.")
HOURS = N_("{hours} h {minutes} min")
MINUTES = N_("{minutes} min")
SECONDS = N_("{seconds} s")


class Malformed(ValueError):
    """A field that is not of Slurm's shape: the whole answer says nothing."""


@dataclass(frozen=True)
class SessionUsage:
    """A session's job as Slurm accounted it: its id, elapsed seconds, allocated cores, CPU seconds (None: not
    accounted), requested memory in MB (None: unknown), largest resident memory of its steps in MB (None: not
    accounted) and GPUs held."""

    job_id: str
    elapsed: int
    cores: int
    cpu_seconds: float | None
    requested_mb: float | None
    max_rss_mb: float | None
    gpus: int = 0

    @property
    def cores_used(self) -> float | None:
        """Cores used on average over the session (at most those allocated); None if not accounted."""
        if not self.cpu_seconds or self.elapsed <= 0 or self.cores <= 0:
            return None
        return min(self.cpu_seconds / self.elapsed, float(self.cores))

    @property
    def memory_known(self) -> bool:
        return bool(self.max_rss_mb) and bool(self.requested_mb)

    def far_larger(self) -> bool:
        """Whether the request was far larger than the use: a session of at least MIN_SECONDS that used less than
        FAR_LARGER of its cores (of two or more) or of its memory (of MIN_MEMORY_MB or more)."""
        if self.elapsed < MIN_SECONDS:
            return False
        used = self.cores_used
        if used is not None and self.cores >= MIN_CORES and used < FAR_LARGER * self.cores:
            return True
        return (
            self.memory_known
            and (self.requested_mb or 0) >= MIN_MEMORY_MB
            and (self.max_rss_mb or 0) < FAR_LARGER * (self.requested_mb or 0)
        )

    def message(self) -> str:
        """What the user is told, in the language of the request ("" if nothing is accounted)."""
        parts = []
        used = self.cores_used
        if used is not None:
            template = ONE_CORE if self.cores == 1 else CORES
            parts.append(_(template).format(used=_decimal(used), total=self.cores))
        if self.memory_known:
            total = round((self.requested_mb or 0) / 1024, 1)
            memory = _(MEMORY).format(
                used=_decimal((self.max_rss_mb or 0) / 1024), total=_decimal(total, keep_zero=False)
            )
            parts.append(memory)
        if not parts:
            return ""
        what = _(BOTH).format(cores=parts[0], memory=parts[1]) if len(parts) == 2 else parts[0]
        sentences = [_(SENTENCE).format(job_id=self.job_id, duration=duration(self.elapsed), what=what)]
        if self.gpus:
            sentences.append(_(ONE_GPU) if self.gpus == 1 else _(GPUS).format(gpus=self.gpus))
        if self.far_larger():
            sentences.append(_(SUGGESTION))
        return " ".join(sentences)


def duration(elapsed: int) -> str:
    """``1 h 02 min``, ``45 min``, ``30 s``."""
    if elapsed < 60:
        return _(SECONDS).format(seconds=elapsed)
    hours, minutes = divmod(elapsed // 60, 60)
    if hours:
        return _(HOURS).format(hours=hours, minutes=f"{minutes:02d}")
    return _(MINUTES).format(minutes=minutes)


def _decimal(value: float, keep_zero: bool = True) -> str:
    """One decimal (``1.1``; ``32`` for 32.0 unless keep_zero), with the language's decimal mark."""
    text = f"{value:.1f}"
    if not keep_zero and text.endswith(".0"):
        text = text[:-2]
    return text.replace(".", ",") if i18n.current() == "fr" else text


def seconds(value: str) -> float | None:
    """Slurm's ``[DD-[HH:]]MM:SS(.mmm)`` in seconds; None if empty."""
    if not value:
        return None
    match = _TIME.fullmatch(value)
    if match is None:
        raise Malformed("time")
    days, hours, minutes, secs = (int(match.group(key) or 0) for key in ("days", "hours", "minutes", "seconds"))
    if minutes > 59 or secs > 59 or hours > 23:
        raise Malformed("time")
    fraction = match.group("fraction")
    return ((days * 24 + hours) * 60 + minutes) * 60 + secs + (float(f"0.{fraction}") if fraction else 0.0)


def megabytes(value: str, bare: str, cores: int = 1, nodes: int = 1) -> float | None:
    """A Slurm size (``2048K``, ``512M``, ``1.5T``; ``bare``: the unit of a number without one) in MB; ``4000Mc``
    is per core, ``4000Mn`` per node (Slurm before 21.08). None if empty."""
    if not value:
        return None
    match = _SIZE.fullmatch(value)
    if match is None:
        raise Malformed("size")
    number = float(match.group("number")) * _UNITS_MB[match.group("unit") or bare]
    per = match.group("per")
    total = number * (cores if per == "c" else nodes if per == "n" else 1)
    if total > MAX_MB:
        raise Malformed("size")
    return total


def count(value: str) -> int:
    if not _COUNT.fullmatch(value):
        raise Malformed("count")
    return int(value)


def tres(value: str) -> dict[str, str]:
    """AllocTRES (``billing=8,cpu=8,gres/gpu=1,mem=32G,node=1``) as a mapping; {} if empty."""
    items = value.split(",") if value else []
    if len(items) > 64:
        raise Malformed("tres")
    found: dict[str, str] = {}
    for item in items:
        match = _TRES.fullmatch(item)
        if match is None:
            raise Malformed("tres")
        found[match.group("key")] = match.group("value")
    return found


@dataclass(frozen=True)
class _Line:
    """One checked line of sacct's answer."""

    end: str
    elapsed: int
    cores: int
    cpu_seconds: float | None
    requested_mb: float | None
    max_rss_mb: float | None
    gpus: int


def _line(fields: list[str]) -> _Line:
    _job, state, end, elapsed, cores, cpu, requested, rss, allocated = fields
    if not _STATE.fullmatch(state) or not _END.fullmatch(end):
        raise Malformed("state")
    resources = tres(allocated)
    alloc_cores = count(cores)
    nodes = count(resources.get("node", "1"))
    gpus = count(resources.get("gres/gpu", "0"))
    elapsed_seconds = count(elapsed) if elapsed else 0
    cpu_seconds = seconds(cpu)
    if elapsed_seconds > MAX_SECONDS or (cpu_seconds or 0) > MAX_SECONDS * max(alloc_cores, 1):
        raise Malformed("time")
    return _Line(
        end,
        elapsed_seconds,
        alloc_cores,
        cpu_seconds,
        megabytes(requested, "M", alloc_cores, nodes),
        megabytes(rss, "K"),
        gpus,
    )


def parse(text: str) -> SessionUsage | None:
    """The most recent ended job that ran, from sacct's answer (``FORMAT``, ``--parsable2``); None if there is
    none, nothing of it is accounted, or any line is not of Slurm's shapes."""
    if len(text) > OUTPUT_LIMIT or text.count("\n") > MAX_LINES:
        return None
    jobs: dict[str, _Line] = {}
    steps: dict[str, list[_Line]] = {}
    try:
        for raw in text.splitlines():
            if not raw.strip():
                continue
            fields = raw.split("|")
            if len(raw) > MAX_LINE or len(fields) != len(FIELDS):
                return None
            job_id = fields[0]
            if JOB_ID.fullmatch(job_id):
                jobs[job_id] = _line(fields)
            elif step := _STEP.fullmatch(job_id):
                steps.setdefault(step.group(1), []).append(_line(fields))
            elif _OTHER_JOB.fullmatch(job_id):
                continue  # a part of an array or heterogeneous job: not a session's
            else:
                return None
    except Malformed:
        return None
    ran = [job_id for job_id, line in jobs.items() if line.elapsed > 0]
    if not ran:
        return None
    job_id = max(ran, key=lambda j: (jobs[j].end if jobs[j].end[0].isdigit() else "", int(j)))
    return _usage(job_id, jobs[job_id], steps.get(job_id, []))


def _usage(job_id: str, job: _Line, steps: list[_Line]) -> SessionUsage | None:
    step_cpu = sum(step.cpu_seconds or 0 for step in steps)
    cpu = max(job.cpu_seconds or 0, step_cpu) or None
    rss = max((line.max_rss_mb or 0 for line in (job, *steps)), default=0) or None
    usage = SessionUsage(job_id, job.elapsed, job.cores, cpu, job.requested_mb, rss, job.gpus)
    return usage if usage.cores_used is not None or usage.memory_known else None


def command(sacct: str, job_name: str) -> str:
    """The sacct command (``{username}``: the user's name, shell-quoted) for the user's sessions' accounting.
    ``--endtime=now``: with ``--state``, sacct's end of the window is its start unless given (the jobs in those
    states at that one moment, 14 days ago: none; found on Slurm 24.11)."""
    return (
        f"{sacct} --noheader --parsable2 --user={{username}} --name={shlex.quote(job_name)} "
        f"--starttime={WINDOW} --endtime=now --state={STATES} --format={FORMAT}"
    )


class LastUsage:
    """Each user's last session's usage, read with one bounded command and reused for a while."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, SessionUsage | None]] = {}

    def forget(self, user: str) -> None:
        self._cache.pop(user, None)

    async def get(
        self,
        user: str,
        cmd: str,
        seconds: float,
        run: Callable[..., Awaitable[Result]],
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> SessionUsage | None:
        """The user's (cached for ``seconds``), read with ``cmd`` through ``run`` (HubServices.run); None if not
        told (no ``cmd``, no such session, nothing accounted, no answer or one of another shape). Never raises."""
        cached = self._cache.get(user)
        if cached and time.monotonic() - cached[0] < seconds:
            return cached[1]
        usage = await self._read(user, cmd, run, log) if cmd else None
        self._cache[user] = (time.monotonic(), usage)
        return usage

    @staticmethod
    async def _read(
        user: str,
        cmd: str,
        run: Callable[..., Awaitable[Result]],
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> SessionUsage | None:
        try:
            result = await run(cmd, limit=OUTPUT_LIMIT)
        except Exception as err:  # the form shows without it
            log.warning("Cannot read the last session's usage of %s (%s): %r", user, cmd, err)
            return None
        if result.timed_out or result.returncode != 0 or result.truncated:
            problem = result.stderr.decode(errors="replace").strip()[-300:]
            how = "no answer" if result.timed_out else "answer too long" if result.truncated else problem
            log.warning("Cannot read the last session's usage of %s (%s): %s", user, cmd, how)
            return None
        return parse(result.stdout.decode(errors="replace"))
