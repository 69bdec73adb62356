"""batchspawner's SlurmSpawner with the Server Options form, validated against the cluster model.

The cluster model is the one Ansible's preflight validated (``resources.validate_cluster``) and the batchspawner role
shipped as JSON data (trait ``cluster``): the spawner loads it into the same ``model.Cluster`` (a structural load with
a schema version) and never validates it again.

Every request, from the form or posted to the REST API as ``user_options``, is validated once by
``jupyterhub_hpc.resources.validate_request`` (the very rules Ansible's preflight uses) into a frozen
``model.Request`` before anything reaches Slurm:

* a form submission that breaks a rule renders the form again with the message (nothing is submitted);
* an API request that breaks a rule gets HTTP 400 with the message (nothing is submitted);
* the job script is rendered from that ``Request`` (``job_request``) alone: batchspawner's submission, which merges the
  raw ``user_options`` into the script's variables, is replaced by one that never reads them.

Slurm is asked about the hub's jobs once per ``job_board_interval`` for all of them (one ``squeue``, the
``JobBoard``), not once per spawn every half second: the scheduler's load does not grow with pending spawns.
A job the board does not list is confirmed gone by the user's own ``squeue`` (batchspawner's query) first.

Accounts offered are the user's own Slurm associations (``sacctmgr``), cached per user, filtered by the
cluster's account prefixes. If ``sacctmgr`` cannot answer (no accounting database), accounts are checked by
prefix only and Slurm has the last word.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import socket
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from batchspawner import SlurmSpawner
from batchspawner.batchspawner import JobStatus, format_template
from jupyterhub import orm
from sqlalchemy.orm import object_session
from tornado import web
from traitlets import Dict, Float, Instance, Integer, Unicode, default

from jupyterhub_hpc import form, hosts, i18n, pending, port_api
from jupyterhub_hpc import resources as rules
from jupyterhub_hpc.accounts import offered_accounts
from jupyterhub_hpc.commands import Result, clean_env, run_bounded
from jupyterhub_hpc.i18n import N_
from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.job_board import JobBoard
from jupyterhub_hpc.job_end import JobEnd, has_ended
from jupyterhub_hpc.ledger import JOB_ID, JobLedger
from jupyterhub_hpc.model import Cluster, Request

# batchspawner's port callback sets any attribute a user's token posts: replaced by one that takes only the port.
port_api.install()
# Each request's pages and messages in its browser's language (i18n.py: a per-request context variable).
i18n.install()
# The hub's pages and API only at the hub's own host, never at a user's (hosts.py); checked before the language.
hosts.install()
# A start its user stopped, a stop during the hub's check: a clear answer, never 500 (pending.py).
pending.install()

# The job's environment variable that names JupyterLab's locale (the users' server configuration reads it).
LAB_LOCALE_ENV = "JUPYTERHUB_HPC_LAB_LOCALE"

# batchspawner's progress messages (its progress()), translated as they are sent (progress below).
BATCHSPAWNER_PROGRESS = (
    N_("Pending in queue..."),
    N_("Cluster job running... waiting to connect"),
    N_("Unknown status..."),
)

# The job-output tail of this very package (a script run as the user, isolated: see job_tail.py).
JOB_TAIL = Path(__file__).with_name("job_tail.py")

# Characters a job's output may not bring into a message shown to the user (controls other than newline and tab).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# JupyterHub shows it as "Spawn failed: <message>", the wording of the seeds' error.
DEFAULT_TIMEOUT_HELP = N_(
    "Timeout. Your job {job_id} was still waiting in the Slurm queue after {seconds} seconds "
    "(Slurm's reason: {reason}), so it was cancelled. Like any interactive job, it waits longer when it asks for "
    "more time, a GPU or many cores: ask only for what you need. If you already have another interactive job on "
    "{cluster}, this one waits with the regular batch jobs: stop that one first if you can. There may also be no "
    "free resources right now: try again later."
)


class CommandNoAnswer(RuntimeError):
    """A command run for a user did not end within command_timeout (it was ended)."""


def form_options(fields: Mapping[str, list[str]]) -> dict[str, str]:
    """The form's fields among posted or linked ones (the first value of each)."""
    return {key: values[0] for key, values in fields.items() if key in rules.LABELS and values}


def shown_again(options: Mapping[str, str]) -> dict[str, str]:
    """What a form may show again of given options: only values a field may hold."""
    return {key: value for key, value in options.items() if len(value) <= rules.MAX_TEXT}


class LinkedSpawn(Exception):
    """A spawn asked for by a link (GET with options): JupyterHub shows the form with this message instead."""


