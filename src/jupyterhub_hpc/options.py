"""The Server Options form and the REST API's options, validated once into the request a job is made from.

Every request, from the form or posted to the REST API as ``user_options``, is validated once by the request rules
(the very rules Ansible's preflight uses) into a frozen ``model.Request`` before anything reaches Slurm:

* a form submission that breaks a rule renders the form again with the message (nothing is submitted);
* an API request that breaks a rule gets HTTP 400 with the message (nothing is submitted);
* a link to the spawn page with options never starts a server: it shows the form with the link's values;
* the job script is rendered from that ``Request`` (``job_request``) alone, never from ``user_options``.

``ServerOptions`` is the spawner's part that does this: a mixin of ``HPCSlurmSpawner``, which gives it the user, the
hub's services (the user's accounts) and the job record (how the previous server ended, told on the form).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import object_session
from tornado import web
from traitlets import Dict, Instance, default
from traitlets.config import LoggingConfigurable

from jupyterhub_hpc import form
from jupyterhub_hpc import request_rules as rules
from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.job_state import JobState
from jupyterhub_hpc.model import Cluster, Request
from jupyterhub_hpc.services import HubServices


def form_options(fields: Mapping[str, list[str]]) -> dict[str, str]:
    """The form's fields among posted or linked ones (the first value of each)."""
    return {key: values[0] for key, values in fields.items() if key in rules.LABELS and values}


def shown_again(options: Mapping[str, str]) -> dict[str, str]:
    """What a form may show again of given options: only values a field may hold."""
    return {key: value for key, value in options.items() if len(value) <= rules.MAX_TEXT}


class LinkedSpawn(Exception):
    """A spawn asked for by a link (GET with options): JupyterHub shows the form with this message instead."""


class ServerOptions(LoggingConfigurable):
    """The form's glue: render it, take its options or the API's, validate them once, keep only what is valid."""

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

    # Given by the spawner (HPCSlurmSpawner): the user, the hub's services, the job record, JupyterHub's fields.
    user: Any
    orm_spawner: Any
    user_options: Any
    default_url: Any
    services: HubServices
    job: JobState

    _model: Cluster | None = None
    _submitted: dict[str, str] | None = None  # the form's last options, shown again if a rule is broken
    _linked: dict[str, str] | None = None  # a link's options, shown on the form it asked for (once)
    # The form's options and the request options_from_form validated them into, until apply_options takes it.
    _form_request: tuple[dict[str, str], Request] | None = None

    @property
    def model(self) -> Cluster:
        """The cluster model, loaded once per spawner from the preflight's (validated there, not here)."""
        if self._model is None:
            self._model = Cluster.from_data(self.cluster, f"{type(self).__name__}.cluster")
        return self._model

    async def user_accounts(self) -> list[str] | None:
        """The user's accounts matching the cluster's prefixes; None when Slurm cannot tell."""
        return await self.services.user_accounts(self.user.name, self.model.account_prefixes)

    @default("options_form")
    def _options_form_default(self) -> Any:
        return ServerOptions.render_form

    async def render_form(self) -> str:
        model = self.model
        accounts = await self.user_accounts()
        previous, self._linked = self._linked or self._submitted or self.user_options or {}, None
        end = self.job.end
        if end is not None and not end.state:  # squeue had forgotten the job: Slurm's accounting, once asked
            end = await self.services.accounted_end(end)
            self.job = replace(self.job, end=end)
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
        return ServerOptions.apply_options

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
