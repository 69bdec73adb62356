"""Requests that meet a server in the middle of something answer with what happened, never HTTP 500.

* A start that its user stopped: the spawn page's Stop, Log Out and the REST API's DELETE cancel a pending start
  (JupyterHub cancels its spawn future). The request that asked for the start (the form's POST, the API's POST) is
  still waiting on that future and gets its ``CancelledError``, which tornado answers as an internal error. Here
  it answers 409 with what happened; a cancellation of the request itself (the hub shutting down) still propagates.
* A stop while the hub checks the server (after the hub's own restart it polls every server it had), while a start
  this stop cancelled still cleans up, or while another stop runs: JupyterHub raises ``RuntimeError("... pending
  check")``, a 500. Here the stop waits for the check (bounded), then stops what
  is still running (a server the check found gone is already stopped); a check that outlasts the wait answers 503
  with Retry-After.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tornado import web

from jupyterhub_hpc.i18n import gettext as _

__all__ = ["CHECK_WAIT_SECONDS", "guard_spawn", "guard_stop", "install"]

#: How long a stop waits for the hub's check of the server to end.
CHECK_WAIT_SECONDS = 30.0

_installed = False


async def _after_check(spawner: Any, wait: float = CHECK_WAIT_SECONDS) -> None:
    """Return once the spawner is no longer being checked, nor finishing a start it was told to stop; 503 if it
    still is after ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while spawner.pending in ("check", "spawn"):
        if time.monotonic() >= deadline:
            busy = web.HTTPError(
                503,
                _("The hub is checking this server after a restart: try again in a minute."),
                reason="Server Being Checked",
            )
            busy.headers = {"Retry-After": "60"}  # type: ignore[attr-defined]  # JupyterHub's error pages send an exception's headers
            raise busy
        await asyncio.sleep(0.2)


def guard_spawn(original: Any) -> Any:
    """``spawn_single_user`` whose interruption by the user's stop answers 409."""

    async def spawn_single_user(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this request itself was cancelled
            raise web.HTTPError(
                409,
                _("The start was stopped before the server started (Stop, Log Out or the API): no server runs."),
                reason="Start Stopped",
            ) from None

    spawn_single_user.__doc__ = original.__doc__
    return spawn_single_user


def guard_stop(original: Any) -> Any:
    """``stop_single_user`` that waits for the hub's check of the server first."""

    async def stop_single_user(self: Any, user: Any, server_name: str = "") -> Any:
        spawner = user.spawners.get(server_name)
        if spawner is not None and spawner.pending in ("check", "spawn"):
            # The hub's check after its restart; or a start this very stop cancelled (JupyterHub's DELETE cancels
            # it, waits one second, then stops), still cleaning up (its scancel) when Slurm is slow.
            await _after_check(spawner)
            checked = user.spawners.get(server_name)
            if checked is None or not checked.active:
                return None  # the check or the cancelled start left nothing running: nothing to stop
        if spawner is not None and spawner.pending == "stop":
            return getattr(spawner, "_stop_future", None)  # a stop already under way (JupyterHub would raise: 500)
        return await original(self, user, server_name)

    stop_single_user.__doc__ = original.__doc__
    return stop_single_user


def install() -> None:
    """Wrap JupyterHub's ``BaseHandler.spawn_single_user`` and ``stop_single_user`` (once per process)."""
    global _installed
    if _installed:
        return
    from jupyterhub.handlers.base import BaseHandler

    BaseHandler.spawn_single_user = guard_spawn(BaseHandler.spawn_single_user)
    BaseHandler.stop_single_user = guard_stop(BaseHandler.stop_single_user)
    _installed = True
