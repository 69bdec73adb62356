"""The port callback of a starting server, accepting only the port.

``batchspawner-singleuser`` (in the user's job) picks a free port and posts ``{"port": N}`` to
``<hub API>/batchspawner`` with its server's token. batchspawner's own handler sets *every* attribute of the
spawner that the posted JSON names: with her server's token (in her job's environment) a user sets
``exec_prefix`` or ``batch_cancel_cmd`` and the hub runs her command as its own account (docs/security.md).

This handler replaces it at the same path: the server's own token, a body of at most ``MAX_BODY`` bytes that is
exactly ``{"port": <int 1-65535>}``, sent while that server is starting and has no port yet. Anything else gets
HTTP 400 and changes nothing.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from jupyterhub import apihandlers
from jupyterhub.apihandlers import APIHandler
from tornado import web

PATH = r"/api/batchspawner"
MAX_BODY = 64  # '{"port": 65535}' is 15 bytes


class PortReportError(ValueError):
    """A port report that is refused; the message says why (no echo of more than a few characters)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _value in pairs]
    if len(keys) != len(set(keys)):
        raise PortReportError("a key appears twice")
    return dict(pairs)


def parse_port_report(body: bytes) -> int:
    """The port of a well-formed report; PortReportError for anything else."""
    if len(body) > MAX_BODY:
        raise PortReportError(f"the body has {len(body)} bytes, at most {MAX_BODY} are accepted")
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PortReportError("the body is not JSON") from err
    if not isinstance(data, dict) or set(data) != {"port"}:
        names = sorted(data)[:5] if isinstance(data, dict) else type(data).__name__
        raise PortReportError(f'the body must be exactly {{"port": <1-65535>}}, got {str(names)[:80]}')
    port = data["port"]
    # type(), not isinstance(): bool is an int subclass, and refused too
    if type(port) is not int or not 1 <= port <= 65535:  # pylint: disable=unidiomatic-typecheck
        raise PortReportError(f"port must be an integer from 1 to 65535, got {repr(port)[:20]}")
    return port


def apply_port_report(spawner: Any, body: bytes) -> int:
    """Set the port of a starting spawner from a report; PortReportError (nothing changed) otherwise."""
    port = parse_port_report(body)
    if getattr(spawner, "pending", None) != "spawn":
        raise PortReportError("this server is not starting")
    if getattr(spawner, "port", 0):
        raise PortReportError("this server has already reported its port")
    spawner.port = port
    return port


def spawner_of_token(user: Any, token: str | None) -> Any:
    """The spawner whose server holds this token (the token of a starting server), or None."""
    if not token:
        return None
    for spawner in (getattr(user, "spawners", None) or {}).values():
        own = getattr(spawner, "api_token", None)
        if own and hmac.compare_digest(str(own).encode(), token.encode()):
            return spawner
    return None


class PortReportHandler(APIHandler):  # type: ignore[misc]
    """POST <hub API>/batchspawner: a starting server reports its port, and nothing else."""

    @web.authenticated
    def post(self) -> None:
        user = self.current_user
        name = getattr(user, "name", "?")
        spawner = spawner_of_token(user, self.get_auth_token())
        if spawner is None:
            # Another token of the user (or a service's): it does not belong to a server.
            raise web.HTTPError(403, "Only a server's own token may report its port")
        try:
            port = apply_port_report(spawner, self.request.body or b"")
        except PortReportError as err:
            self.log.warning("Refused a port report for %s's server: %s", name, err)
            raise web.HTTPError(400, f"Refused: {err}") from err
        self.log.info("Server of %s reported port %d", name, port)
        self.set_status(201)
        self.finish(json.dumps({"message": "port recorded"}))


def install() -> None:
    """Put this handler where batchspawner's was (importing batchspawner registers its own)."""
    import batchspawner.api  # noqa: F401  # registers upstream's handler first, so that it can be removed here

    handlers = apihandlers.default_handlers
    handlers[:] = [entry for entry in handlers if entry[0] != PATH]
    handlers.append((PATH, PortReportHandler))


def installed_handlers() -> list[Any]:
    """The handlers registered at the port-callback path (the tests check there is exactly this one)."""
    return [entry[1] for entry in apihandlers.default_handlers if entry[0] == PATH]
