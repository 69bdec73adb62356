"""batchspawner's SlurmSpawner with the Server Options form, validated against the cluster model.

Every request, from the form or posted to the REST API as ``user_options``, goes through
``hpc_resources.validate_request`` (the very module Ansible's preflight uses) before anything reaches Slurm:

* a form submission that breaks a rule renders the form again with the message (nothing is submitted);
* an API request that breaks a rule gets HTTP 400 with the message (nothing is submitted);
* only validated, normalized values reach the job script: user_options never overwrite template variables.

Slurm is asked about the hub's jobs once per ``job_board_interval`` for all of them (one ``squeue``, the
``JobBoard``), not once per spawn every half second: the scheduler's load does not grow with pending spawns.
A job the board does not list is confirmed gone by the user's own ``squeue`` (batchspawner's query) first.

Accounts offered are the user's own Slurm associations (``sacctmgr``), cached per user, filtered by the
cluster's account prefixes. If ``sacctmgr`` cannot answer (no accounting database), accounts are checked by
prefix only and Slurm has the last word.
"""

from __future__ import annotations

import asyncio
import html
import posixpath
import re
import shlex
import time
from typing import Any, ClassVar

import hpc_resources as rules
from batchspawner import SlurmSpawner
from batchspawner.batchspawner import JobStatus
from tornado import web
from traitlets import Dict, Float, Unicode, default

# JupyterHub shows it as "Spawn failed: <message>", the wording of the seeds' error.
DEFAULT_TIMEOUT_HELP = (
    "Timeout. Your job {job_id} was still waiting in the Slurm queue after {seconds} seconds "
    "(Slurm's reason: {reason}), so it was cancelled. Like any interactive job, it waits longer when it asks for "
    "more time, a GPU or many cores: ask only for what you need. If you already have another interactive job on "
    "{cluster}, this one waits with the regular batch jobs: stop that one first if you can. There may also be no "
    "free resources right now: try again later."
)


