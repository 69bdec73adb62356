"""Log Out that ends the user's Slurm jobs, and says so.

JupyterHub's ``shutdown_on_logout`` stops a user's running servers at logout, then sends her to the login page
without a word. ``HPCLogoutHandler`` (put at ``/hub/logout`` in the place of JupyterHub's own by the spawner's
module, ``install``, whatever the authenticator) does the same and more:

* a server still starting (its job queued) is interrupted too, as the spawn page's Cancel does: its job is
  cancelled, so logging out never leaves an allocation behind;
* the page after logout says, per server, which Slurm job was stopped (or is still stopping, or could not be);
* a logout that would stop servers is done only when the click comes from the hub's own pages or from the user's
  own server (the Referer's origin). On a hub where each user's server has a host name of its own, another user's
  server is the same *site* as the hub, so its pages could otherwise end anyone's jobs with a mere link or image
  (the browser sends the hub's cookies along). It must also be a top-level navigation (the browser's
  ``Sec-Fetch-Mode: navigate`` and ``Sec-Fetch-Dest: document``): an image, a fetch or a frame in a notebook
  someone gave her renders in her own JupyterLab, on her own origin. And a Referer that carries a ``next`` (the
  login or spawn page forwarding to wherever a link said) is not a click of hers. Any other logout gets a page
  asking to confirm, and the confirmation is a POST checked against JupyterHub's XSRF token.

Nothing a user sends reaches the page but through Jinja's escaping: job ids are Slurm's digits, server names the
hub's own records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from jupyterhub.handlers.login import LogoutHandler

from jupyterhub_hpc.ledger import JOB_ID

Outcome = Literal["stopped", "stopping", "cancelled", "failed", "kept"]


@dataclass(frozen=True)
class ServerAtLogout:
    """What logging out did to one of the user's servers (``name`` "" is the default server)."""

    name: str
    job_id: str  # Slurm's job id, "" if the spawner has none (not a Slurm spawner, or not submitted yet)
    outcome: Outcome


def job_of(spawner: Any) -> str:
    """The Slurm job of a spawner (running or still starting), or "" if it has none (not a Slurm spawner)."""
    owned_jobs = getattr(spawner, "owned_jobs", None)
    jobs = [str(job) for job in owned_jobs()] if callable(owned_jobs) else []
    return jobs[0] if jobs and JOB_ID.fullmatch(jobs[0]) else ""


def install() -> None:
    """Put HPCLogoutHandler in the place of JupyterHub's own at /logout (its default handlers, which the hub reads
    when it builds its routes): the spawner's module calls this, so Log Out ends Slurm jobs whatever the
    authenticator. An authenticator that registers a /logout of its own comes first in the hub's routes; such a one
    must derive from HPCLogoutHandler to keep this behaviour (docs/design.md)."""
    from jupyterhub import handlers

    handlers.default_handlers[:] = [
        (route, HPCLogoutHandler, *rest) if route == r"/logout" else (route, handler, *rest)
        for route, handler, *rest in handlers.default_handlers
    ]


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def referer_trusted(referer: str, request_host: str, own_paths: Iterable[str], user_host: str = "") -> bool:
    """Whether a logout comes from the hub's own pages or the user's own server.

    ``referer``: the request's Referer header. ``request_host``: its Host header, the hub's name as the browser
    knows it. ``own_paths``: the path prefixes that are the hub's and the user's on that host (``/hub/``,
    ``/user/alice/``). ``user_host``: the user's server's own origin when users have host names of their own
    (``https://alice.hub.example.org``), "" otherwise; any page there is hers.
    """
    if not referer:
        return False
    try:
        parts = urlsplit(referer)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    # A page that forwards to its `next` (login, spawn, spawn-pending) passes its own URL on as the Referer: the
    # logout was the link's choice, not a click on that page.
    if "next" in parse_qs(parts.query, keep_blank_values=True):
        return False
    netloc = parts.netloc.lower()
    if user_host and netloc == _netloc(user_host):
        return True
    if netloc != request_host.lower():
        return False
    path = parts.path or "/"
    return any(prefix and path.startswith(prefix) for prefix in own_paths)


def top_level_navigation(headers: Mapping[str, str]) -> bool:
    """Whether the request is the browser opening a page (a link, a menu, a typed URL), from its Fetch Metadata
    headers; an image, a script, a fetch or a frame is not. No headers (an old browser, a script): not known to be."""
    return headers.get("Sec-Fetch-Mode", "") == "navigate" and headers.get("Sec-Fetch-Dest", "") == "document"


