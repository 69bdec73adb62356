# Installed by the batchspawner role (files/50-batchspawner-handlers.py): the spawner's own pages, which must be
# Python (handler classes). Each is a JupyterHub handler under /hub/hpc/ (jupyterhub_hpc.handlers).
"""The Server Options form's helpers (Slurm's start estimate, ...), served by the hub beside its own pages."""

from jupyterhub_hpc.handlers import handlers

c = get_config()  # type: ignore[name-defined]  # noqa: F821  # pylint: disable=undefined-variable
c.JupyterHub.extra_handlers = [*c.JupyterHub.get("extra_handlers", []), *handlers()]
