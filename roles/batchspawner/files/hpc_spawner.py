"""batchspawner's SlurmSpawner with the Server Options form, validated against the cluster model.

Every request, from the form or posted to the REST API as ``user_options``, goes through
``hpc_resources.validate_request`` (the very module Ansible's preflight uses) before anything reaches Slurm:

* a form submission that breaks a rule renders the form again with the message (nothing is submitted);
* an API request that breaks a rule gets HTTP 400 with the message (nothing is submitted);
* only validated, normalized values reach the job script: user_options never overwrite template variables.

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
        wait for the full start_timeout) fails the spawn within seconds, with the end of the job's output."""
        starting = asyncio.ensure_future(super().start())
        try:
            while True:
                done, _ = await asyncio.wait([starting], timeout=self.job_watch_interval)
                if done:
                    return starting.result()
                job_id = getattr(self, "_submitted_job", "")
                if job_id and self.job_id and await self.query_job_status() == JobStatus.NOTFOUND:
                    starting.cancel()
                    raise JobEndedEarly(job_id)
        except JobEndedEarly as ended:
            await self.fail_with_output(ended.job_id)
        except RuntimeError as err:
            if "disappeared" not in str(err):
                raise
            await self.fail_with_output(getattr(self, "_submitted_job", ""))
        finally:
            if not starting.done():
                starting.cancel()

    async def query_job_status(self) -> Any:
        """Only Slurm saying the job is gone counts as gone. batchspawner reads any failed squeue (slurmctld
        restarting, a timeout) as "job gone" and drops a server whose job keeps running; here such an answer
        is UNKNOWN, and the server is kept until Slurm answers again."""
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
