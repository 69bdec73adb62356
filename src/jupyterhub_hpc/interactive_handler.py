"""The page that cancels one of the user's other interactive jobs (``/hub/hpc/interactive/cancel``), linked from the
Server Options form's warning (``jupyterhub_hpc.interactive``).

Two steps, without JavaScript: a GET only shows the job and asks (nothing changes); the confirmation is a POST,
checked by JupyterHub against its XSRF token before this handler runs (``BaseHandler.prepare``). Both ask Slurm
again, as the hub, for the logged-in user's own interactive jobs (never a cached list, never the browser's word),
and act only on a job in that list, and never on one of her servers' jobs (she stops those with Stop My Server,
so the hub knows): a job id that is not digits is a 400, a job not in that list a 404, more than ``RATE`` requests a
minute a 429. The cancel is ``scancel`` run as the user (sudo), so Slurm itself refuses another user's job too.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.handlers.base import BaseHandler
from tornado import web

from jupyterhub_hpc.interactive import CancelAnswer, RateLimit, cancel_answer
from jupyterhub_hpc.services import HubServices

#: Requests (GET or POST) a user may make of the page per minute.
RATE = 6

PATH = r"/hpc/interactive/cancel"


class CancelInteractiveHandler(BaseHandler):  # type: ignore[misc]
    """Cancel one of the user's own other interactive jobs, after a confirmation (see the module's doc)."""

    limit = RateLimit(RATE, 60.0)

    def server_jobs(self, user: Any) -> set[str]:
        """The jobs of the user's servers (the hub's to stop, not this page's)."""
        jobs: set[str] = set()
        for spawner in user.spawners.values():
            owned = getattr(spawner, "owned_jobs", None)
            if callable(owned):
                jobs.update(str(job) for job in owned())
        return jobs

    async def answer(self, job_id: str, confirmed: bool) -> CancelAnswer:
        user = self.current_user
        services = HubServices.instance()
        servers = self.server_jobs(user)
        answer = await cancel_answer(
            user.name,
            job_id,
            confirmed,
            lambda: services.queries.other_interactive_jobs(user.name, exclude=servers, fresh=True),
            lambda job: services.cancel(user.name, job),
            allowed=self.limit.allow(user.name),
        )
        level = self.log.warning if answer.status >= 400 else self.log.info
        level(
            "Interactive job cancel by %s, job %r: %s%s",
            user.name,
            job_id[:32],
            answer.outcome,
            f" ({answer.problem})" if answer.problem else "",
        )
        return answer

    async def show(self, answer: CancelAnswer, job_id: str) -> None:
        self.set_status(answer.status)
        job = answer.job
        html = await self.render_template(
            "hpc_interactive_cancel.html",
            hpc_outcome=answer.outcome,
            hpc_job=vars(job) if job else None,
            hpc_job_kind=job.kind_words() if job else "",
            hpc_job_id=job_id if answer.outcome != "malformed" else "",
            hpc_problem=answer.problem,
        )
        self.finish(html)

    @web.authenticated
    async def get(self) -> None:
        job_id = self.get_query_argument("job_id", "")
        await self.show(await self.answer(job_id, confirmed=False), job_id)

    @web.authenticated
    async def post(self) -> None:
        # JupyterHub checked the form's XSRF token before this runs (BaseHandler.prepare).
        job_id = self.get_body_argument("job_id", "")
        await self.show(await self.answer(job_id, confirmed=True), job_id)
