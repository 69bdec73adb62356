"""The software-modules panel (jupyterlmod) in a user's server in a Slurm job: its server extension is on and answers
for the logged-in user, it lists the site's Lmod modules, a module loaded through it reaches the kernels started
after it (not those already running), and collections are saved per user by Lmod itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hubclient import HubClient
from testinfra.host import Host

USER_ENV = "/opt/jupyterhub/user"
DEMO_TOOLS = (
    "import os, subprocess; print(os.environ.get('DEMO_TOOLS_VERSION'), "
    "subprocess.run(['sh', '-c', 'command -v demo-tools || echo none'], capture_output=True, text=True).stdout.strip())"
)


def module_api(client: HubClient, method: str, path: str = "", body: dict[str, Any] | None = None) -> Any:
    """jupyterlmod's REST API (under the server's root, not /api), with the user's token."""
    resp = client.session.request(
        method,
        client.server_url(f"/module{path}"),
        headers={"Authorization": f"token {client.token}"},
        json=body,
        timeout=60,
    )
    assert resp.status_code == 200, (method, path, resp.status_code, resp.text[:300])
    return resp.json()


def test_panel_is_configured_in_the_users_environment(hub: Host) -> None:
    config = json.loads(hub.file(f"{USER_ENV}/etc/jupyter/jupyter_server_config.json").content_string)
    assert config["ServerApp"]["jpserver_extensions"] == {"jupyterlmod": True}
    # Terminals that keep what the panel loaded (a login shell would reset PATH through /etc/profile).
    assert config["ServerApp"]["terminado_settings"] == {"shell_command": ["/bin/bash"]}
    page_config = json.loads(hub.file(f"{USER_ENV}/etc/jupyter/labconfig/page_config.json").content_string)
    assert page_config == {"disabledExtensions": {"@cmd-ntrf/jupyterlab-lmod": False}}
    lmod_sh = hub.file(f"{USER_ENV}/etc/jupyterhub-hpc/lmod.sh")
    assert lmod_sh.user == "root"
    assert lmod_sh.mode == 0o644
    assert "MODULEPATH=/opt/demo-modules/modulefiles${MODULEPATH:+:$MODULEPATH}" in lmod_sh.content_string


def test_extension_answers_for_the_logged_in_user_and_lists_the_sites_modules(running: HubClient) -> None:
    assert module_api(running, "GET", "/system") == "lmod"
    modules = module_api(running, "GET", "/modules")
    assert {"demo-tools/1.0", "python/3", "r/4"} <= set(modules), modules
    paths = module_api(running, "GET", "/paths")
    # The demo's tree is on Lmod's own path too: lmod.sh adds it only once.
    assert paths.count("/opt/demo-modules/modulefiles") == 1, paths
    assert module_api(running, "GET") == []  # nothing loaded at start


def test_extension_refuses_a_request_without_the_users_credentials(running: HubClient) -> None:
    anonymous = requests.Session()
    anonymous.trust_env = False
    resp = anonymous.get(running.server_url("/module/modules"), verify=False, timeout=30, allow_redirects=False)
    assert resp.status_code in (302, 403), resp.status_code


def test_a_loaded_module_reaches_new_kernels_not_running_ones(running: HubClient) -> None:
    before = running.server_api("POST", "/kernels", json={"name": "python3"})
    assert before.status_code == 201, before.text
    kernel_id = before.json()["id"]
    try:
        assert module_api(running, "POST", body={"modules": ["demo-tools/1.0"]}) is None  # no warning from Lmod
        assert module_api(running, "GET") == ["demo-tools/1.0"]
        new = running.execute(DEMO_TOOLS).split()
        assert new == ["1.0", "/opt/demo-modules/software/demo-tools/1.0/bin/demo-tools"]
        assert running._execute_on(kernel_id, DEMO_TOOLS, 60).split() == ["None", "none"]
    finally:
        running.server_api("DELETE", f"/kernels/{kernel_id}")
        module_api(running, "DELETE", body={"modules": ["demo-tools/1.0"]})
    assert module_api(running, "GET") == []
    assert running.execute(DEMO_TOOLS).split() == ["None", "none"]


@pytest.fixture
def collection(hub: Host) -> Iterator[str]:
    """A collection bob saves; gone afterwards (his home is shared with the hub node)."""
    hub.run("rm -f /home/bob/.lmod.d/hpc-test")
    yield "hpc-test"
    hub.run("rm -f /home/bob/.lmod.d/hpc-test")


def test_collections_are_saved_per_user_by_lmod(running: HubClient, collection: str, hub: Host) -> None:
    module_api(running, "POST", body={"modules": ["demo-tools/1.0"]})
    try:
        saved = module_api(running, "POST", "/collections", {"name": collection})
        assert f'Saved current collection of modules to: "{collection}"' in saved
        assert collection in module_api(running, "GET", "/collections")
        file = hub.file(f"/home/bob/.lmod.d/{collection}")
        assert file.user == "bob"
        assert "demo-tools" in file.content_string
    finally:
        module_api(running, "DELETE", body={"modules": ["demo-tools/1.0"]})
    assert module_api(running, "GET") == []
    # Restoring the collection loads its modules again.
    module_api(running, "PATCH", "/collections", {"name": collection})
    try:
        assert module_api(running, "GET") == ["demo-tools/1.0"]
    finally:
        module_api(running, "DELETE", body={"modules": ["demo-tools/1.0"]})
