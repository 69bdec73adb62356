# Installed by the jupyterhub role (files/config.d/10-user-hosts.py): JupyterHub's settings that must be Python.
"""Users' host names (with JupyterHub's subdomain_host): JupyterHub's 'idna' rule, except that a user name with a
capital letter never becomes a host label as it is. Host names ignore case: 'Alice' would be served at alice's host,
in alice's origin (jupyterhub_hpc.names.subdomain_hook)."""

from jupyterhub_hpc.names import subdomain_hook

c = get_config()  # type: ignore[name-defined]  # noqa: F821  # pylint: disable=undefined-variable
c.JupyterHub.subdomain_hook = subdomain_hook
