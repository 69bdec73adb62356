"""Applications beside JupyterLab in users' servers, through jupyter-server-proxy: the site declares them (the
``jupyter_env`` role's ``jupyter_env_apps``), these rules check them and render them as ``ServerProxy.servers``.

An app is site data: a command the user's single-user server starts inside the Slurm job, as the user, when the
user opens its launcher (or its URL, ``/user/<name>/<app>/``), and proxies to. The preflight refuses a broken
declaration naming its path (``jupyter_env_apps[1].command[0]: ...``); the role renders the same declarations
with ``server_proxy_servers``, deterministically (sorted JSON), into the users' ``jupyter_server_config.json``.

No shell: jupyter-server-proxy executes the command as a list (no ``sh -c``), and a shell as the program is refused,
so nothing in an app's arguments is ever interpolated by a shell. The only substitutions are jupyter-server-proxy's
own ``{port}``, ``{unix_socket}`` and ``{base_url}``; any other brace is refused (it would fail at launch).

No port for the node's other users unless the site says so: an app on a TCP port (``{port}``) is reachable by every
other user of the compute node (loopback is the node's, not the user's), and an RStudio or code-server with its own
authentication off would run code as the user for any of them. With ``unix_socket: true`` jupyter-server-proxy
(4.6, ``handlers.py`` ``SuperviseAndProxyHandler.unix_socket``) makes the socket in a new ``mkdtemp`` directory, mode
0700, the user's own. So an app declares either ``unix_socket: true`` or ``shared_tcp_port: true`` (the site's
statement that the app checks each connection itself or serves nothing private; checked here, not passed on).

No I/O; the standard library, and ``units.ResourceError`` for the error every rule raises: the controller's
preflight imports it (``filter_plugins/hpc_resources.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from jupyterhub_hpc.units import ResourceError

__all__ = ["PLACEHOLDERS", "RESERVED_NAMES", "server_proxy_servers", "validate_apps"]

# What jupyter-server-proxy substitutes in a command, its environment and its arguments (str.format).
PLACEHOLDERS = ("{port}", "{unix_socket}", "{base_url}")
# Paths the single-user server already serves (Jupyter Server, JupyterLab, Notebook, the hub's extension) and the
# desktop that jupyter-remote-desktop-proxy registers itself: an app of that name would shadow them or be shadowed.
RESERVED_NAMES = frozenset(
    {
        "api",
        "custom",
        "desktop",
        "desktop-websockify",
        "doc",
        "edit",
        "files",
        "hub",
        "kernelspecs",
        "lab",
        "login",
        "logout",
        "lsp",
        "metrics",
        "nbconvert",
        "notebooks",
        "proxy",
        "server-proxy",
        "static",
        "terminals",
        "tree",
        "user",
        "view",
    }
)
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox", "env"})
KEYS = frozenset(
    {
        "name",
        "command",
        "title",
        "icon",
        "timeout",
        "environment",
        "path",
        "new_browser_tab",
        "unix_socket",
        "shared_tcp_port",
    }
)

_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", re.ASCII)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_ABS_PATH = re.compile(r"/[A-Za-z0-9._+@%/-]*", re.ASCII)
_URL_PATH = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*", re.ASCII)
_BRACES = re.compile(r"\{port\}|\{unix_socket\}|\{base_url\}")
DEFAULT_TIMEOUT = 60
MAX_TIMEOUT = 600


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def _text(value: Any, where: str, problems: list[str], *, allow_placeholders: bool = True) -> str | None:
    """A string without control characters, with jupyter-server-proxy's placeholders only."""
    if not isinstance(value, str):
        problems.append(f"{where}: {_show(value)} is not a string")
        return None
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        problems.append(f"{where}: {value!r} has a control character")
        return None
    rest = _BRACES.sub("", value) if allow_placeholders else value
    if "{" in rest or "}" in rest:
        allowed = ", ".join(PLACEHOLDERS) if allow_placeholders else "none here"
        problems.append(f"{where}: {value!r} has a brace that is not a placeholder ({allowed})")
        return None
    return value


def _bool(app: Mapping[str, Any], key: str, default: bool, where: str, problems: list[str]) -> bool:
    value = app.get(key, default)
    if not isinstance(value, bool):
        problems.append(f"{where}.{key}: {_show(value)} is not true or false")
        return default
    return value


def _one(app: Any, where: str, problems: list[str]) -> dict[str, Any] | None:
    """One app's ``{"name": ..., "server": ...}``, or None with each broken rule in ``problems``."""
    if not isinstance(app, Mapping):
        problems.append(f"{where}: {_show(app)} is not a mapping (name, command, title, ...)")
        return None
    unknown = sorted(str(key) for key in app if key not in KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})")
    start = len(problems)
    name = _name(app.get("name"), where, problems)
    argv = _command(app.get("command"), where, problems)
    title = _title(app.get("title", name if isinstance(name, str) else ""), where, problems)
    icon = _icon(app.get("icon"), where, problems)
    timeout = _timeout(app.get("timeout", DEFAULT_TIMEOUT), where, problems)
    env = _environment(app.get("environment", {}), where, problems)
    path = _path(app.get("path", ""), where, problems)
    new_tab = _bool(app, "new_browser_tab", True, where, problems)
    unix_socket = _listening(app, where, problems)
    if len(problems) > start:
        return None
    assert isinstance(name, str) and isinstance(title, str)
    entry: dict[str, Any] = {"enabled": True, "title": title, "path_info": f"{name}/{path}"}
    if icon is not None:
        entry["icon_path"] = icon
    server: dict[str, Any] = {
        "command": argv,
        "environment": env,
        "timeout": timeout,
        "new_browser_tab": new_tab,
        "launcher_entry": entry,
    }
    if unix_socket:
        server["unix_socket"] = True
    return {"name": name, "server": server}


