"""The hub's own Slurm services, one of each per hub: commands, the job board, the ledger and its reconciler, and
the users' accounts.

A spawner keeps one user's server. What the whole hub shares lives here, in one ``HubServices`` object (a traitlets
``SingletonConfigurable`` with its own configuration, ``c.HubServices.*``), as kubespawner keeps its reflectors:

* every command run for a user or for the hub, bounded in seconds, bytes and number at once (``commands``), and
  answered with typed errors: ``SlurmRefused`` (the command said no, with its stderr) and ``CommandNoAnswer``;
* the job board (one ``squeue`` per interval answers every spawner, ``job_board``);
* the ledger of the jobs the hub submitted (``ledger``) and the reconciler, which cancels the recorded jobs no
  server owns and forgets those Slurm says are gone;
* each user's Slurm accounts, cached.

``HubServices.instance(config=...)`` creates it; ``start()`` starts the reconciler (once, however many ask: the hub
as it loads the spawner's module, ``start_with_hub``, and each spawner) and ``stop()`` ends it; ``reset()`` drops
the instance (tests). Spawners ``attach`` themselves: the reconciler asks
each live one which job it owns (``HPCSlurmSpawner.owned_jobs``), and reads the servers the hub's database still
counts as running (those whose spawner is not loaded yet after a restart).
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Iterable
from typing import Any

from traitlets import Float, Integer, Unicode, default
from traitlets.config import SingletonConfigurable

from jupyterhub_hpc.accounts import offered_accounts
from jupyterhub_hpc.commands import Result, clean_env, run_bounded
from jupyterhub_hpc.job_board import JobBoard
from jupyterhub_hpc.job_end import JobEnd
from jupyterhub_hpc.ledger import JOB_ID, JobLedger
from jupyterhub_hpc.names import DEFAULT_USERNAME_PATTERN
from jupyterhub_hpc.reconciler import JobOwner, Reconciler


class SlurmRefused(RuntimeError):
    """A command ended with a non-zero status; ``stderr`` is what it said (Slurm's reason)."""

    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr


class CommandNoAnswer(RuntimeError):
    """A command did not end within command_timeout (it was ended)."""


# The job name the job script gives every server's job (the batchspawner role writes both from one variable).
DEFAULT_JOB_NAME = "jupyterhub"


class HubServices(SingletonConfigurable):
    """What the hub shares among its spawners, created once per hub."""

    command_timeout = Float(
        30.0,
        help="Seconds any command run for a user or the hub (sbatch, squeue, scancel, sacctmgr, the output tail) "
        "may take; then it is ended and counts as no answer.",
    ).tag(config=True)

    command_output_limit = Integer(
        1 << 20, help="Bytes of a command's output (each stream) the hub keeps; the rest is read and dropped."
    ).tag(config=True)

    command_concurrency = Integer(8, help="Commands the hub runs at once; more wait for a free slot.").tag(config=True)

    exec_prefix = Unicode(
        "/usr/bin/sudo -E -u {username}",
        help="What runs a command as a user ({username} shell-quoted); the sudo rule allows exactly these commands.",
    ).tag(config=True)

    cancel_cmd = Unicode(
        "/usr/bin/scancel {job_id}", help="Cancels a job ({job_id}: digits), run as its user with exec_prefix."
    ).tag(config=True)

    squeue = Unicode(
        "/usr/bin/squeue",
        help="squeue on the hub node, which the queries the hub makes as its own user start with: the job board "
        "(job_board_cmd), a pending job's reason (pending_reason_cmd) and the reconciler's search (lost_jobs_cmd).",
    ).tag(config=True)

    sacct = Unicode(
        "/usr/bin/sacct",
        help="sacct on the hub node, run as the hub's user for the accounting of a job that ended under its server "
        "(job_end_cmd).",
    ).tag(config=True)

    job_name = Unicode(
        DEFAULT_JOB_NAME,
        help="The name every server's job has (the job script's --job-name): the reconciler's search looks for it.",
    ).tag(config=True)

    job_board_cmd = Unicode(
        help="One query for all the hub's jobs ({job_ids}: comma-separated), run as the hub's user. The hub must "
        "see all jobs (no PrivateData=jobs, or the hub's user a Slurm operator). Empty: per-job queries only.",
    ).tag(config=True)

    job_board_interval = Float(1.0, help="Seconds between two shared job queries.").tag(config=True)

    job_end_cmd = Unicode(
        help="How a job ended ({job_id}), run as the hub's user when squeue no longer lists it: its state and node, "
        "told to the user on the next form. Empty: squeue's last word only.",
    ).tag(config=True)

    pending_reason_cmd = Unicode(help="Slurm's reason a job is pending, run as the hub's user.").tag(config=True)

    lost_jobs_cmd = Unicode(
        help="The user's jobs with the hub's job name ({username} shell-quoted), run as the hub's user: where the "
        "reconciler looks for a job an unanswered sbatch may have submitted.",
    ).tag(config=True)

    accounts_cmd = Unicode(
        "/usr/bin/sacctmgr --noheader --parsable2 show associations user={username} format=account",
        help="Lists the user's Slurm accounts, one per line. Empty: no account list (prefix check only).",
    ).tag(config=True)

    accounts_cache_seconds = Float(300.0, help="How long a user's account list is reused.").tag(config=True)

    job_ledger_file = Unicode(
        "jupyterhub-jobs.json",
        help="Where the hub records the jobs it submitted until it sees them end (relative: the hub's working "
        "directory). Empty: no ledger, no reconciler.",
    ).tag(config=True)

    username_pattern = Unicode(
        DEFAULT_USERNAME_PATTERN,
        help="The site's user names (the login's pattern too, jupyterhub_hpc.names): the ledger records jobs under "
        "such names only, and the reconciler runs commands as them.",
    ).tag(config=True)

    reconcile_interval = Float(
        60.0,
        help="Seconds between two rounds of the reconciler, which cancels the recorded jobs no server owns "
        "(a stop while Slurm did not answer). 0: never.",
    ).tag(config=True)

    @default("lost_jobs_cmd")
    def _lost_jobs_cmd_default(self) -> str:
        return f"{self.squeue} --noheader --user={{username}} --name={shlex.quote(self.job_name)} --format=%i"

    @default("job_board_cmd")
    def _job_board_cmd_default(self) -> str:
        # The reason last: it may hold spaces ("ReqNodeNotAvail, UnavailableNodes:...").
        return f"{self.squeue} --noheader --jobs={{job_ids}} --format='%i %T %B %S %r'"

    @default("job_end_cmd")
    def _job_end_cmd_default(self) -> str:
        return f"{self.sacct} --noheader --allocations --parsable2 --jobs={{job_id}} --format=State,NodeList"

    @default("pending_reason_cmd")
    def _pending_reason_cmd_default(self) -> str:
        return f"{self.squeue} --noheader --jobs={{job_id}} --format=%r"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ledger = JobLedger(self.job_ledger_file, username_pattern=self.username_pattern)
        self.board = JobBoard(
            self.job_board_cmd,
            self.job_board_interval,
            self.command_timeout,
            self.command_output_limit,
            self.command_concurrency,
        )
        self.reconciler = Reconciler(self)
        self._background: set[asyncio.Future[Any]] = set()  # cancellations of unowned jobs, kept until done
        self._accounts: dict[str, tuple[float, list[str] | None]] = {}

    # -- life ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the reconciler, once (no event loop, no ledger or interval 0: nothing to start)."""
        if self.job_ledger_file and self.reconcile_interval > 0:
            self.reconciler.start(self.reconcile_interval)

    def stop(self) -> None:
        self.reconciler.stop()
        for task in self._background:
            task.cancel()

    @classmethod
    def reset(cls) -> None:
        """Stop and drop the hub's instance (tests; a hub has one for its life)."""
        if cls.initialized():
            cls.instance().stop()
        cls.clear_instance()

    def attach(self, owner: JobOwner, database: Any = None) -> None:
        """A live spawner: the reconciler spares the job it owns. ``database``: the hub's session, for the servers
        whose spawners are not loaded yet."""
        self.reconciler.attach(owner, database)

    # -- commands --------------------------------------------------------------------------------------------
    async def run(
        self, cmd: str, stdin: bytes | None = None, env: dict[str, str] | None = None, limit: int = 0
    ) -> Result:
        """Any command, bounded; only ``clean_env()`` or what the caller names (never the hub's environment)."""
        return await run_bounded(
            cmd,
            env=clean_env() if env is None else env,
            timeout=self.command_timeout,
            limit=limit or self.command_output_limit,
            concurrency=self.command_concurrency,
            stdin=stdin,
        )

    def as_user(self, user: str, cmd: str) -> str:
        return f"{self.exec_prefix.format(username=shlex.quote(user))} {cmd}"

    async def output(self, cmd: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
        """The command's stdout; SlurmRefused (its stderr) or CommandNoAnswer otherwise."""
        result = await self.run(cmd, stdin=stdin.encode() if stdin else None, env=env)
        if result.timed_out:
            self.log.warning("No answer within %g s, ended: %s", self.command_timeout, cmd)
            raise CommandNoAnswer(f"no answer within {self.command_timeout:g} s")
        if result.returncode != 0:
            error = result.stderr.decode(errors="replace").strip()
            self.log.error("Command failed (exit status %s): %s: %s", result.returncode, cmd, error[-500:])
            raise SlurmRefused(error)
        return result.stdout.decode(errors="replace").strip()

    # -- jobs --------------------------------------------------------------------------------------------------
    async def board_line(self, job_id: str) -> str | None:
        """The board's ``%T %B %S %r`` line for the job; "" if Slurm does not list it; None if it gave no answer or
        there is no board (job_board_cmd empty)."""
        return await self.board.status(job_id) if self.job_board_cmd else None

    async def submit(self, user: str, cmd: str, script: str, env: dict[str, str]) -> str:
        """Run sbatch as ``cmd`` says; the job id it answers, recorded before anything else runs ("" if it answered
        none). Never interrupted: a start cancelled meanwhile leaves the submission to finish, and its job is
        cancelled as no server's (it would otherwise run for its whole time limit)."""
        submission = asyncio.ensure_future(self._submit(user, cmd, script, env))
        try:
            return await asyncio.shield(submission)
        except asyncio.CancelledError:
            submission.add_done_callback(lambda done: self._cancel_unowned(done, user))
            raise

    def taken(self, job_id: str) -> None:
        """The start that asked for ``job_id`` owns it now (its spawner's record names it)."""
        self.reconciler.in_flight.discard(job_id)

    async def reconcile(self) -> list[str]:
        """One round of the reconciler now (reconciler.py); the ids it cancelled."""
        return await self.reconciler.reconcile()

    def owned(self) -> set[str]:
        return self.reconciler.owned()

    async def _submit(self, user: str, cmd: str, script: str, env: dict[str, str]) -> str:
        try:
            out = await self.output(cmd, stdin=script, env=env)
        except (SlurmRefused, CommandNoAnswer):
            # No answer, or "Socket timed out" and the like: the job may exist all the same. The reconciler looks
            # for it (a plain refusal costs it one squeue).
            self.ledger.add_lost(user)
            raise
        job_id = out.split(";")[0].strip()  # sbatch --parsable: "id" or "id;cluster"
        if not JOB_ID.fullmatch(job_id):
            self.log.error("Not a job id in sbatch's answer: %r", out[-300:])
            return ""
        self.reconciler.in_flight.add(job_id)
        self.ledger.add(job_id, user)
        return job_id

    def _cancel_unowned(self, submission: asyncio.Future[str], user: str) -> None:
        """The submission of a start that was cancelled meanwhile has ended: its job (if any) is no server's."""
        if submission.cancelled() or submission.exception() is not None or not submission.result():
            return  # no job, or an unanswered sbatch the reconciler looks for (the ledger's lost users)
        job_id = submission.result()
        self.reconciler.in_flight.discard(job_id)
        self.log.warning("The start of %s was stopped while sbatch ran: cancelling its job %s", user, job_id)
        cancel = asyncio.ensure_future(self.cancel_recorded(job_id, user))
        self._background.add(cancel)
        cancel.add_done_callback(self._background.discard)

    async def cancel(self, user: str, job_id: str) -> None:
        """scancel the job as its user; SlurmRefused or CommandNoAnswer if Slurm did not do it."""
        await self.output(self.as_user(user, self.cancel_cmd.format(job_id=job_id)))

    async def cancel_recorded(self, job_id: str, user: str) -> bool:
        """scancel a recorded job as its user; forget it once Slurm says it is cancelled or already gone."""
        result = await self.run(self.as_user(user, self.cancel_cmd.format(job_id=job_id)))
        problem = result.stderr.decode(errors="replace")
        if result.returncode == 0:
            self.log.warning("Cancelled job %s of %s: submitted by the hub, owned by no server", job_id, user)
            self.ledger.remove(job_id)
            return True
        if "Invalid job id" in problem or "already completing or completed" in problem:
            self.ledger.remove(job_id)
        else:  # no answer: next round
            self.log.warning("Cannot cancel job %s of %s yet: %s", job_id, user, problem.strip()[-200:])
        return False

    def gone(self, job_id: str) -> None:
        """Slurm says the job is gone: nothing left to cancel."""
        self.ledger.remove(job_id)

    async def pending_reason(self, job_id: str) -> str:
        try:
            return await self.output(self.pending_reason_cmd.format(job_id=job_id))
        except (SlurmRefused, CommandNoAnswer) as err:
            self.log.warning("Cannot read why job %s is pending: %s", job_id, err)
            return ""

    async def accounted_end(self, end: JobEnd) -> JobEnd | None:
        """``end`` as Slurm's accounting tells it (sacct's first line, ``STATE[ by UID]|NODELIST``): None if the job
        completed by itself; ``end`` unchanged if sacct gives no answer."""
        if not self.job_end_cmd:
            return end
        result = await self.run(self.job_end_cmd.format(job_id=shlex.quote(end.job_id)), limit=4096)
        if result.returncode != 0 or result.timed_out:
            return end
        return JobEnd.from_accounting(end.job_id, result.stdout.decode(errors="replace").partition("\n")[0])

    # -- accounts ----------------------------------------------------------------------------------------------
    async def user_accounts(self, user: str, prefixes: Iterable[str]) -> list[str] | None:
        """The user's accounts matching the cluster's prefixes; None when Slurm cannot tell. Cached per user."""
        cached = self._accounts.get(user)
        if cached and time.monotonic() - cached[0] < self.accounts_cache_seconds:
            return cached[1]
        accounts: list[str] | None = None
        if self.accounts_cmd:
            cmd = self.accounts_cmd.format(username=shlex.quote(user))
            result = await self.run(cmd)
            if result.returncode == 0:
                accounts = offered_accounts(result.stdout.decode(errors="replace"), list(prefixes))
            else:
                problem = result.stderr.decode(errors="replace").strip()[-300:]
                self.log.warning("Cannot list Slurm accounts of %s (%s): %s", user, cmd, problem)
        self._accounts[user] = (time.monotonic(), accounts)
        return accounts


def start_with_hub() -> None:
    """Start the hub's services with the hub (the spawner's module calls this when the hub loads it, while the hub
    loads its configuration): the reconciler runs even while no server does. Outside a hub (no running event loop,
    or no JupyterHub application): nothing; the first spawner starts them then."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    loop.call_soon(_start_for_hub)


def _start_for_hub() -> None:
    from jupyterhub.app import JupyterHub

    if JupyterHub.initialized():
        app = JupyterHub.instance()
        HubServices.instance(config=app.config, log=app.log).start()
