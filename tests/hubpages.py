"""The hub's pages rendered as JupyterHub renders them, for the unit tests of the project's templates: its loader order
(the site's templates first, JupyterHub's own also under "templates/"), the role's Jinja options (autoescape, the
package's i18n extension) and the context its page handlers give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from jupyterhub._data import DATA_FILES_PATH

TEMPLATES = Path(__file__).resolve().parents[1] / "roles/jupyterhub/files/templates"

CONTEXT: dict[str, Any] = {
    "base_url": "/hub/",
    "prefix": "/",
    "user": None,
    "login_url": "/hub/login",
    "logout_url": "/hub/logout",
    "authenticator_login_url": "/hub/login?next=",
    "static_url": lambda path, **kw: f"/hub/static/{path}",
    "version_hash": "",
    "services": [],
    "parsed_scopes": {},
    "expanded_scopes": set(),
    "xsrf": "XSRF-TOKEN",
    "xsrf_token": "XSRF-TOKEN",
    "hpc_cluster_name": "Demo",
    "hpc_login_help": "Log in with your Demo account.",
    "hpc_login_help_translations": {"fr": "Connectez-vous avec votre compte Demo."},
    "announcement": "",
}


def environment() -> jinja2.Environment:
    """As JupyterHub's init_tornado_settings, with the role's jinja_environment_options."""
    loader = jinja2.ChoiceLoader(
        [
            jinja2.PrefixLoader({"templates": jinja2.FileSystemLoader([f"{DATA_FILES_PATH}/templates"])}, "/"),
            jinja2.FileSystemLoader([str(TEMPLATES), f"{DATA_FILES_PATH}/templates"]),
        ]
    )
    return jinja2.Environment(
        loader=loader, autoescape=True, enable_async=True, extensions=["jupyterhub_hpc.i18n.JinjaI18n"]
    )
