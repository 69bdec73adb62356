"""Fixtures for the Molecule verifiers: the scenario's hosts (through Ansible's inventory) and a hub client
that talks to the proxy's public port from outside the containers, as a user's browser does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import testinfra
from testinfra.host import Host

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))

from hubclient import HubClient

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")


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
def base_url() -> str:
    """The proxy's public URL at the hub container's address on the scenario network."""
    name = _first("hub")
    ip = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[0]
    return f"http://{ip}:8000"


@pytest.fixture
def client(base_url: str) -> HubClient:
    return HubClient(base_url)


def squeue_of(hub: Host, user: str) -> list[str]:
    """The user's jobs as 'id user state node' lines."""
    out = hub.check_output(f"squeue --noheader -u {user} -o '%i %u %T %N'")
    return [line for line in out.splitlines() if line.strip()]


@pytest.fixture
def alice(base_url: str) -> Iterator[HubClient]:
    """alice, logged in with the form, with an API token; her server is stopped afterwards whatever happens."""
    c = HubClient(base_url)
    resp = c.login("alice", "alice-demo")
    assert resp.status_code == 302, resp.text[:500]
    c.create_token()
    if c.user_model().get("servers", {}).get(""):
        c.stop_server()
    yield c
    if c.user_model().get("servers", {}).get(""):
        c.stop_server()
