"""Unit tests of the applications' rules (jupyterhub_hpc.apps: jupyter_env_apps -> ServerProxy.servers), the filter
over them, and the role's rendering of jupyter_server_config.json, with the exact messages operators read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_hpc_resources import filter_plugin
from test_inventories import ansible_playbook

from jupyterhub_hpc.apps import server_proxy_servers, validate_apps
from jupyterhub_hpc.units import ResourceError

ROOT = Path(__file__).resolve().parents[1]

RSTUDIO = {
    "name": "rstudio",
    "title": "RStudio",
    "icon": "/opt/rstudio/rstudio.svg",
    "timeout": 120,
    "command": ["/opt/rstudio/bin/jupyter-rserver", "{unix_socket}"],
    "unix_socket": True,
    "environment": {"RSTUDIO_DATA_HOME": "/tmp"},
}
CODE = {
    "name": "vscode",
    "title": "VS Code",
    "command": ["/opt/code-server/bin/code-server", "--auth=none", "--socket={unix_socket}", "--disable-telemetry"],
    "unix_socket": True,
    "new_browser_tab": False,
    "path": "?folder=/home",
}


def problems(apps: Any) -> list[str]:
    with pytest.raises(ResourceError) as err:
        validate_apps(apps)
    return err.value.problems


def test_a_declaration_renders_as_jupyter_server_proxy_servers() -> None:
    assert server_proxy_servers([RSTUDIO, CODE]) == {
        "rstudio": {
            "command": ["/opt/rstudio/bin/jupyter-rserver", "{unix_socket}"],
            "environment": {"RSTUDIO_DATA_HOME": "/tmp"},
            "timeout": 120,
            "new_browser_tab": True,
            "unix_socket": True,
            "launcher_entry": {
                "enabled": True,
                "title": "RStudio",
                "path_info": "rstudio/",
                "icon_path": "/opt/rstudio/rstudio.svg",
            },
        },
        "vscode": {
            "command": [
                "/opt/code-server/bin/code-server",
                "--auth=none",
                "--socket={unix_socket}",
                "--disable-telemetry",
            ],
            "environment": {},
            "timeout": 60,
            "new_browser_tab": False,
            "unix_socket": True,
            "launcher_entry": {"enabled": True, "title": "VS Code", "path_info": "vscode/?folder=/home"},
        },
    }


def test_the_rendering_is_deterministic_whatever_the_declarations_order() -> None:
    one = json.dumps(server_proxy_servers([RSTUDIO, CODE]), sort_keys=True)
    assert json.dumps(server_proxy_servers([CODE, RSTUDIO]), sort_keys=True) == one
    assert list(server_proxy_servers([CODE, RSTUDIO])) == ["rstudio", "vscode"]
    assert server_proxy_servers([]) == {} and server_proxy_servers(None) == {}


def test_title_defaults_to_the_name() -> None:
    servers = server_proxy_servers(
        [{"name": "tb", "command": ["/usr/bin/tensorboard", "--port={port}"], "shared_tcp_port": True}]
    )
    assert servers["tb"]["launcher_entry"]["title"] == "tb"


@pytest.mark.parametrize(
    ("app", "message"),
    [
        (
            {"name": "x", "command": ["/bin/true"]},
            "jupyter_env_apps[0].name: 'x' must be 2 to 32 of a-z, 0-9 and '-', starting with a letter (it is the "
            "app's URL path, /user/<name>/<app>/)",
        ),
        (
            {"name": "lab", "command": ["/bin/true"]},
            "jupyter_env_apps[0].name: 'lab' is a path the user's server already serves; choose another name",
        ),
        (
            {"name": "desktop", "command": ["/bin/true"]},
            "jupyter_env_apps[0].name: 'desktop' is a path the user's server already serves; choose another name",
        ),
        (
            {"name": "app", "command": "/usr/bin/app --port {port}"},
            "jupyter_env_apps[0].command: '/usr/bin/app --port {port}' must be a non-empty list (program, then each "
            "argument; no shell)",
        ),
        (
            {"name": "app", "command": ["/bin/sh", "-c", "app --port {port}"]},
            "jupyter_env_apps[0].command[0]: '/bin/sh' is a shell or env: give the program itself and its arguments "
            "as a list (nothing is interpolated by a shell)",
        ),
        (
            {"name": "app", "command": ["/usr/bin/env", "app"]},
            "jupyter_env_apps[0].command[0]: '/usr/bin/env' is a shell or env: give the program itself and its "
            "arguments as a list (nothing is interpolated by a shell)",
        ),
        (
            {"name": "app", "command": ["code-server", "{port}"]},
            "jupyter_env_apps[0].command[0]: 'code-server' must be an absolute path to the program (no PATH search)",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app", "--user={user}"]},
            "jupyter_env_apps[0].command[1]: '--user={user}' has a brace that is not a placeholder ({port}, "
            "{unix_socket}, {base_url})",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app", "a\nb"]},
            "jupyter_env_apps[0].command[1]: 'a\\nb' has a control character",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app", 8080]},
            "jupyter_env_apps[0].command[1]: 8080 is not a string",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app"], "timeout": 0},
            "jupyter_env_apps[0].timeout: 0 must be a number of seconds from 1 to 600",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app"], "timeout": True},
            "jupyter_env_apps[0].timeout: true must be a number of seconds from 1 to 600",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app"], "environment": {"A-B": "1"}},
            "jupyter_env_apps[0].environment: 'A-B' is not a variable name",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app"], "environment": {"PORT": 1}},
            "jupyter_env_apps[0].environment.PORT: 1 is not a string",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app"], "icon": "app.png"},
            "jupyter_env_apps[0].icon: 'app.png' must be the absolute path of an SVG file on the compute nodes",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app"], "path": "../../hub/admin"},
            "jupyter_env_apps[0].path: '../../hub/admin' must be a relative URL path inside the app (e.g. "
            "'auth-sign-in')",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app"], "unix_socket": "yes"},
            "jupyter_env_apps[0].unix_socket: 'yes' is not true or false",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app"], "shared_tcp_port": "yes"},
            "jupyter_env_apps[0].shared_tcp_port: 'yes' is not true or false",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app"], "title": "{port}"},
            "jupyter_env_apps[0].title: '{port}' has a brace that is not a placeholder (none here)",
        ),
        (
            {"name": "app", "command": ["/usr/bin/app"], "args": ["x"]},
            "jupyter_env_apps[0]: unknown key(s) args (known: command, environment, icon, name, new_browser_tab, "
            "path, shared_tcp_port, timeout, title, unix_socket)",
        ),
        ("rstudio", "jupyter_env_apps[0]: 'rstudio' is not a mapping (name, command, title, ...)"),
    ],
)
def test_a_broken_app_is_refused_with_its_path(app: Any, message: str) -> None:
    # Each case breaks one rule; how it listens is right (a private socket) unless that is the case's own rule.
    if isinstance(app, dict) and "unix_socket" not in app:
        app = {"unix_socket": True, **app}
    assert problems([app]) == [message]


TCP_PORT = (
    "listens on a TCP port ({port}) that every other user of the compute node can connect to: set unix_socket: true "
    "(a socket in a private directory), or shared_tcp_port: true for an app that checks each connection itself or "
    "serves nothing private"
)


@pytest.mark.parametrize(
    "app",
    [
        # What another user of the node would connect to: code-server and RStudio with their own login off, on a port.
        {
            "name": "code",
            "command": ["/opt/code-server/bin/code-server", "--auth=none", "--bind-addr=127.0.0.1:{port}"],
        },
        {"name": "rstudio", "command": ["/usr/lib/rstudio-server/bin/rserver", "--auth-none=1", "--www-port={port}"]},
        # Saying no to both is saying nothing; a fixed port or one in the environment is a TCP port too.
        {"name": "code", "command": ["/opt/code-server/bin/code-server"], "unix_socket": False},
        {"name": "code", "command": ["/opt/code-server/bin/code-server"], "shared_tcp_port": False},
        {"name": "app", "command": ["/usr/bin/app", "--port", "8888"], "unix_socket": False, "shared_tcp_port": False},
        {"name": "app", "command": ["/usr/bin/app"], "environment": {"PORT": "{port}"}},
    ],
)
def test_an_app_on_a_tcp_port_is_refused_unless_the_site_says_so(app: dict[str, Any]) -> None:
    assert problems([CODE, app]) == [f"jupyter_env_apps[1]: {TCP_PORT}"]
    with pytest.raises(ResourceError, match=r"^jupyter_env_apps\[0\]: listens on a TCP port \(\{port\}\) "):
        server_proxy_servers([app])


def test_a_private_socket_and_a_shared_port_together_are_refused() -> None:
    app = {"name": "vscode", "command": ["/opt/code-server/bin/code-server", "--socket={unix_socket}"]}
    assert problems([{**app, "unix_socket": True, "shared_tcp_port": True}]) == [
        "jupyter_env_apps[0]: unix_socket: true and shared_tcp_port: true contradict each other: with unix_socket "
        "jupyter-server-proxy proxies to the socket only and gives the app no port ({port} is 0); keep the one that "
        "says how the app listens"
    ]


def test_a_private_socket_or_a_port_the_site_declared_shared_is_accepted() -> None:
    docs = {
        "name": "docs-http",
        "command": ["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", "/usr/share/doc"],
        "shared_tcp_port": True,
    }
    servers = server_proxy_servers([CODE, docs, {**CODE, "name": "vscode2", "shared_tcp_port": False}])
    assert servers["vscode"]["unix_socket"] is True and servers["vscode2"]["unix_socket"] is True
    # The site's statement is checked, not passed on: jupyter-server-proxy has no such key, and gives a free port.
    assert "unix_socket" not in servers["docs-http"]
    assert not any("shared_tcp_port" in server for server in servers.values())


def test_every_broken_rule_is_named_and_names_are_unique() -> None:
    assert problems([RSTUDIO, {"name": "Bad!", "command": [], "unix_socket": True}, dict(RSTUDIO)]) == [
        "jupyter_env_apps[1].name: 'Bad!' must be 2 to 32 of a-z, 0-9 and '-', starting with a letter (it is the "
        "app's URL path, /user/<name>/<app>/)",
        "jupyter_env_apps[1].command: [] must be a non-empty list (program, then each argument; no shell)",
        "jupyter_env_apps[2].name: 'rstudio' is also jupyter_env_apps[0]'s name",
    ]
    with pytest.raises(ResourceError, match=r"^jupyter_env_apps: 'x' is not a list of apps$"):
        validate_apps("x")


def test_the_filter_gives_the_same_servers_and_messages() -> None:
    from ansible.errors import AnsibleFilterError

    filters = filter_plugin().FilterModule().filters()
    assert filters["hpc_server_proxy_apps"]([CODE, RSTUDIO]) == server_proxy_servers([RSTUDIO, CODE])
    with pytest.raises(AnsibleFilterError, match=r"site_apps\[0\]\.command\[0\]: 'app' must be an absolute path"):
        filters["hpc_server_proxy_apps"]([{"name": "app", "command": ["app"]}], "site_apps")


def test_preflight_refuses_a_broken_app_naming_its_path() -> None:
    apps = [RSTUDIO, {"name": "vscode", "command": ["/bin/bash", "-c", "code-server --bind-addr 0.0.0.0:{port}"]}]
    run = ansible_playbook(
        "-i", "inventories/demo", "playbooks/preflight.yml", "-e", json.dumps({"jupyter_env_apps": apps})
    )
    assert run.returncode != 0
    assert "an application in jupyter_env_apps is broken, nothing was deployed" in run.stdout
    assert "jupyter_env_apps[1].command[0]: '/bin/bash' is a shell or env" in run.stdout


def test_preflight_refuses_an_app_on_a_port_the_nodes_other_users_reach() -> None:
    apps = [CODE, {"name": "code", "command": ["/opt/code-server/bin/code-server", "--auth=none", "--port={port}"]}]
    run = ansible_playbook(
        "-i", "inventories/demo", "playbooks/preflight.yml", "-e", json.dumps({"jupyter_env_apps": apps})
    )
    assert run.returncode != 0
    assert "an application in jupyter_env_apps is broken, nothing was deployed" in run.stdout
    assert f"jupyter_env_apps[1]: {TCP_PORT}" in run.stdout


def test_the_role_renders_the_apps_into_the_users_server_config(tmp_path: Path) -> None:
    """The role's own variables (vars/main.yml), as its task writes them: the site's apps under ServerProxy, beside
    the no-news defaults; no apps, no ServerProxy section (an unchanged file for sites without apps)."""
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        f"""
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    jupyterhub_hpc_build_dir: /nonexistent
    jupyterhub_hub_env: /opt/jupyterhub/hub
    jupyterhub_user_env: /opt/jupyterhub/user
  roles:
    - {{role: {ROOT}/roles/jupyter_env, tags: [never]}}
  tasks:
    - ansible.builtin.copy:
        content: "{{{{ __jupyter_env_server_config | to_nice_json(sort_keys=True) }}}}\\n"
        dest: "{{{{ out }}}}"
        mode: "0644"
"""
    )
    out = tmp_path / "config.json"
    run = ansible_playbook(str(playbook), "-e", json.dumps({"out": str(out), "jupyter_env_apps": [CODE, RSTUDIO]}))
    assert run.returncode == 0, run.stdout[-3000:]
    config = json.loads(out.read_text())
    assert config["ServerProxy"] == {"servers": server_proxy_servers([RSTUDIO, CODE])}
    assert config["LabApp"]["extension_manager"] == "readonly"
    text = out.read_text()
    assert text.index('"rstudio"') < text.index('"vscode"')

    run = ansible_playbook(str(playbook), "-e", json.dumps({"out": str(out)}))
    assert run.returncode == 0, run.stdout[-3000:]
    assert "ServerProxy" not in json.loads(out.read_text())
