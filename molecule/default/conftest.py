"""Fixtures for the Molecule verifiers (tests/ and the fault steps in faults/): the scenario's hosts (through
Ansible's inventory) and a hub client that talks to the proxy's public port from outside the containers, as a
user's browser does."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import testinfra
import urllib3

# The helpers in tests/ (browser, hostnames, hubclient) import by name: pytest puts tests/ on the import path
# (pythonpath in pyproject.toml, the rootdir's configuration for these verifiers too).
from browser import CHROMIUM, CHROMIUM_FLAGS
from hostnames import chromium_rules, map_domain
from hubclient import HubClient
from molhelpers import HUB_DOMAIN, SPAWNER_CONFIG, server_of, squeue_of
from playwright.sync_api import Browser, Page
from testinfra.host import Host

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
# The scenario's proxy has a self-signed certificate (tests check it on its own, see test_site.py).
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def _first(group: str) -> str:
    from testinfra.utils.ansible_runner import AnsibleRunner

    return str(AnsibleRunner(INVENTORY).get_hosts(group)[0])


@pytest.fixture(scope="session")
def hub() -> Host:
    return testinfra.get_host(f"ansible://{_first('hub')}?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="session")
def node() -> Host:
    return testinfra.get_host(f"ansible://{_first('compute')}?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="session")
def hub_address() -> str:
    """The hub container's address on the scenario network."""
    return subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", _first("hub")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[0]


@pytest.fixture(scope="session")
def base_url(hub_address: str) -> str:
    """The proxy's public URL, at the hub's name as users type it."""
    map_domain(HUB_DOMAIN, hub_address)
    return f"https://{HUB_DOMAIN}:8443"


@pytest.fixture(scope="session")
def plain_url(base_url: str) -> str:
    """The plain-HTTP port, which only redirects to HTTPS."""
    return base_url.replace("https://", "http://").replace(":8443", ":8000")


@pytest.fixture(scope="session")
def browser_args(hub_address: str) -> list[str]:
    return [chromium_rules(HUB_DOMAIN, hub_address)]


@pytest.fixture
def client(base_url: str) -> HubClient:
    return HubClient(base_url, verify=False)


@pytest.fixture
def alice(base_url: str) -> Iterator[HubClient]:
    """alice, logged in with the form, with an API token; her server is stopped afterwards whatever happens."""
    c = HubClient(base_url, verify=False)
    resp = c.login("alice", "alice-demo")
    assert resp.status_code == 302, resp.text[:500]
    c.create_token()
    if c.user_model().get("servers", {}).get(""):
        c.stop_server()
    yield c
    if c.user_model().get("servers", {}).get(""):
        c.stop_server()


@pytest.fixture(scope="module")
def running(base_url: str, hub: Host) -> Iterator[HubClient]:
    """bob's server, started once for a test module (its kernels, its modules panel) and stopped after it: no job
    of his is left in Slurm."""
    client = server_of(base_url, "bob", "def-bob")
    yield client
    client.stop_server()
    assert squeue_of(hub, "bob") == []


@pytest.fixture(scope="session")
def model(hub: Host) -> dict[str, Any]:
    """The cluster model the hub runs with (the preflight's, shipped by the batchspawner role), as JSON data."""
    config = hub.file(SPAWNER_CONFIG).content_string
    data: dict[str, Any] = json.loads(config)["HPCSlurmSpawner"]["cluster"]
    return data


SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "build" / "screenshots"))


# The browser: pytest-playwright's fixtures (browser once per session; context and page per test, so every test
# starts with no cookies), launched from Debian's Chromium instead of a downloaded one.
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any], browser_args: list[str]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": [*CHROMIUM_FLAGS, *browser_args]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """The scenario's certificate is self-signed (test_site.py checks it on its own)."""
    return {**browser_context_args, "ignore_https_errors": True, "viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def page_fr(browser: Browser, browser_context_args: dict[str, Any]) -> Iterator[Page]:
    """As page, in a browser context whose language is Canadian French (Accept-Language: fr-CA)."""
    context = browser.new_context(**{**browser_context_args, "locale": "fr-CA"})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def shot(page: Page) -> Callable[[str], Path]:
    """Saves a screenshot of the page as build/screenshots/<name>.png (what a user saw at that step)."""

    def save(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=path)
        return path

    return save
