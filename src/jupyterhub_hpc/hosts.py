"""The hub only on the hub's own host.

With users' servers on host names of their own (JupyterHub's ``subdomain_host``), the proxy sends every request it
has no route for to the hub, whatever its host: ``alice.hub.example.org/hub/login`` would be the hub's login page in
alice's origin, where any page alice serves from her own server is the same origin (a colleague who logs in there
hands alice a session she can script). JupyterHub serves its pages and API on any host.

Here a request whose host is a user's (any name under the hub's domain) is answered before anything else of the
hub runs (no user looked up, no cookie read or set): a page (GET, HEAD) is sent to the same path on the hub's own
host, anything else is refused (403). Requests at the hub's host, and at hosts that are not under its domain (the
compute nodes and services reaching the hub's API at ``hub_connect_url``), are served as before.
"""

from __future__ import annotations

from typing import Any

__all__ = ["hostname", "install", "is_user_host"]

_installed = False


def hostname(host: str) -> str:
    """The name part of a Host header (no port, no trailing dot, lower case); '' for a malformed one."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal is never a user's host
        return host.partition("]")[0] + "]"
    name = host.rpartition(":")[0] if ":" in host else host
    return name.rstrip(".")


def is_user_host(host: str, domain: str) -> bool:
    """Whether ``host`` (a Host header) is a user's host under the hub's ``domain`` (JupyterHub's setting)."""
    domain = domain.strip().lower().rstrip(".")
    return bool(domain) and hostname(host).endswith("." + domain)


def answer_on_user_host(handler: Any) -> bool:
    """Answer a request for the hub that arrived at a user's host; False (nothing done) for any other."""
    settings = handler.settings
    subdomain_host = str(settings.get("subdomain_host") or "")
    if not subdomain_host or not is_user_host(handler.request.host or "", str(settings.get("domain") or "")):
        return False
    handler.clear()  # JupyterHub's default headers only; nothing of the request is looked at
    if handler.request.method in ("GET", "HEAD"):
        handler.redirect(subdomain_host.rstrip("/") + handler.request.uri, permanent=False)
    else:
        handler.set_status(403)
        handler.set_header("Content-Type", "text/plain; charset=utf-8")
        handler.finish("The hub answers only at its own host name.\n")
    return True


def install() -> None:
    """Wrap JupyterHub's ``BaseHandler.prepare`` (once per process): a request at a user's host is answered first."""
    global _installed
    if _installed:
        return
    from jupyterhub.handlers.base import BaseHandler

    original = BaseHandler.prepare

    async def prepare(self: Any) -> Any:
        if answer_on_user_host(self):
            return None
        return await original(self)

    prepare.__doc__ = original.__doc__
    BaseHandler.prepare = prepare
    _installed = True
