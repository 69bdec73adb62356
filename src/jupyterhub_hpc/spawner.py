"""One user's server as a Slurm job: batchspawner's job script and settings, the Server Options form, and a start,
poll and stop of its own that keep one record of the job.

``HPCSlurmSpawner`` keeps one user's server; what the whole hub shares (commands, the job board, the ledger and its
reconciler, the accounts cache) is ``services.HubServices``, one per hub. The server's job is one ``JobState``
record (id, Slurm's state and node, the pending reason, how the previous server ended): the only thing the spawner
saves, read by others through ``owned_jobs``.

``start()`` owns the whole start, from the submission to the port: one loop over the job board (one ``squeue`` per
interval for all the hub's jobs; a job the board does not list is confirmed gone by the user's own query), typed
errors from the commands (``SlurmRefused``, ``CommandNoAnswer``), never a match on another program's message. A job
that ends before its server reports a port fails the start within seconds, with the end of its output; a job still
pending when the time is up is cancelled, and the user is told why; a start that does not succeed leaves no job.

What is left of batchspawner: its settings and job script rendering (``batch_script``, ``req_*``,
``batch_submit_cmd``, ``batch_query_cmd``, ``get_req_subvars``, ``cmd_formatted_for_batch``, ``get_env``'s
``keepvars``), the host's pattern (``state_exechost_re``) and ``batchspawner-singleuser`` in the job, whose port
report the hub takes through ``port_api``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from batchspawner import SlurmSpawner
from batchspawner.batchspawner import BatchSpawnerBase, format_template
from sqlalchemy.orm import object_session
from traitlets import Float, Integer, Unicode

from jupyterhub_hpc import hosts, i18n, job_query, logout, pending, port_api
from jupyterhub_hpc.i18n import N_
from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.job_end import JobEnd
from jupyterhub_hpc.job_output import OutputTail
from jupyterhub_hpc.job_query import Seen
from jupyterhub_hpc.job_state import JobState
from jupyterhub_hpc.liveness import Liveness
from jupyterhub_hpc.options import LinkedSpawn, ServerOptions, form_options, shown_again
from jupyterhub_hpc.services import CommandNoAnswer, HubServices, SlurmRefused, start_with_hub

__all__ = ["HPCSlurmSpawner", "LinkedSpawn", "form_options", "shown_again"]

# batchspawner's port callback sets any attribute a user's token posts: replaced by one that takes only the port.
port_api.install()
# Each request's pages and messages in its browser's language (i18n.py: a per-request context variable).
i18n.install()
# The hub's pages and API only at the hub's own host, never at a user's (hosts.py); checked before the language.
hosts.install()
# A start its user stopped, a stop during the hub's check: a clear answer, never 500 (pending.py).
pending.install()
# Log Out ends the user's Slurm jobs and says so, whatever the authenticator (logout.py).
logout.install()
# The hub's services (the reconciler) start with the hub, not with its first spawner (services.py).
start_with_hub()

# The job's environment variable that names JupyterLab's locale (the users' server configuration reads it).
LAB_LOCALE_ENV = "JUPYTERHUB_HPC_LAB_LOCALE"

# The job-output tail of this very package (a script run as the user, isolated: see job_tail.py).
JOB_TAIL = Path(__file__).with_name("job_tail.py")

# JupyterHub shows it as "Spawn failed: <message>", the wording of the seeds' error.
DEFAULT_TIMEOUT_HELP = N_(
    "Timeout. Your job {job_id} was still waiting in the Slurm queue after {seconds} seconds "
    "(Slurm's reason: {reason}), so it was cancelled. Like any interactive job, it waits longer when it asks for "
    "more time, a GPU or many cores: ask only for what you need. If you already have another interactive job on "
    "{cluster}, this one waits with the regular batch jobs: stop that one first if you can. There may also be no "
    "free resources right now: try again later."
)


class HPCSlurmSpawner(ServerOptions, SlurmSpawner):  # type: ignore[misc]
    """A user's server as a Slurm job made from a validated Server Options request."""

    job_output = Unicode(
        ".jupyterhub-slurm-%j.log",
        help="The job's output file (--output), relative to the user's home: %j the job id, %u the user name, %% "
        "a percent sign, no other %, no '..'. Its tail is shown if the job dies (output_tail_cmd finds the file from "
        "this pattern and the job id, as the user: the sudo rule names the pattern).",
    ).tag(config=True)

    output_tail_cmd = Unicode(
        f"/usr/bin/python3 -I -S {JOB_TAIL} {{max_bytes}} {{job_output}} {{job_id}}",
        help="Prints the size of the job's output file, then at most {max_bytes} bytes of its end (job_tail.py: "
        "the file {job_output} names for the job {job_id} in the running user's home, a regular file only, never "
        "through a link), run as the user with HubServices.exec_prefix. The sudo rule must name this command with "
        "{max_bytes} and {job_output} filled, the job id as digits (the batchspawner role renders both from one "
        "setting). Empty: do not show it.",
    ).tag(config=True)

    output_tail_bytes = Integer(4096, help="At most this many bytes of a job's output are shown.").tag(config=True)

    output_tail_lines = Integer(30, help="At most this many lines of a job's output are shown.").tag(config=True)

    unanswered_polls = Integer(
        3,
        help="Polls in a row, spanning at least that many poll intervals, at which a running server's port does not "
        "accept a connection before its server is ended and its job cancelled (never during the hub's own check "
        "after its restart, which is JupyterHub's). 0: never.",
    ).tag(config=True)

    answer_timeout = Float(5.0, help="Seconds a poll waits for a running server's port to accept.").tag(config=True)

    job_watch_interval = Float(2.0, help="Seconds between checks that a starting job is still there.").tag(config=True)

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.job = JobState()
        super().__init__(*args, **kwargs)
        self.services = HubServices.instance(config=self.config, log=self.log)
        self.services.attach(self, object_session(self.orm_spawner) if self.orm_spawner is not None else None)
        self.services.start()
        self.liveness = Liveness(self.unanswered_polls, self.poll_interval, self.answer_timeout, self.log)
        self.output_tail = OutputTail(
            self.job_output, self.output_tail_cmd, self.output_tail_bytes, self.output_tail_lines
        )

    # -- the one job record: saved, read by others through these -------------------------------------------
    @property
    def job_id(self) -> str:
        """Slurm's id of the server's job ("" if none): batchspawner's name, read from the record."""
        return self.job.id

    @property
    def job_status(self) -> str:
        """Slurm's last ``%T %B`` line for the job (batchspawner's host pattern reads it), from the record."""
        return self.job.line

    def owned_jobs(self) -> tuple[str, ...]:
        """The job this server owns (starting or running): the reconciler spares it, Log Out reports it."""
        return (self.job.id,) if self.job.id else ()

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super(BatchSpawnerBase, self).get_state()
        return {**state, **self.job.to_state()}

    def load_state(self, state: dict[str, Any]) -> None:
        super(BatchSpawnerBase, self).load_state(state)
        self.job = JobState.from_state(state)

    def clear_state(self) -> None:
        """No job any more; how the previous one ended is kept for the next form."""
        super(BatchSpawnerBase, self).clear_state()
        self.job = JobState(end=self.job.end)

    # -- what Slurm says of the job ---------------------------------------------------------------------------
    async def look(self) -> Seen:
        """What Slurm says of the job now (job_query.look: the shared board, then the user's own query); the
        record takes Slurm's last word."""
        query = format_template(self.batch_query_cmd, **self.get_req_subvars(), job_id=self.job.id)
        seen, self.job = await job_query.look(self.services, self.job, self.services.as_user(self.user.name, query))
        return seen

    # -- start -------------------------------------------------------------------------------------------------
    async def start(self) -> tuple[str, int]:
        """Submit the job, wait for it to run and for its server to report a port and accept, and return where it
        is. A start that does not succeed (failed, timed out, pending too long, or interrupted by the user's
        Cancel) cancels its job."""
        self.job = JobState()  # how the previous server ended was told on the form that asked for this start
        self.liveness.reset()
        # The job's server is told to bind where the trait's default says (JUPYTERHUB_SERVICE_URL); its job script
        # and batchspawner-singleuser decide the rest, and report the port.
        self.ip, self.port = self.traits()["ip"].default_value, self.traits()["port"].default_value
        if self.server:
            self.server.port = 0
        began = time.monotonic()
        job_id = await self.submit_batch_script()
        started = False
        try:
            host = await self._until_running(job_id, began)
            port = await self._until_port()
            self.ip = host
            await self.wait_for_port(host, port)
            await self.liveness.resolve(host, port, self.user.name)
            started = True
        finally:
            if not started:
                await self.cancel_submitted(job_id)
        self.log.info("Server of %s: job %s at %s:%s", self.user.name, job_id, host, port)
        return host, port

    def job_script_vars(self, request: Any) -> dict[str, Any]:
        """The job script's variables: batchspawner's req_* settings (the site's configuration: homedir, keepvars,
        srun, ...) and the validated request's #SBATCH values over them. Never user_options."""
        return {**self.get_req_subvars(), **request.job_vars()}

    async def submit_batch_script(self) -> str:
        """sbatch, as the user, with the script rendered from job_request alone; if Slurm refuses, say so with its
        own reason (not a bare HTTP 500). The job is the server's from here."""
        request = self.job_request
        if request is None:
            raise RuntimeError(_("No validated Server Options for this server: nothing was submitted."))
        subvars = self.job_script_vars(request)
        cmd = self.services.as_user(self.user.name, format_template(self.batch_submit_cmd, **subvars))
        script = await self._get_batch_script(**subvars, cmd=self.cmd_formatted_for_batch())
        self.log.info("Submitting the job of %s: %s", self.user.name, cmd)
        self.log.debug("Job script:\n%s", script)
        try:
            job_id = await self.services.submit(self.user.name, cmd, script, self.get_env())
        except CommandNoAnswer as err:
            seconds = f"{self.services.command_timeout:g}"
            raise RuntimeError(
                _(
                    "Slurm did not answer within {seconds} s: no server was started. Try again in a few minutes; "
                    "if Slurm submitted the job meanwhile, the hub cancels it."
                ).format(seconds=seconds)
            ) from err
        except SlurmRefused as err:
            raise RuntimeError(_("Slurm refused the job: {reason}").format(reason=err.stderr.strip())) from err
        if not job_id:
            raise RuntimeError("Jupyter batch job submission failure (no jobid in output)")
        self.job = JobState.submitted(job_id)
        self.services.taken(job_id)
        return job_id

    async def _until_running(self, job_id: str, began: float) -> str:
        """The job's host once Slurm runs it; the start fails if the job ends, or is pending past the limit."""
        limit = self.pending_timeout or max(self.start_timeout - 10.0, self.job_watch_interval)
        while True:
            seen = await self.look()
            if seen == "running":
                return str(self.state_gethost() or self.job.node)
            if seen == "gone":
                raise await self.output_tail.failure(self.services, self.user.name, job_id)
            if seen == "pending" and time.monotonic() - began >= limit:
                raise await self.pending_too_long(job_id, time.monotonic() - began)
            await asyncio.sleep(self.startup_poll_interval)

    async def _until_port(self) -> int:
        """The port the job's server reports (port_api); the start fails if the job ends meanwhile."""
        next_watch = time.monotonic() + self.job_watch_interval
        while not self.port:
            await asyncio.sleep(self.startup_poll_interval)
            next_watch = await self._watch(next_watch)
        return int(self.port)

    async def _watch(self, due: float) -> float:
        """Once ``due``, check the starting job is still there (fail the start, with why, if not); the next time."""
        if time.monotonic() < due:
            return due
        if await self.look() == "gone":
            raise await self.output_tail.failure(self.services, self.user.name, self.job.id)
        return time.monotonic() + self.job_watch_interval

    async def wait_for_port(self, ip: str, port: int) -> bool:
        """Wait until the server accepts connections, at most http_timeout; JupyterHub's own check follows and
        reports a server that never answers, so this only returns sooner. Fails the start if the job ends."""
        deadline = time.monotonic() + self.http_timeout
        next_watch = time.monotonic() + self.job_watch_interval
        while self.port_poll_interval > 0 and time.monotonic() < deadline:
            next_watch = await self._watch(next_watch)  # a server that dies after reporting its port: fail now
            try:
                _reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout=5)
            except (TimeoutError, OSError):
                await asyncio.sleep(self.port_poll_interval)
                continue
            writer.close()
            return True
        return False

    async def pending_too_long(self, job_id: str, waited: float) -> RuntimeError:
        """A job still pending at the timeout: what the user should know (start() then cancels it)."""
        if self.job.reason in ("", "None"):  # the job board's last reason, else Slurm's now
            self.job = self.job.pending_because(await self.services.pending_reason(job_id))
        reason, user = self.job.reason, self.user.name
        self.log.warning("Job %s of %s pending after %.0f s (%s): cancelling it", job_id, user, waited, reason)
        # The default text is in the catalog; a site's own text has no translation and is shown as written.
        return RuntimeError(
            _(self.timeout_help).format(
                job_id=job_id, seconds=round(waited), reason=reason or _("unknown"), cluster=self.model.display_name
            )
        )

    async def cancel_submitted(self, job_id: str) -> None:
        """A start that did not succeed leaves no job behind (a job cancelled later would otherwise start and run
        for its whole walltime). If Slurm does not answer, the reconciler cancels it: no server owns it now."""
        try:
            await self.services.cancel(self.user.name, job_id)
        except (SlurmRefused, CommandNoAnswer) as err:  # already ended, or no answer
            self.log.debug("scancel of job %s after a failed start: %s", job_id, err)
        self.clear_state()

    # -- poll and stop -----------------------------------------------------------------------------------------
    async def poll(self) -> int | None:
        """None while the job runs and its server answers; a job that ended without its user stopping it is kept
        (``JobEnd``: Slurm's last state and node) so that the next form says what happened. A server whose job Slurm
        still runs but whose port no longer answers (its node gone: Slurm notices minutes later) is ended, its job
        cancelled, and the user told on the next form."""
        job_id = self.job.id
        seen = await self.look()
        if seen in ("pending", "unknown"):
            return None
        if seen == "running":
            if await self.answers():
                return None
            self.log.warning("The server of %s no longer answers: cancelling its job %s", self.user.name, job_id)
            end = JobEnd.no_answer(job_id, self.job.line)
            try:
                await self.services.cancel(self.user.name, job_id)
            except (SlurmRefused, CommandNoAnswer) as err:  # the reconciler cancels it later (kept in the ledger)
                self.log.warning("Cannot cancel job %s yet: %s", job_id, err)
        else:
            # sacct (when squeue has forgotten the job) is asked by the form that tells it, not here: poll runs for
            # every server, at hub start too, and must not wait for slurmdbd.
            end = JobEnd.checked(job_id, self.job.state, self.job.node) if job_id else None
            if end:
                self.log.warning("The server of %s ended under it: job %s %s", self.user.name, job_id, end)
        if job_id:
            self.job = JobState(end=end)
        self.clear_state()
        return 1

    async def answers(self) -> bool:
        """Whether the running server's port still answers (liveness.py). The hub's own check after its restart is
        JupyterHub's (it waits http_timeout, then stops a server that never answers): nothing is decided then."""
        server = self.server
        if server is None or not server.port or self._spawn_pending or self._check_pending:
            return True
        return await self.liveness.answers(server.ip or self.ip, server.port, self.user.name)

    async def stop(self, now: bool = False) -> None:
        """Cancel the job as its user (an error if Slurm does not: the job stays in the ledger and the reconciler
        cancels it once no server owns it), then wait up to 10 s for Slurm to confirm unless ``now``."""
        job_id = self.job.id
        if not job_id:
            return
        self.log.info("Stopping server job %s", job_id)
        await self.services.cancel(self.user.name, job_id)
        if now:
            return
        for _attempt in range(10):
            if await self.look() not in ("running", "unknown"):
                return
            await asyncio.sleep(1)
        self.log.warning("Server job %s at %s:%s possibly failed to terminate", job_id, self.ip, self.port)

    # -- the job's environment and the start's messages --------------------------------------------------------
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

    def progress(self) -> Any:
        """Where the start is, in the language of the page that shows it (job_query.progress)."""
        return job_query.progress(lambda: self.job)