def _name(name: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(
            f"{where}.name: {_show(name)} must be 2 to 32 of a-z, 0-9 and '-', starting with a letter (it is the "
            "app's URL path, /user/<name>/<app>/)"
        )
    elif name in RESERVED_NAMES:
        problems.append(f"{where}.name: {name!r} is a path the user's server already serves; choose another name")
    return name


def _command(command: Any, where: str, problems: list[str]) -> list[str]:
    """The command as a list: an absolute program (no shell), then its arguments with placeholders."""
    if not isinstance(command, list) or not command:
        problems.append(
            f"{where}.command: {_show(command)} must be a non-empty list (program, then each argument; no shell)"
        )
        return []
    argv: list[str] = []
    for index, arg in enumerate(command):
        text = _text(arg, f"{where}.command[{index}]", problems, allow_placeholders=index > 0)
        if text is not None:
            argv.append(text)
    program = command[0]
    if isinstance(program, str) and not _ABS_PATH.fullmatch(program):
        problems.append(f"{where}.command[0]: {program!r} must be an absolute path to the program (no PATH search)")
    elif isinstance(program, str) and program.rsplit("/", 1)[-1] in SHELLS:
        problems.append(
            f"{where}.command[0]: {program!r} is a shell or env: give the program itself and its arguments as a "
            "list (nothing is interpolated by a shell)"
        )
    return argv


def _title(title: Any, where: str, problems: list[str]) -> str | None:
    """The launcher's title, stripped (None: refused)."""
    title_text = _text(title, f"{where}.title", problems, allow_placeholders=False)
    if title_text is not None and not 1 <= len(title_text.strip()) <= 64:
        problems.append(f"{where}.title: {title!r} must have 1 to 64 characters")
    return title_text.strip() if title_text is not None else None


def _icon(icon: Any, where: str, problems: list[str]) -> Any:
    if icon is not None and (not isinstance(icon, str) or not _ABS_PATH.fullmatch(icon) or not icon.endswith(".svg")):
        problems.append(f"{where}.icon: {_show(icon)} must be the absolute path of an SVG file on the compute nodes")
    return icon


def _timeout(timeout: Any, where: str, problems: list[str]) -> Any:
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or not 1 <= timeout <= MAX_TIMEOUT
    ):
        problems.append(f"{where}.timeout: {_show(timeout)} must be a number of seconds from 1 to {MAX_TIMEOUT}")
    return timeout


def _environment(environment: Any, where: str, problems: list[str]) -> dict[str, str]:
    if not isinstance(environment, Mapping):
        problems.append(f"{where}.environment: {_show(environment)} is not a mapping (NAME: value)")
        return {}
    env: dict[str, str] = {}
    for key, value in environment.items():
        if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
            problems.append(f"{where}.environment: {_show(key)} is not a variable name")
            continue
        text = _text(value, f"{where}.environment.{key}", problems)
        if text is not None:
            env[key] = text
    return env


def _path(path: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(path, str) or not _URL_PATH.fullmatch(path) or path.startswith("/") or ".." in path.split("/"):
        problems.append(f"{where}.path: {_show(path)} must be a relative URL path inside the app (e.g. 'auth-sign-in')")
    return path


def _listening(app: Mapping[str, Any], where: str, problems: list[str]) -> bool:
    """``unix_socket``: the app listens on a socket in a private directory; otherwise the site must say that its
    TCP port may be shared (``shared_tcp_port``), and not both."""
    unix_socket = _bool(app, "unix_socket", False, where, problems)
    shared_tcp_port = _bool(app, "shared_tcp_port", False, where, problems)
    if not isinstance(app.get("unix_socket", False), bool) or not isinstance(app.get("shared_tcp_port", False), bool):
        return unix_socket
    if not unix_socket and not shared_tcp_port:
        problems.append(
            f"{where}: listens on a TCP port ({{port}}) that every other user of the compute node can connect to: "
            "set unix_socket: true (a socket in a private directory), or shared_tcp_port: true for an app that "
            "checks each connection itself or serves nothing private"
        )
    elif unix_socket and shared_tcp_port:
        problems.append(
            f"{where}: unix_socket: true and shared_tcp_port: true contradict each other: with unix_socket "
            "jupyter-server-proxy proxies to the socket only and gives the app no port ({port} is 0); keep the "
            "one that says how the app listens"
        )
    return unix_socket


def validate_apps(apps: Any, path: str = "jupyter_env_apps") -> list[dict[str, Any]]:
    """The declared apps, checked: each as ``{"name": ..., "server": <its ServerProxy.servers entry>}``, in the
    declaration's order. Every broken rule is named with its path (``ResourceError``)."""
    if apps is None:
        apps = []
    if not isinstance(apps, list):
        raise ResourceError(f"{path}: {_show(apps)} is not a list of apps")
    problems: list[str] = []
    checked: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, app in enumerate(apps):
        one = _one(app, f"{path}[{index}]", problems)
        if one is None:
            continue
        if one["name"] in seen:
            problems.append(f"{path}[{index}].name: {one['name']!r} is also {path}[{seen[one['name']]}]'s name")
            continue
        seen[one["name"]] = index
        checked.append(one)
    if problems:
        raise ResourceError(problems)
    return checked


def server_proxy_servers(apps: Any, path: str = "jupyter_env_apps") -> dict[str, Any]:
    """jupyter-server-proxy's ``ServerProxy.servers`` for the declared apps (name -> settings), or a
    ``ResourceError`` naming each broken rule. The same declarations give the same dict (sorted by name)."""
    return {one["name"]: one["server"] for one in sorted(validate_apps(apps, path), key=lambda one: one["name"])}
