"""What the Server Options form asks Slurm about the user who opens it, for her only: her accounts, her other
interactive jobs, what her last session used, and her start estimates' command and bounds.

``UserQueries`` is the hub services' part for the form (``HubServices.queries``, configured as
``c.UserQueries.*``), beside what keeps servers' jobs (the board, the ledger, the reconciler). Each query is one
bounded command run as the hub's own user through ``HubServices.run`` (the estimate runs as the user, by its own
sudo rule), its answer checked by its module (``accounts``, ``interactive``, ``usage``, ``estimate``) and reused
per user for a short time; none raises: what Slurm does not answer is not shown, and the form works without it.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, cast

from traitlets import Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from jupyterhub_hpc import interactive
from jupyterhub_hpc.accounts import offered_accounts
from jupyterhub_hpc.estimate_gate import EstimateGate
from jupyterhub_hpc.usage import LastUsage, SessionUsage
from jupyterhub_hpc.usage import command as usage_command

__all__ = ["UserQueries"]

T = TypeVar("T")

# A user's cached answers are dropped all at once past this many users (a hub's users, not an attacker's names:
# every query is for a logged-in user).
_MAX_USERS = 10_000


class UserQueries(LoggingConfigurable):
    """The form's queries about one user, each cached per user (``parent``: the hub's ``HubServices``)."""

    accounts_cmd = Unicode(
        "/usr/bin/sacctmgr --noheader --parsable2 show associations user={username} format=account",
        help="Lists the user's Slurm accounts, one per line. Empty: no account list (prefix check only).",
    ).tag(config=True)

    accounts_cache_seconds = Float(300.0, help="How long a user's account list is reused.").tag(config=True)

    interactive_jobs_cmd = Unicode(
        help="The user's jobs ({username} shell-quoted), run as the hub's user, in squeue's -O fields of "
        "jupyterhub_hpc.interactive.FORMAT: the form names her other interactive jobs (the one-interactive-job "
        "rule). Empty: not asked.",
    ).tag(config=True)

    interactive_jobs_cache_seconds = Float(
        5.0, help="How long the form reuses a user's list of other interactive jobs (the cancel page never does)."
    ).tag(config=True)

    usage_cmd = Unicode(
        help="What the user's last session used ({username} shell-quoted), run as the hub's user: its jobs with the "
        "hub's job name that ended in the last 14 days, in jupyterhub_hpc.usage's format, told on the next form. "
        "The hub's user must read the users' accounting (as for HubServices.job_end_cmd). Empty: not told.",
    ).tag(config=True)

    usage_cache_seconds = Float(60.0, help="How long a user's last-session usage is reused.").tag(config=True)

    estimate_cmd = Unicode(
        "",
        help="Slurm's start estimate for the form's values (estimate.py): the job script a spawn would submit, on "
        "stdin, run as the user with HubServices.exec_prefix, for example '/usr/bin/sbatch --test-only'. The sudo "
        "rule names exactly this command. Empty: the form shows no estimate.",
    ).tag(config=True)

    estimate_timeout = Float(
        10.0, help="Seconds an estimate may take (at most HubServices.command_timeout); then the form says so."
    ).tag(config=True)

    estimate_per_minute = Integer(
        12,
        min=1,
        help="Start estimates one user may ask Slurm for in a minute; the form asks after each change of its "
        "values, and a repeated request is answered from the cache.",
    ).tag(config=True)

    estimate_concurrency = Integer(
        2, min=1, help="Start estimates the hub asks Slurm for at once, all users together; more get 'try again'."
    ).tag(config=True)

    estimate_hub_per_minute = Integer(
        120,
        min=1,
        help="Start estimates the hub asks Slurm for in a minute, all users together (each is a will-run request "
        "slurmctld answers under its locks); more get 'try again'.",
    ).tag(config=True)

    estimate_cache_seconds = Float(
        20.0, help="Seconds a user's estimate for the same request is answered again without asking Slurm."
    ).tag(config=True)

    query_timeout = Float(
        5.0,
        help="Seconds each of the form's queries (and an estimate, with estimate_timeout) may take; the form shows "
        "without an answer that did not come in time.",
    ).tag(config=True)

    query_concurrency = Integer(
        2,
        min=1,
        help="The form's queries and estimates the hub runs at once, all users together, in slots of their own: "
        "never one a spawn's sbatch or a stop's scancel waits for (HubServices.command_concurrency).",
    ).tag(config=True)

    @default("interactive_jobs_cmd")
    def _interactive_jobs_cmd_default(self) -> str:
        return f"{self.services.squeue} --noheader --user={{username}} -O {shlex.quote(interactive.FORMAT)}"

    @default("usage_cmd")
    def _usage_cmd_default(self) -> str:
        return usage_command(self.services.sacct, self.services.job_name)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services: Any = self.parent  # HubServices: run, squeue, sacct, job_name
        self.estimates = EstimateGate(
            self.estimate_per_minute,
            self.estimate_concurrency,
            self.estimate_cache_seconds,
            hub_per_minute=self.estimate_hub_per_minute,
        )
        self._accounts: dict[str, tuple[float, list[str] | None]] = {}
        self._interactive: dict[str, tuple[float, list[interactive.OtherJob]]] = {}
        self._usage = LastUsage()
        # One query of a kind per user at a time: requests that arrive together share its answer (a user who opens
        # the form many times at once asks Slurm once).
        self._inflight: dict[tuple[str, str], asyncio.Future[Any]] = {}

    @property
    def pool(self) -> tuple[str, int]:
        """The form's own command slots (HubServices.run's ``pool``)."""
        return ("form", self.query_concurrency)

    async def _once(self, kind: str, user: str, ask: Callable[[], Awaitable[T]]) -> T:
        key = (kind, user)
        running = self._inflight.get(key)
        if running is None:
            running = asyncio.ensure_future(ask())
            self._inflight[key] = running
            running.add_done_callback(lambda _done: self._inflight.pop(key, None))
        return cast(T, await asyncio.shield(running))

    async def user_accounts(self, user: str, prefixes: Iterable[str]) -> list[str] | None:
        """The user's accounts matching the cluster's prefixes; None when Slurm cannot tell."""
        cached = self._accounts.get(user)
        if cached and time.monotonic() - cached[0] < self.accounts_cache_seconds:
            return cached[1]
        return await self._once("accounts", user, lambda: self._read_accounts(user, list(prefixes)))

    async def _read_accounts(self, user: str, prefixes: list[str]) -> list[str] | None:
        accounts: list[str] | None = None
        if self.accounts_cmd:
            cmd = self.accounts_cmd.format(username=shlex.quote(user))
            result = await self.services.run(cmd, timeout=self.query_timeout, pool=self.pool)
            if result.returncode == 0:
                accounts = offered_accounts(result.stdout.decode(errors="replace"), prefixes)
            else:
                problem = result.stderr.decode(errors="replace").strip()[-300:]
                self.log.warning("Cannot list Slurm accounts of %s (%s): %s", user, cmd, problem)
        _keep(self._accounts, user, accounts)
        return accounts

    async def other_interactive_jobs(
        self, user: str, exclude: Iterable[str] = (), fresh: bool = False
    ) -> list[interactive.OtherJob]:
        """The user's interactive jobs on the cluster (allocations, and sessions of this hub), without the jobs in
        ``exclude`` (the server being spawned); [] when Slurm does not answer. Unless ``fresh`` (the cancel page
        asks Slurm every time), a list a few seconds old is reused."""
        excluded = set(exclude)
        cached = self._interactive.get(user)
        if not fresh and cached and time.monotonic() - cached[0] < self.interactive_jobs_cache_seconds:
            return [job for job in cached[1] if job.id not in excluded]
        jobs = await self._once("interactive", user, lambda: self._read_interactive(user))
        return [job for job in jobs if job.id not in excluded]

    async def _read_interactive(self, user: str) -> list[interactive.OtherJob]:
        jobs: list[interactive.OtherJob] = []
        if self.interactive_jobs_cmd:
            cmd = self.interactive_jobs_cmd.format(username=shlex.quote(user))
            result = await self.services.run(
                cmd, limit=interactive.OUTPUT_LIMIT, timeout=self.query_timeout, pool=self.pool
            )
            if result.returncode == 0 and not result.timed_out:
                jobs = interactive.parse(result.stdout.decode(errors="replace"), user, self.services.job_name)
            else:
                problem = result.stderr.decode(errors="replace").strip()[-300:]
                self.log.warning("Cannot list the interactive jobs of %s (%s): %s", user, cmd, problem or "no answer")
        _keep(self._interactive, user, jobs)
        return jobs

    async def last_usage(self, user: str) -> SessionUsage | None:
        """What the user's last session used (``usage.LastUsage``); None if not told."""
        cmd = self.usage_cmd.format(username=shlex.quote(user)) if self.usage_cmd else ""

        async def run(cmd: str, limit: int) -> Any:
            return await self.services.run(cmd, limit=limit, timeout=self.query_timeout, pool=self.pool)

        return await self._once(
            "usage", user, lambda: self._usage.get(user, cmd, self.usage_cache_seconds, run, self.log)
        )

    def session_started(self, user: str) -> None:
        """A new session of the user: the next form tells of it, not of the one before."""
        self._usage.forget(user)


def _keep(cache: dict[str, tuple[float, Any]], user: str, value: Any) -> None:
    if len(cache) > _MAX_USERS:
        cache.clear()
    cache[user] = (time.monotonic(), value)
