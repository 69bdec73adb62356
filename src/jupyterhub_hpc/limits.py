"""Request bodies bounded before anything reads them.

JupyterHub's HTTP server takes tornado's default, 100 MiB per request body, from anyone (the body is read, and a
JSON body parsed on the event loop, before authentication): a few megabytes of many small JSON values froze
``/hub/health`` for seconds. Tornado refuses a longer body while reading it (HTTP 400, connection closed), before
any handler runs. The hub's own requests are small (the form, the REST API's options, admin calls); a site that
posts larger ones raises ``RequestLimits.max_body_bytes``.
"""

from __future__ import annotations

from tornado.httpserver import HTTPServer
from traitlets import Integer
from traitlets.config import Configurable

__all__ = ["RequestLimits"]


class RequestLimits(Configurable):
    """Limits of the hub's HTTP server, applied before JupyterHub creates it (its configuration file)."""

    max_body_bytes = Integer(
        64 * 1024,
        min=1024,
        help="Longest request body the hub reads (bytes); a longer one is refused with HTTP 400 before any handler "
        "or parser sees it.",
    ).tag(config=True)

    def apply(self) -> None:
        """Every tornado HTTPServer this process creates from now on (JupyterHub's one) gets the limit."""
        HTTPServer.configure(None, max_body_size=self.max_body_bytes)