async def end_servers(
    spawners: dict[str, Any],
    stop: Callable[[str], Awaitable[Any]],
    settle_seconds: float = 1.0,
) -> list[ServerAtLogout]:
    """Stop every server of a user: running ones with ``stop`` (the hub's stop_single_user, which returns the stop's
    future once it is done or slow), starting ones by interrupting their spawn first (as JupyterHub's REST API
    does for a pending spawn; the spawner's start then cancels the submitted job). Servers stopping already are
    reported as such. Never raises: a server that could not be stopped is reported ``failed``."""

    async def one(name: str, spawner: Any) -> ServerAtLogout | None:
        job = job_of(spawner)
        pending = spawner.pending
        if pending == "stop":
            return ServerAtLogout(name, job, "stopping")
        if pending not in (None, "spawn") or not spawner.active:
            return None
        try:
            if pending == "spawn":
                spawn = getattr(spawner, "_spawn_future", None)
                if spawn is not None:
                    spawn.cancel()
                await asyncio.sleep(settle_seconds)  # the cancelled start cancels its job and clears the flag
                if spawner.pending:
                    return ServerAtLogout(name, job, "stopping")
                if spawner.active:
                    await stop(name)
                return ServerAtLogout(name, job, "cancelled")
            future = await stop(name)
        except Exception:
            return ServerAtLogout(name, job, "failed")
        if isinstance(future, asyncio.Future) and not future.done():
            return ServerAtLogout(name, job, "stopping")
        if isinstance(future, asyncio.Future) and not future.cancelled() and future.exception() is not None:
            return ServerAtLogout(name, job, "failed")
        return ServerAtLogout(name, job, "stopped")

    results = await asyncio.gather(*(one(name, spawner) for name, spawner in sorted(spawners.items())))
    return [result for result in results if result is not None]


def running_servers(spawners: dict[str, Any]) -> list[ServerAtLogout]:
    """The servers a logout would stop (or, with shutdown_on_logout off, leaves running)."""
    return [
        ServerAtLogout(name, job_of(spawner), "kept")
        for name, spawner in sorted(spawners.items())
        if spawner.active and spawner.pending in (None, "spawn")
    ]


class HPCLogoutHandler(LogoutHandler):  # type: ignore[misc]
    """JupyterHub's logout, which says what happened to the user's jobs (see the module's doc)."""

    _hpc_servers: list[ServerAtLogout]

    def _from_own_pages(self, user: Any) -> bool:
        user_host = str(user.host) if self.subdomain_host else ""
        own = [self.hub.base_url, user.url]
        headers = self.request.headers
        return top_level_navigation(headers) and referer_trusted(
            headers.get("Referer", ""), self.request.host, own, user_host
        )

    async def _shutdown_servers(self, user: Any) -> None:
        self._hpc_servers = await end_servers(user.spawners, lambda name: self.stop_single_user(user, name))
        for server in self._hpc_servers:
            level = self.log.warning if server.outcome == "failed" else self.log.info
            level("Logout of %s: server %r, job %s: %s", user.name, server.name, server.job_id or "-", server.outcome)

    async def _logout(self) -> None:
        self._hpc_servers = []
        user = self.current_user
        kept = running_servers(user.spawners) if user and not self.shutdown_on_logout else []
        await self.default_handle_logout()
        await self.handle_logout()
        self._jupyterhub_user = None  # as JupyterHub's get: the page shows "log in", not "log out"
        html = await self.render_template(
            "logout.html",
            hpc_servers=[vars(server) for server in self._hpc_servers or kept],
            hpc_logout_confirm=False,
        )
        self.finish(html)

    async def get(self) -> None:
        user = self.current_user
        if user and self.shutdown_on_logout and running_servers(user.spawners) and not self._from_own_pages(user):
            self.log.warning(
                "Logout of %s asked from elsewhere (Referer origin %r): confirmation required",
                user.name,
                _netloc(self.request.headers.get("Referer", "")),
            )
            html = await self.render_template(
                "logout.html",
                hpc_servers=[vars(server) for server in running_servers(user.spawners)],
                hpc_logout_confirm=True,
            )
            self.finish(html)
            return
        await self._logout()

    async def post(self) -> None:
        # JupyterHub checked the form's XSRF token before this runs (BaseHandler.prepare).
        await self._logout()
