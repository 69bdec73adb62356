"""Helpers of the conda scenario's verifiers (tests/, updated/): what the shared environment must hold and holds, and
a user's kernel in it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from hubclient import HubClient
from molhelpers import squeue_of
from testinfra.host import Host

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
CONDA = "/opt/jupyterhub/conda/bin/conda"
ENV = "/opt/jupyterhub/shared-conda"


def pins(tzdata: str) -> dict[str, str]:
    """What the environment must hold: the kernel lock (the venv backend's), python and the scenario's tzdata."""
    lock = (PROJECT / "environments" / "kernel.lock.txt").read_text()
    locked = dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", lock, re.MULTILINE))
    return {name.lower(): version for name, version in locked.items()} | {"python": "3.13.5", "tzdata": tzdata}


def installed(hub: Host) -> dict[str, str]:
    listing = json.loads(hub.check_output(f"{CONDA} list --json --prefix {ENV}"))
    return {p["name"]: p["version"] for p in listing}


def kernel_output(hub: Host, base_url: str, code: str) -> str:
    """bob starts a server (a Slurm job) and runs code in the shared conda environment's kernel."""
    client = HubClient(base_url, verify=False)
    assert client.login("bob", "bob-demo").status_code == 302
    client.create_token()
    resp = client.start_server({"account": "def-bob"})
    assert resp.status_code in (201, 202), resp.text
    try:
        client.wait_until_ready(timeout=120)
        return client.execute(code, kernel_name="shared-conda")
    finally:
        client.stop_server()
        assert squeue_of(hub, "bob") == []