class JobBoard:
    """One ``squeue`` per interval answers every spawner of the hub: the status of all the jobs asked about
    since the last round, in a single call. Load on slurmctld: one RPC per interval, however many spawns wait."""

    def __init__(self, cmd: str, interval: float) -> None:
        self.cmd = cmd
        self.interval = interval
        self._wanted: set[str] = set()
        self._next: asyncio.Future[tuple[dict[str, str], str]] | None = None
        self._last_start = -1e9
        self._task: asyncio.Future[None] | None = None
        self.rounds = 0

    async def status(self, job_id: str) -> str | None:
        """The job's '%T %B' line; "" if Slurm does not list it; None if squeue failed (no answer)."""
        self._wanted.add(job_id)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._task = asyncio.ensure_future(self._round(self._next))  # kept: a task must be referenced
        found, error = await asyncio.shield(self._next)
        return None if error else found.get(job_id, "")

    async def _round(self, future: asyncio.Future[tuple[dict[str, str], str]]) -> None:
        await asyncio.sleep(max(0.0, self._last_start + self.interval - time.monotonic()))
        self._next = None  # later questions wait for the next round
        ids, self._wanted = sorted(self._wanted, key=_job_order), set()
        self._last_start = time.monotonic()
        self.rounds += 1
        try:
            proc = await asyncio.create_subprocess_shell(
                self.cmd.format(job_ids=",".join(ids)), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            out, err = await proc.communicate()
        except OSError as exc:
            future.set_result(({}, str(exc)))
            return
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            problem = err.decode(errors="replace").strip()
            # One id that Slurm no longer knows: an answer ("not listed"), not a failure.
            future.set_result(({}, "" if "Invalid job id specified" in problem else problem or "squeue failed"))
            return
        found = {}
        for line in text.splitlines():
            job_id, _, rest = line.strip().partition(" ")
            if job_id:
                found[job_id] = rest.strip()
        future.set_result((found, ""))


def _job_order(job_id: str) -> tuple[int, str]:
    return (int(job_id), "") if job_id.isdigit() else (0, job_id)


class JobEndedEarly(Exception):
    """The job ended while its server was starting."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


class HPCSlurmSpawner(SlurmSpawner):  # type: ignore[misc]
    """SlurmSpawner whose resources come from a validated Server Options form."""

    cluster = Dict(help="The cluster model (hpc_cluster from the inventory).").tag(config=True)

    accounts_cmd = Unicode(
        "/usr/bin/sacctmgr --noheader --parsable2 show associations user={username} format=account",
        help="Lists the user's Slurm accounts, one per line. Empty: no account list (prefix check only).",
    ).tag(config=True)

    accounts_cache_seconds = Float(300.0, help="How long a user's account list is reused.").tag(config=True)

    req_gpus = Unicode("", help="--gpus-per-node value (<type>:<count>), set from the form.").tag(config=True)

    job_output = Unicode(
        ".jupyterhub-slurm-%j.log",
        help="The job's output file (--output), relative to the user's home; its tail is shown if the job dies.",
    ).tag(config=True)

    output_tail_cmd = Unicode(
        "/usr/bin/tail -n 30 -- {path}",
        help="Reads the end of the job's output, run as the user with exec_prefix. Empty: do not show it.",
    ).tag(config=True)

    job_watch_interval = Float(2.0, help="Seconds between checks that a starting job is still there.").tag(config=True)

    job_board_cmd = Unicode(
        "/usr/bin/squeue --noheader --jobs={job_ids} --format='%i %T %B'",
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
        "/usr/bin/squeue --noheader --jobs={job_id} --format=%r",
        help="Slurm's reason a job is pending, run as the hub's user (as job_board_cmd).",
    ).tag(config=True)

    _submitted_job = ""  # the job the current start submitted; a start that does not succeed cancels it
    _boards: ClassVar[dict[tuple[str, float], JobBoard]] = {}
    _accounts_cache: ClassVar[dict[str, tuple[float, list[str] | None]]] = {}

    @property
    def model(self) -> dict[str, Any]:
        """The cluster model, validated once per spawner (the configuration does not change while it runs)."""
        if getattr(self, "_model", None) is None:
            self._model: dict[str, Any] | None = rules.validate_cluster(self.cluster)
        assert self._model is not None
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
            proc = await asyncio.create_subprocess_shell(
                cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            out, err = await proc.communicate()
            if proc.returncode == 0:
                prefixes = tuple(self.model["account_prefixes"]) or ("",)
                found = {line.strip() for line in out.decode().splitlines() if line.strip()}
                accounts = sorted(a for a in found if a.startswith(prefixes))
            else:
                self.log.warning("Cannot list Slurm accounts of %s (%s): %s", name, cmd, err.decode().strip())
        self._accounts_cache[name] = (time.monotonic(), accounts)
        return accounts

    # -- the form ------------------------------------------------------------------------------------------
    @default("options_form")
    def _options_form_default(self) -> Any:
        return HPCSlurmSpawner.render_form

    async def render_form(self) -> str:
        model = self.model
        form = model["form"]
        accounts = await self.user_accounts()
        prev = getattr(self, "_submitted", None) or self.user_options or {}
        parts = [f'<p class="hpc-cluster">Cluster: <strong>{html.escape(model["display_name"])}</strong></p>']

        if accounts:
            current = prev.get("account") or accounts[0]
            options = "".join(
                f'<option value="{html.escape(a)}"{" selected" if a == current else ""}>{html.escape(a)}</option>'
                for a in accounts
            )
            parts.append(
                _field("account", f'<select class="form-control" name="account" id="account">{options}</select>')
            )
        elif accounts is None:
            hint = ", ".join(model["account_prefixes"]) or "your account"
            value = html.escape(str(prev.get("account", "")))
            parts.append(
                _field(
                    "account",
                    f'<input class="form-control" name="account" id="account" value="{value}" '
                    f'placeholder="{html.escape(hint)}...">',
                )
            )

        for key, step, scale in (("time", "0.5", 60), ("cores", "1", 1), ("memory", "1", 1)):
            bounds = form[key]
            lo, hi, dflt = (bounds[k] / scale for k in ("min", "max", "default"))
            value = prev.get(key, f"{dflt:g}")
            parts.append(
                _field(
                    key,
                    f'<input class="form-control" type="number" name="{key}" id="{key}" min="{lo:g}" max="{hi:g}" '
                    f'step="{step}" value="{html.escape(str(value))}" required>'
                    f'<small class="form-text text-muted">{lo:g} to {hi:g}</small>',
                )
            )

        choices = rules.gpu_choices(model)
        if choices:
            current = prev.get("gpu", "none")
            options = '<option value="none">None</option>' + "".join(
                f'<option value="{html.escape(c["value"])}"{" selected" if c["value"] == current else ""}>'
                f"{c['count']} x {html.escape(c['type'])}</option>"
                for c in choices
            )
            parts.append(_field("gpu", _select("gpu", options)))

        current = prev.get("interface", form["default_interface"])
        labels = {i: html.escape(rules.INTERFACES[i]["label"]) for i in form["interfaces"]}
        options = "".join(
            f'<option value="{i}"{" selected" if i == current else ""}>{label}</option>' for i, label in labels.items()
        )
        parts.append(
            _field("interface", f'<select class="form-control" name="interface" id="interface">{options}</select>')
        )
        return "\n".join(parts)

    async def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, str]:
        """Form data -> user_options; a broken rule raises, and the hub shows the form again with the message."""
        options = {key: values[0] for key, values in formdata.items() if key in rules.LABELS and values}
        self._submitted = options  # shown again in the form if a rule is broken
        # A plain ValueError: the hub renders the form again with this message as the error.
        rules.validate_request(options, self.model, await self.user_accounts())
        return options

    # -- every request (form and API) ----------------------------------------------------------------------
    async def validated(self, options: dict[str, Any]) -> dict[str, Any]:
        """The request checked against the model, or HTTP 400 with every broken rule (API clients see it)."""
        try:
            return rules.validate_request(options, self.model, await self.user_accounts())
        except rules.ResourceError as err:
            raise web.HTTPError(400, str(err), reason="Invalid Server Options") from err

    @default("apply_user_options")
    def _apply_user_options_default(self) -> Any:
        return HPCSlurmSpawner.apply_options

    async def apply_options(self, user_options: dict[str, Any]) -> None:
        """Runs before every spawn (JupyterHub >= 5.3): validate, then set the job's resources."""
        request = await self.validated(user_options or {})
        self.req_account = request["account"]
        self.req_runtime = request["runtime"]
        self.req_nprocs = request["nprocs"]
        self.req_memory = request["memory"]
        self.req_gpus = request["gpus"]
        self.req_partition = request["partition"]
        self.default_url = request["default_url"]
        self._request = request
        self.log.info(
            "Server Options of %s: account=%s time=%s cores=%s memory=%s gpus=%s interface=%s (fits %s)",
            self.user.name,
            request["account"] or "-",
            request["runtime"],
            request["cores"],
            request["memory"],
            request["gpus"] or "-",
            request["interface"],
            ",".join(request["node_types"]),
        )

    # -- failures users can act on --------------------------------------------------------------------------
    async def submit_batch_script(self) -> Any:
        """Submit; if Slurm refuses, say so with Slurm's own reason (not a bare HTTP 500)."""
        try:
            job_id = await super().submit_batch_script()
        except RuntimeError as err:
            reason = re.split(r" exit status -?\d+: ", str(err), maxsplit=1)[-1].strip()
            raise RuntimeError(f"Slurm refused the job: {reason}") from err
        self._submitted_job = str(job_id)
        return job_id

    async def start(self) -> Any:
        """batchspawner's start, watched: a job that ends before its server reports a port (batchspawner would
        wait for the full start_timeout) fails the spawn within seconds, with the end of the job's output; a job
        still pending when the time is up is cancelled, and the user is told why and what to try."""
        starting = asyncio.ensure_future(super().start())
        began = time.monotonic()
        limit = self.pending_timeout or max(self.start_timeout - 10.0, self.job_watch_interval)
        started = False
        try:
            while True:
                done, _ = await asyncio.wait([starting], timeout=self.job_watch_interval)
                if done:
                    ip, port = starting.result()
                    await self.wait_for_port(ip, port)
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
                _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout=5)
            except (TimeoutError, OSError):
                await asyncio.sleep(self.port_poll_interval)
                continue
            writer.close()
            return True
        return False

    async def cancel_pending(self, job_id: str, waited: float) -> None:
        """A job still pending at the timeout: raise what the user should know (start() then cancels it)."""
        reason = "unknown"
        try:
            reason = str(await self.run_command(self.pending_reason_cmd.format(job_id=job_id))).strip() or reason
        except RuntimeError as err:
            self.log.warning("Cannot read why job %s is pending: %s", job_id, err)
        self.log.warning(
            "Job %s of %s still pending after %.0f s (%s): cancelling it", job_id, self.user.name, waited, reason
        )
        cluster = self.model["display_name"]
        raise RuntimeError(
            self.timeout_help.format(job_id=job_id, seconds=round(waited), reason=reason or "unknown", cluster=cluster)
        )

    @property
    def job_board(self) -> JobBoard | None:
        if not self.job_board_cmd:
            return None
        key = (self.job_board_cmd, self.job_board_interval)
        if key not in self._boards:
            self._boards[key] = JobBoard(self.job_board_cmd, self.job_board_interval)
        return self._boards[key]

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
            elif line is None:
                self.job_status = ""
                self.log.warning("Slurm gave no answer about job %s, keeping it", self.job_id)
                return JobStatus.UNKNOWN
        status = await super().query_job_status()
        text = (self.job_status or "").strip()
        if status == JobStatus.NOTFOUND and text and "Invalid job id specified" not in text:
            self.log.warning("Slurm gave no answer about job %s, keeping it: %s", self.job_id, text[-300:])
            return JobStatus.UNKNOWN
        return status

    async def fail_with_output(self, job_id: str) -> None:
        self.clear_state()
        tail = await self.job_output_tail(job_id)
        message = f"Job {job_id} ended before the server started."
        raise RuntimeError(f"{message} End of its output:\n{tail}" if tail else message)

    async def job_output_tail(self, job_id: str) -> str:
        if not (job_id and self.output_tail_cmd):
            return ""
        home = self.req_homedir
        path = posixpath.join(home, self.job_output.replace("%j", job_id).replace("%u", self.user.name))
        prefix = self.exec_prefix.format(username=shlex.quote(self.user.name))
        cmd = f"{prefix} {self.output_tail_cmd.format(path=shlex.quote(path))}"
        await asyncio.sleep(1)  # slurmd writes the last lines as the job ends
        try:
            return str(await self.run_command(cmd)).strip()
        except RuntimeError as err:
            self.log.warning("Cannot read the output of job %s: %s", job_id, err)
            return ""

    async def _get_batch_script(self, **subvars: Any) -> str:
        # batchspawner merges the raw user_options over the template variables: take them back out, so
        # only the validated req_* values (and batchspawner's own variables) reach the script.
        for key in set(subvars) - set(self.get_req_subvars()) - {"cmd"}:
            subvars.pop(key)
        subvars.update(self.get_req_subvars())
        return str(await super()._get_batch_script(**subvars))


def _field(key: str, control: str) -> str:
    label = html.escape(rules.LABELS[key])
    return f'<div class="form-group mb-3"><label for="{key}">{label}</label>{control}</div>'


def _select(key: str, options: str) -> str:
    return f'<select class="form-control" name="{key}" id="{key}">{options}</select>'
