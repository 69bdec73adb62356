"""The hub's own pages beside JupyterHub's, each under the hub's prefix (``/hub/hpc/...``), each its own module.

JupyterHub adds ``extra_handlers`` to its web application with the hub's prefix; the batchspawner role's
``jupyterhub_config.d`` drop-in (``50-batchspawner-handlers.py``) sets them from ``handlers()``. Every handler is a
JupyterHub ``BaseHandler``: a logged-in user (cookie) only, its POSTs checked against JupyterHub's XSRF token, and
it acts for that user only (never for a user named in the request).
"""

from __future__ import annotations

from typing import Any


def handlers() -> list[tuple[str, Any]]:
    """The (path, handler) pairs for ``c.JupyterHub.extra_handlers``; imported when the hub loads its configuration
    (JupyterHub's modules are loaded by then)."""
    from jupyterhub_hpc.estimate import EstimateHandler
    from jupyterhub_hpc.interactive_handler import PATH, CancelInteractiveHandler

    return [(r"/hpc/estimate", EstimateHandler), (PATH, CancelInteractiveHandler)]