class JobEndedEarly(Exception):
    """The job ended while its server was starting."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


class JobOutputError(RuntimeError):
    """A failed spawn with the end of the job's output, which the user wrote: the user is shown all of it (JupyterHub
    shows ``jupyterhub_message``), the hub's log gets it as one escaped line (``str()``: repr, at most 300
    characters), so no line of a user's output can pass for one of the hub's own in its journal."""

    def __init__(self, message: str, output: str) -> None:
        self.jupyterhub_message = f"{message}\n{output}"
        shown = repr(output[-300:])
        super().__init__(f"{message} [{len(output)} characters of the job's output, the last ones: {shown}]")


class HPCSlurmSpawner(SlurmSpawner):  # type: ignore[misc]
    """SlurmSpawner whose resources come from a validated Server Options form."""

    cluster = Dict(
        help="The cluster model as the preflight validated and serialized it (model.Cluster.to_data, with its schema "
        "version): the batchspawner role's hpc_cluster_model, never the inventory's raw hpc_cluster.",
    ).tag(config=True)

    job_request = Instance(
        Request,
        allow_none=True,
        help="The validated request of the current spawn (set by apply_options): the job script is rendered from it "
        "alone. None: nothing may be submitted.",
    )

    accounts_cmd = Unicode(
        "/usr/bin/sacctmgr --noheader --parsable2 show associations user={username} format=account",
        help="Lists the user's Slurm accounts, one per line. Empty: no account list (prefix check only).",
    ).tag(config=True)

    accounts_cache_seconds = Float(300.0, help="How long a user's account list is reused.").tag(config=True)

    job_output = Unicode(
        ".jupyterhub-slurm-%j.log",
        help="The job's output file (--output), relative to the user's home: %j the job id, %u the user name, %% "
        "a percent sign, no other %, no '..'. Its tail is shown if the job dies (output_tail_cmd finds the file from "
        "this pattern and the job id, as the user: the sudo rule names the pattern).",
    ).tag(config=True)

    output_tail_cmd = Unicode(
        f"/usr/bin/python3 -I -S {shlex.quote(str(JOB_TAIL))} {{max_bytes}} {{job_output}} {{job_id}}",
        help="Prints the size of the job's output file, then at most {max_bytes} bytes of its end (job_tail.py: "
        "the file {job_output} names for the job {job_id} in the running user's home, a regular file only, never "
        "through a link), run as the user with exec_prefix. The sudo rule must name this command with {max_bytes} "
        "and {job_output} filled, the job id as digits (the batchspawner role renders both from one setting). "
        "Empty: do not show it.",
    ).tag(config=True)

    output_tail_bytes = Integer(4096, help="At most this many bytes of a job's output are shown.").tag(config=True)

    output_tail_lines = Integer(30, help="At most this many lines of a job's output are shown.").tag(config=True)

    command_timeout = Float(
        30.0,
        help="Seconds any command run for a user (sbatch, squeue, scancel, sacctmgr, the output tail) may take; "
        "then it is ended and counts as no answer.",
    ).tag(config=True)

    command_output_limit = Integer(
        1 << 20, help="Bytes of a command's output (each stream) the hub keeps; the rest is read and dropped."
    ).tag(config=True)

    command_concurrency = Integer(
        8, help="Commands the hub runs at once for its users; more wait for a free slot."
    ).tag(config=True)

    job_ledger_file = Unicode(
        "jupyterhub-jobs.json",
        help="Where the hub records the jobs it submitted until it sees them end (relative: the hub's working "
        "directory). Empty: no ledger, no reconciler.",
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

    job_end_cmd = Unicode(
        help="How a job ended ({job_id}), run as the hub's user when squeue no longer lists it: its state and node, "
        "told to the user on the next form. Empty: squeue's last word only.",
    ).tag(config=True)

    lost_jobs_cmd = Unicode(
        help="The user's jobs with the hub's job name ({username} shell-quoted), run as the hub's user: where the "
        "reconciler looks for a job an unanswered sbatch may have submitted.",
    ).tag(config=True)

    reconcile_interval = Float(
        60.0,
        help="Seconds between two rounds of the reconciler, which cancels the recorded jobs no server owns "
        "(a stop while Slurm did not answer). 0: never.",
    ).tag(config=True)

    unanswered_polls = Integer(
        3,
        help="Polls in a row, spanning at least that many poll intervals, at which a running server's port does not "
        "accept a connection before its server is ended and its job cancelled (never during the hub's own check "
        "after its restart, which is JupyterHub's). 0: never.",
    ).tag(config=True)

    answer_timeout = Float(5.0, help="Seconds a poll waits for a running server's port to accept.").tag(config=True)

    job_watch_interval = Float(2.0, help="Seconds between checks that a starting job is still there.").tag(config=True)

    job_board_cmd = Unicode(
        help="One query for all the hub's jobs ({job_ids}: comma-separated), run as the hub's user. The hub must "
        "see all jobs (no PrivateData=jobs, or the hub's user a Slurm operator). Empty: per-job queries only.",
    ).tag(config=True)

    job_board_interval = Float(1.0, help="Seconds between two shared job queries.").tag(config=True)

    port_poll_interval = Float(
        0.1,
        help="Once the job has reported its port, seconds between two attempts to connect to it; start() returns "
        "when the server accepts a connection. 0: leave the wait to JupyterHub (its checks back off 0.2, 0.4, "
        "0.8, 1.6 s ..., answering up to 2 s late for a server that takes 1.5 s to start).",
    ).tag(config=True)

    pending_timeout = Float(
        0.0,
        help="Seconds a job may stay pending before the spawn fails and the job is cancelled; 0: start_timeout "
        "minus 10 s (so the user gets this explanation, not the hub's bare timeout).",
    ).tag(config=True)

    timeout_help = Unicode(
        DEFAULT_TIMEOUT_HELP,
        help="What the user is told when the job was still pending at the timeout ({job_id}, {seconds}, "
        "{reason}, {cluster}).",
    ).tag(config=True)

    pending_reason_cmd = Unicode(
        help="Slurm's reason a job is pending, run as the hub's user (as job_board_cmd).",
    ).tag(config=True)

    # The hub's own queries start with the one squeue setting (the role passes batchspawner_squeue there).
    @default("lost_jobs_cmd")
    def _lost_jobs_cmd_default(self) -> str:
        return f"{self.squeue} --noheader --user={{username}} --name=jupyterhub --format=%i"

    @default("job_board_cmd")
    def _job_board_cmd_default(self) -> str:
        return f"{self.squeue} --noheader --jobs={{job_ids}} --format='%i %T %B'"

    @default("job_end_cmd")
    def _job_end_cmd_default(self) -> str:
        return f"{self.sacct} --noheader --allocations --parsable2 --jobs={{job_id}} --format=State,NodeList"

    @default("pending_reason_cmd")
    def _pending_reason_cmd_default(self) -> str:
        return f"{self.squeue} --noheader --jobs={{job_id}} --format=%r"

    _unanswered = 0  # polls in a row at which the running server's port did not answer
    _first_unanswered = 0.0  # when the first of them was
    _address: tuple[str, str] = ("", "")  # the running server's host name and the address it resolved to
    _submitted_job = ""  # the job the current start submitted; a start that does not succeed cancels it
    _in_flight: frozenset[str] = frozenset()  # jobs sbatch answered whose start has not taken them yet
    _background: ClassVar[set[asyncio.Future[Any]]] = set()  # cancellations of unowned jobs, kept until done
    _model: Cluster | None = None
    _submitted: dict[str, str] | None = None  # the form's last options, shown again if a rule is broken
    _linked: dict[str, str] | None = None  # a link's options, shown on the form it asked for (once)
    # The form's options and the request options_from_form validated them into, until apply_options takes it.
    _form_request: tuple[dict[str, str], Request] | None = None
    _job_end: JobEnd | None = None  # the last server's job that ended under the user (told on the next form)
    _boards: ClassVar[dict[tuple[str, float], JobBoard]] = {}
    _accounts_cache: ClassVar[dict[str, tuple[float, list[str] | None]]] = {}
    _ledgers: ClassVar[dict[str, JobLedger]] = {}
    _live: ClassVar[weakref.WeakSet[HPCSlurmSpawner]] = weakref.WeakSet()
    _reconcilers: ClassVar[dict[str, asyncio.Future[None]]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        HPCSlurmSpawner._live.add(self)
        self.start_reconciler()

    # -- commands run for the user: bounded in time and bytes, never with the hub's environment ----------------
    async def run_limited(
        self, cmd: str, stdin: bytes | None = None, env: dict[str, str] | None = None, limit: int = 0
    ) -> Result:
        return await run_bounded(
            cmd,
            env=clean_env() if env is None else env,
            timeout=self.command_timeout,
            limit=limit or self.command_output_limit,
            concurrency=self.command_concurrency,
            stdin=stdin,
        )

    async def run_command(self, cmd: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
        """batchspawner's run_command (stdout on success, RuntimeError with stderr otherwise), bounded. batchspawner
        gives the hub's whole environment to every command but sbatch, and ``sudo -E`` passes it on to a process
        of the user's: here a command gets only ``clean_env()`` or what the caller names (sbatch: get_env())."""
        result = await self.run_limited(cmd, stdin=input.encode() if input else None, env=env)
        if result.timed_out:
            self.log.warning("No answer within %g s, ended: %s", self.command_timeout, cmd)
            raise CommandNoAnswer(f"no answer within {self.command_timeout:g} s")
        if result.returncode != 0:
            error = result.stderr.decode(errors="replace").strip()
            self.log.error("Command failed (exit status %s): %s: %s", result.returncode, cmd, error[-500:])
            raise RuntimeError(error)
        return result.stdout.decode(errors="replace").strip()

    # -- the jobs the hub submitted: recorded, and cancelled when no server owns them ------------------------
    @property
    def ledger(self) -> JobLedger:
        key = self.job_ledger_file
        if key not in self._ledgers:
            self._ledgers[key] = JobLedger(key)
        return self._ledgers[key]

    def start_reconciler(self) -> None:
        if not (self.job_ledger_file and self.reconcile_interval > 0):
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no event loop (constructed outside the hub): nothing to schedule
            return
        running = self._reconcilers.get(self.job_ledger_file)
        if running is None or running.done():
            self._reconcilers[self.job_ledger_file] = asyncio.ensure_future(self._reconcile_forever())

    async def _reconcile_forever(self) -> None:
        while True:
            # The first round waits one interval: after a hub restart, the servers' spawners are loaded first.
            await asyncio.sleep(self.reconcile_interval)
            try:
                await self.reconcile()
            except Exception:  # the loop must outlive any one round's failure
                self.log.exception("Job reconciler round failed")

    async def reconcile(self) -> list[str]:
        """Cancel, as its user, every recorded job no live spawner owns; forget the ones Slurm says are ended.
        Returns the ids cancelled."""
        mine = [s for s in list(self._live) if s.job_ledger_file == self.job_ledger_file]
        owned = {job for s in mine for job in (s.job_id, s._submitted_job, *s._in_flight) if job}
        owned |= self._jobs_in_database()
        cancelled = []
        for job_id, user in sorted(self.ledger.jobs().items()):
            if job_id not in owned and await self._cancel_recorded(job_id, user):
                cancelled.append(job_id)
        for user in self.ledger.lost():
            # Jobs an unanswered sbatch may have submitted: the user's jobs with the hub's job name.
            result = await self.run_limited(self.lost_jobs_cmd.format(username=shlex.quote(user)))
            if result.returncode != 0:
                continue  # no answer yet
            for job_id in result.stdout.decode(errors="replace").split():
                if JOB_ID.fullmatch(job_id) and job_id not in owned:
                    self.ledger.add(job_id, user)  # cancelled from the ledger, this round or the next
                    cancelled += [job_id] if await self._cancel_recorded(job_id, user) else []
            self.ledger.remove_lost(user)
        return cancelled

    def _jobs_in_database(self) -> set[str]:
        """Job ids in the hub's saved spawner states: servers the hub still counts as its own, even those whose
        spawner is not loaded yet (just after a hub restart)."""
        session = object_session(self.orm_spawner) if getattr(self, "orm_spawner", None) is not None else None
        if session is None:
            return set()
        rows = session.query(orm.Spawner.state).all()
        return {str(state.get("job_id", "")) for (state,) in rows if isinstance(state, dict)} - {""}

    async def _cancel_recorded(self, job_id: str, user: str) -> bool:
        """scancel a recorded job as its user; forget it once Slurm says it is cancelled or already gone."""
        prefix = self.exec_prefix.format(username=shlex.quote(user))
        result = await self.run_limited(f"{prefix} {self.batch_cancel_cmd.format(job_id=job_id)}")
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

    @property
    def model(self) -> Cluster:
        """The cluster model, loaded once per spawner from the preflight's (validated there, not here)."""
        if self._model is None:
            self._model = Cluster.from_data(self.cluster, f"{type(self).__name__}.cluster")
        return self._model

    # -- accounts ------------------------------------------------------------------------------------------
    async def user_accounts(self) -> list[str] | None:
        """The user's accounts matching the cluster's prefixes; None when Slurm cannot tell."""
        name = self.user.name
        cached = self._accounts_cache.get(name)
        if cached and time.monotonic() - cached[0] < self.accounts_cache_seconds:
            return cached[1]
        accounts: list[str] | None = None
        if self.accounts_cmd:
            cmd = self.accounts_cmd.format(username=shlex.quote(name))
            result = await self.run_limited(cmd)
            if result.returncode == 0:
                accounts = offered_accounts(result.stdout.decode(errors="replace"), self.model.account_prefixes)
            else:
                problem = result.stderr.decode(errors="replace").strip()[-300:]
                self.log.warning("Cannot list Slurm accounts of %s (%s): %s", name, cmd, problem)
        self._accounts_cache[name] = (time.monotonic(), accounts)
        return accounts

    # -- the form ------------------------------------------------------------------------------------------
    @default("options_form")
    def _options_form_default(self) -> Any:
        return HPCSlurmSpawner.render_form

    async def render_form(self) -> str:
        model = self.model
        accounts = await self.user_accounts()
        previous, self._linked = self._linked or self._submitted or self.user_options or {}, None
        end = self._job_end
        if end is not None and not end.state:  # squeue had forgotten the job: Slurm's accounting, once asked
            self._job_end = end = await self.accounted_end(end)
        notice = end.message() if end else ""
        return form.render(model, accounts, previous, notice)

    async def options_from_query(self, query: dict[str, list[str]]) -> dict[str, str]:
        """A link to /hub/spawn with options never starts a server (a page of another site, or of another user's
        server, could send the user's browser there): JupyterHub shows the form instead, filled with the link's
        values, and only the form's POST (XSRF-checked) or an authenticated API call starts a server."""
        # Shown on this one page only: a link's values are never kept for the user's later forms.
        self._linked = shown_again(form_options(query))
        raise LinkedSpawn(_("Check these Server Options, then press Start."))

    async def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, str]:
        """Form data -> user_options, validated here, once: a broken rule raises ValueError, and the hub shows the
        form again with the message. The request is kept for apply_options, which the spawn runs next."""
        options = form_options(formdata)
        # Shown again in the form if refused: only what a field may hold (the error names the length of the rest).
        self._submitted = shown_again(options)
        self._form_request = (options, await self.validated(options))
        return options

    # -- the user's language ----------------------------------------------------------------------------------
    def get_env(self) -> dict[str, str]:
        """The job's environment, with the JupyterLab locale of the language of the request that started the spawn
        (i18n.LAB_LOCALES: a fixed value per allowed language, never the browser's header; "" for Lab's default),
        which the users' environment's server configuration reads (role jupyter_env). Always set, so the names
        batchspawner exports to the job (keepvars, computed once per spawner) include it whatever the language."""
        env: dict[str, str] = super().get_env()
        env[LAB_LOCALE_ENV] = i18n.lab_locale(i18n.current())
        # sbatch keeps a SLURM_UMASK it is given, and slurmstepd creates the job's output file with it: the log is
        # private from its creation (the job script then sets the site's umask for the server's own files).
        env["SLURM_UMASK"] = "0077"
        return env

    async def progress(self) -> Any:
        """batchspawner's progress messages, in the language of the page that shows them."""
        async for event in super().progress():
            message = event.get("message") if isinstance(event, dict) else None
            yield {**event, "message": _(message)} if isinstance(message, str) else event

    # -- every request (form and API) ----------------------------------------------------------------------
    async def validated(self, options: Mapping[str, Any]) -> Request:
        """The request checked against the model (the one validation), or ValueError with every broken rule."""
        accounts = await self.user_accounts()
        try:
            return rules.validate_request(options, self.model, accounts)
        except rules.ResourceError:
            raise
        except Exception as err:  # a request the rules did not foresee: refused with a message, never a 500
            self.log.warning("Server Options of %s refused, unexpected error: %r", self.user.name, err)
            raise ValueError(_("Invalid Server Options: {error}").format(error=type(err).__name__)) from err

    @default("apply_user_options")
    def _apply_user_options_default(self) -> Any:
        return HPCSlurmSpawner.apply_options

    async def apply_options(self, user_options: dict[str, Any]) -> None:
        """Runs before every spawn (JupyterHub >= 5.3): the request this spawn's job is made from, as job_request.
        From the form: the one options_from_form validated (equal options: form values are strings, equal only to
        the same strings). Otherwise (the REST API, or options the hub kept): validated now, HTTP 400 if refused."""
        self.job_request = None
        pending, self._form_request = self._form_request, None
        if pending is not None and pending[0] == user_options:
            request = pending[1]
        else:
            try:
                request = await self.validated(user_options or {})
            except ValueError as err:  # API clients see every broken rule
                self._keep_options({})
                raise web.HTTPError(400, str(err), reason="Invalid Server Options") from err
        self._keep_options({key: user_options[key] for key in rules.LABELS if key in user_options})
        self.job_request = request
        self.default_url = request.default_url
        self.log.info(
            "Server Options of %s: account=%s time=%s cores=%s memory=%s gpus=%s interface=%s (fits %s)",
            self.user.name,
            request.account or "-",
            request.runtime,
            request.cores,
            request.memory,
            request.gpus or "-",
            request.interface,
            ",".join(request.node_types),
        )

    def _keep_options(self, options: dict[str, Any]) -> None:
        """What the hub keeps of a spawn's options: the validated fields, in memory only (the next form's values),
        nothing of a refused request. JupyterHub stores the raw REST body in its database before apply_options runs
        (so a request of any size and shape would stay for good), and starts a server asked for with an empty body
        with the options it stored last: its record is emptied, so an empty body means the form's defaults."""
        self.user_options = options
        kept = self.orm_spawner
        if kept is not None and kept.user_options:
            kept.user_options = {}
            session = object_session(kept)
            if session is not None:
                session.commit()

    # -- failures users can act on --------------------------------------------------------------------------
    def job_script_vars(self, request: Request) -> dict[str, Any]:
        """The job script's variables: batchspawner's req_* settings (the site's configuration: homedir, keepvars,
        srun, ...) and the validated request's #SBATCH values over them. Never user_options."""
        return {**self.get_req_subvars(), **request.job_vars()}

    async def submit_batch_script(self) -> str:
        """batchspawner's submission, with the script rendered from job_request alone (batchspawner's own merges the
        raw user_options into the script's variables); if Slurm refuses, say so with Slurm's own reason (not a bare
        HTTP 500)."""
        request = self.job_request
        if request is None:
            raise RuntimeError(_("No validated Server Options for this server: nothing was submitted."))
        subvars = self.job_script_vars(request)
        cmd = f"{format_template(self.exec_prefix, **subvars)} {format_template(self.batch_submit_cmd, **subvars)}"
        script = await self._get_batch_script(**subvars, cmd=self.cmd_formatted_for_batch())
        self.log.info("Submitting the job of %s: %s", self.user.name, cmd)
        self.log.debug("Job script:\n%s", script)
        # sbatch is never interrupted: a Stop, Log Out or the API's DELETE that cancels this start while sbatch runs
        # would otherwise lose the id of a job Slurm may already have (it would run for its whole time limit). The
        # submission finishes, records its job in the ledger, and the job is cancelled as no server's.
        submission = asyncio.ensure_future(self._submit(cmd, script))
        try:
            job_id = await asyncio.shield(submission)
        except asyncio.CancelledError:
            submission.add_done_callback(self._cancel_unowned)
            raise
        self.job_id = self._submitted_job = job_id
        self._in_flight = self._in_flight - {job_id}
        return self.job_id

    async def _submit(self, cmd: str, script: str) -> str:
        """Run sbatch; the job id it answers (recorded in the ledger at once), or "" when it answers none."""
        try:
            out = await self.run_command(cmd, input=script, env=self.get_env())
        except RuntimeError as err:
            # No answer, or "Socket timed out" and the like: the job may exist all the same. The reconciler looks
            # for it (a plain refusal costs it one squeue).
            self.ledger.add_lost(self.user.name)
            if isinstance(err, CommandNoAnswer):
                raise RuntimeError(
                    _(
                        "Slurm did not answer within {seconds} s: no server was started. Try again in a few minutes; "
                        "if Slurm submitted the job meanwhile, the hub cancels it."
                    ).format(seconds=f"{self.command_timeout:g}")
                ) from err
            reason = str(err).strip()
            raise RuntimeError(_("Slurm refused the job: {reason}").format(reason=reason)) from err
        try:
            job_id = str(self.parse_job_id(out))
        except Exception:  # as batchspawner: no job id, and start() fails the spawn
            self.log.error("No job id in sbatch's answer: %r", out[-300:])
            return ""
        if not JOB_ID.fullmatch(job_id):
            self.log.error("Not a job id in sbatch's answer: %r", out[-300:])
            return ""
        # In flight (the reconciler spares it) and recorded in the same step, before anything else runs; the start
        # that asked for it takes it (or, stopped meanwhile, cancels it).
        self._in_flight = self._in_flight | {job_id}
        self.ledger.add(job_id, self.user.name)
        return job_id

    def _cancel_unowned(self, submission: asyncio.Future[str]) -> None:
        """The submission of a start that was cancelled meanwhile has ended: its job (if any) is no server's."""
        if submission.cancelled() or submission.exception() is not None or not submission.result():
            return  # no job, or an unanswered sbatch the reconciler looks for (the ledger's lost users)
        job_id = submission.result()
        self._in_flight = self._in_flight - {job_id}
        self.log.warning("The start of %s was stopped while sbatch ran: cancelling its job %s", self.user.name, job_id)
        cancel = asyncio.ensure_future(self._cancel_recorded(job_id, self.user.name))
        self._background.add(cancel)
        cancel.add_done_callback(self._background.discard)

    async def start(self) -> Any:
        """batchspawner's start, watched: a job that ends before its server reports a port (batchspawner would
        wait for the full start_timeout) fails the spawn within seconds, with the end of the job's output; a job
        still pending when the time is up is cancelled, and the user is told why and what to try."""
        self._job_end = None  # told on the form that asked for this start; it is about an older job
        self._unanswered, self._address = 0, ("", "")
        starting = asyncio.ensure_future(super().start())
        began = time.monotonic()
        limit = self.pending_timeout or max(self.start_timeout - 10.0, self.job_watch_interval)
        started = False
        try:
            while True:
                done, _pending = await asyncio.wait([starting], timeout=self.job_watch_interval)
                if done:
                    ip, port = starting.result()
                    await self.wait_for_port(ip, port)
                    await self.remember_address(ip, port)
                    started = True
                    return ip, port
                job_id = self._submitted_job
                if not (job_id and self.job_id):
                    continue
                status = await self.query_job_status()
                if status == JobStatus.NOTFOUND:
                    starting.cancel()
                    raise JobEndedEarly(job_id)
                if status == JobStatus.PENDING and time.monotonic() - began >= limit:
                    starting.cancel()
                    await self.cancel_pending(job_id, time.monotonic() - began)
        except JobEndedEarly as ended:
            await self.fail_with_output(ended.job_id)
        except RuntimeError as err:
            if "disappeared" not in str(err):
                raise
            await self.fail_with_output(self._submitted_job)
        finally:
            if not starting.done():
                starting.cancel()
            if not started:
                await self.cancel_submitted()
            # From here the server's job is job_id, which the hub clears when the server stops: a submitted id
            # kept beyond the start would make the reconciler think a stopped server still owns its job.
            self._submitted_job = ""

    async def cancel_submitted(self) -> None:
        """A start that did not succeed (failed, timed out, pending too long, or interrupted by the user's Cancel)
        leaves no job behind. batchspawner forgets the job id when a query fails while the spawn is interrupted,
        and the hub's stop then has nothing to cancel: the job would start later and run for its whole walltime."""
        if not self._submitted_job:
            return
        self.job_id, self._submitted_job = self._submitted_job, ""
        try:
            await self.cancel_batch_job()
        except RuntimeError as err:  # already ended: nothing to cancel
            self.log.debug("scancel of job %s after a failed start: %s", self.job_id, err)
        self.clear_state()

    async def wait_for_port(self, ip: str, port: int) -> bool:
        """Wait until the server accepts connections, at most http_timeout; JupyterHub's own check follows and
        reports a server that never answers, so this only returns sooner. Raises JobEndedEarly if the job ends."""
        if self.port_poll_interval <= 0:
            return False
        deadline = time.monotonic() + self.http_timeout
        next_watch = time.monotonic() + self.job_watch_interval
        while time.monotonic() < deadline:
            if time.monotonic() >= next_watch:  # a server that dies after reporting its port: fail now, with why
                next_watch = time.monotonic() + self.job_watch_interval
                if await self.query_job_status() == JobStatus.NOTFOUND:
                    raise JobEndedEarly(self._submitted_job or self.job_id)
            try:
                _reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout=5)
            except (TimeoutError, OSError):
                await asyncio.sleep(self.port_poll_interval)
                continue
            writer.close()
            return True
        return False

    async def cancel_pending(self, job_id: str, waited: float) -> None:
        """A job still pending at the timeout: raise what the user should know (start() then cancels it)."""
        reason = ""
        try:
            reason = str(await self.run_command(self.pending_reason_cmd.format(job_id=job_id))).strip()
        except RuntimeError as err:
            self.log.warning("Cannot read why job %s is pending: %s", job_id, err)
        self.log.warning(
            "Job %s of %s still pending after %.0f s (%s): cancelling it",
            job_id,
            self.user.name,
            waited,
            reason or "unknown",
        )
        cluster = self.model.display_name
        # The default text is in the catalog; a site's own text has no translation and is shown as written.
        raise RuntimeError(
            _(self.timeout_help).format(
                job_id=job_id, seconds=round(waited), reason=reason or _("unknown"), cluster=cluster
            )
        )

    @property
    def job_board(self) -> JobBoard | None:
        if not self.job_board_cmd:
            return None
        key = (self.job_board_cmd, self.job_board_interval)
        if key not in self._boards:
            self._boards[key] = JobBoard(
                self.job_board_cmd,
                self.job_board_interval,
                self.command_timeout,
                self.command_output_limit,
                self.command_concurrency,
            )
        return self._boards[key]

    # -- a server's job ending under its user ---------------------------------------------------------------
    async def poll(self) -> int | None:
        """batchspawner's poll; a job that ended without its user stopping it is kept (``JobEnd``: Slurm's last
        state and node) so that the next form says what happened. A server whose job Slurm still runs but whose port
        no longer answers (its node gone: Slurm notices minutes later) is ended after unanswered_polls checks in a
        row, its job cancelled, and the user told on the next form."""
        job_id = self.job_id
        status = await self.query_job_status()
        if status in (JobStatus.PENDING, JobStatus.UNKNOWN):
            return None
        if status == JobStatus.RUNNING:
            if await self.answers():
                return None
            self._job_end = JobEnd.no_answer(job_id, self.job_status or "")
            self.log.warning("The server of %s no longer answers: cancelling its job %s", self.user.name, job_id)
            try:
                await self.cancel_batch_job()
            except RuntimeError as err:  # the reconciler cancels it later (the job stays in the ledger)
                self.log.warning("Cannot cancel job %s yet: %s", job_id, err)
            self.clear_state()
            return 1
        if job_id:
            # sacct (when squeue has forgotten the job) is asked by the form that tells it, not here: poll runs for
            # every server, at hub start too, and must not wait for slurmdbd.
            self._job_end = JobEnd.from_status(job_id, self.job_status or "")
            if self._job_end:
                self.log.warning("The server of %s ended under it: job %s %s", self.user.name, job_id, self._job_end)
        self.clear_state()
        return 1

    async def remember_address(self, host: str, port: int) -> bool:
        """Resolve the server's host once (when it starts, or at the first check after a hub restart): the checks
        reach the node at that address, so a DNS outage of the hub, or a node's name gone with the node, is never
        taken for a server that does not answer, nor hides one."""
        try:
            lookup = asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found = await asyncio.wait_for(lookup, timeout=self.answer_timeout)  # a slow resolver is bounded too
        except (TimeoutError, OSError) as err:
            self.log.warning("Cannot resolve %s for the server of %s: %s", host, self.user.name, err)
            return False
        self._address = (host, str(found[0][4][0]))
        return True

    async def answers(self) -> bool:
        """Whether the running server's port accepts a connection, over polls: False only when it has refused or
        not answered at unanswered_polls polls in a row spanning at least that many poll intervals (a page reload
        also polls; a blip of the hub's own network is not a dead node). The node's name is resolved once, at the
        first check that can (a name that does not resolve then counts as neither; a node gone later is reached at
        its address, not looked up again). The hub's own check after its restart is JupyterHub's (it waits
        http_timeout, then stops a server that never answers): nothing is decided here then."""
        server = self.server
        if self.unanswered_polls <= 0 or server is None or not server.port or self._spawn_pending:
            return True
        host = server.ip or self.ip
        if self._check_pending or host in ("", "0.0.0.0", "::"):
            return True
        if self._address[0] != host and not await self.remember_address(host, server.port):
            return True  # cannot resolve it now: says nothing of the server
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self._address[1], server.port), timeout=self.answer_timeout
            )
        except (TimeoutError, OSError) as err:
            now = time.monotonic()
            if not self._unanswered:
                self._first_unanswered = now
            self._unanswered += 1
            self.log.warning(
                "The server of %s did not answer at %s:%s (%d of %d): %s",
                self.user.name,
                host,
                server.port,
                self._unanswered,
                self.unanswered_polls,
                err or type(err).__name__,
            )
            span = (self.unanswered_polls - 1) * self.poll_interval
            return not (self._unanswered >= self.unanswered_polls and now - self._first_unanswered >= span)
        writer.close()
        self._unanswered = 0
        return True

    async def accounted_end(self, end: JobEnd) -> JobEnd | None:
        """``end`` as Slurm's accounting tells it (sacct's first line, ``STATE[ by UID]|NODELIST``): None if the job
        completed by itself; ``end`` unchanged if sacct gives no answer."""
        if not self.job_end_cmd:
            return end
        result = await self.run_limited(self.job_end_cmd.format(job_id=shlex.quote(end.job_id)), limit=4096)
        if result.returncode != 0 or result.timed_out:
            return end
        return JobEnd.from_accounting(end.job_id, result.stdout.decode(errors="replace").partition("\n")[0])

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self._job_end:
            state["job_end"] = self._job_end.to_state()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._job_end = JobEnd.from_state(state)

    async def query_job_status(self) -> Any:
        """The job's state from the shared job board; a job the board does not list (or a board without an
        answer) is asked about with batchspawner's per-job query, as the user.

        Only Slurm saying the job is gone counts as gone. batchspawner reads any failed squeue (slurmctld
        restarting, a timeout) as "job gone" and drops a server whose job keeps running; here such an answer
        is UNKNOWN, and the server is kept until Slurm answers again."""
        board = self.job_board
        if board is not None and self.job_id:
            line = await board.status(self.job_id)
            if line:
                self.job_status = line
                if self.state_isrunning():
                    return JobStatus.RUNNING
                if self.state_ispending():
                    return JobStatus.PENDING
                if has_ended(line):  # listed under the state it ended in (MinJobAge): gone, Slurm's last word kept
                    self.ledger.remove(self.job_id)
                    return JobStatus.NOTFOUND
            elif line is None:
                self.job_status = ""
                self.log.warning("Slurm gave no answer about job %s, keeping it", self.job_id)
                return JobStatus.UNKNOWN
        job_id = self.job_id
        status = await super().query_job_status()
        text = (self.job_status or "").strip()
        if status == JobStatus.NOTFOUND and text and not (has_ended(text) or "Invalid job id specified" in text):
            self.log.warning("Slurm gave no answer about job %s, keeping it: %s", job_id, text[-300:])
            return JobStatus.UNKNOWN
        if status == JobStatus.NOTFOUND and job_id:
            self.ledger.remove(job_id)  # Slurm says it is gone
        return status

    async def fail_with_output(self, job_id: str) -> None:
        self.clear_state()
        tail = await self.job_output_tail(job_id)
        if tail:
            raise JobOutputError(
                _("Job {job_id} ended before the server started. End of its output:").format(job_id=job_id), tail
            )
        raise RuntimeError(_("Job {job_id} ended before the server started.").format(job_id=job_id))

    async def job_output_tail(self, job_id: str) -> str:
        """At most output_tail_lines lines of the last output_tail_bytes bytes of the job's output, read as the
        user; control characters removed; says when it was cut."""
        if not (job_id and self.output_tail_cmd):
            return ""
        if not (job_id.isascii() and job_id.isdigit()):
            self.log.warning("Not reading the output of job %r: not a job id", job_id)
            return ""
        # The tail finds the file itself from the pattern, as the user (job_tail.py); the name is for the message.
        fields = {"j": job_id, "u": self.user.name, "%": "%"}
        name = re.sub(r"%([ju%])", lambda match: fields[match.group(1)], self.job_output)
        prefix = self.exec_prefix.format(username=shlex.quote(self.user.name))
        tail_cmd = self.output_tail_cmd.format(
            max_bytes=int(self.output_tail_bytes), job_output=shlex.quote(self.job_output), job_id=job_id
        )
        await asyncio.sleep(1)  # slurmd writes the last lines as the job ends
        result = await self.run_limited(f"{prefix} {tail_cmd}", limit=self.output_tail_bytes + 32)
        if result.returncode != 0:
            problem = result.stderr.decode(errors="replace").strip()[-300:]
            self.log.warning("Cannot read the output of job %s: %s", job_id, problem)
            return ""
        size_line, _newline, data = result.stdout.partition(b"\n")
        size = int(size_line) if size_line.isdigit() else len(data)
        text = _CONTROL.sub("", data[: self.output_tail_bytes].decode(errors="replace"))
        lines = text.splitlines()
        if size > len(data) and len(lines) > 1:
            lines = lines[1:]  # the first line read is a part of a line (kept if it is the only one)
        cut = size > len(data) or len(lines) > self.output_tail_lines
        lines = lines[-self.output_tail_lines :] if self.output_tail_lines > 0 else []
        tail = "\n".join(lines).strip()
        if cut:
            cut_note = _("[cut: the end of {size} bytes; the whole output is ~/{name}]").format(size=size, name=name)
            tail = f"{cut_note}\n{tail}"
        return tail
