"""Helpers shared by the verifiers: Slurm's view of a user's jobs, waiting for a condition, and the state the
fault steps pass to each other (a JSON file in the scenario's ephemeral directory, read by the side_effect
playbooks too)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hubclient import HubClient
from testinfra.host import Host

# The scenario's jupyterhub_subdomain_host (host_vars/jhub-mol-hub.yml) is https://jhub.test:8443: the hub at this
# name, alice's server at alice.jhub.test, all resolved to the hub container's address (conftest.py).
HUB_DOMAIN = "jhub.test"

STATE_DIR = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp")) / "faults"


# The hub's spawner configuration: the cluster model it runs with (the preflight's, shipped by the batchspawner role).
SPAWNER_CONFIG = "/etc/jupyterhub/jupyterhub_config.d/50-batchspawner.json"


def server_of(
    base_url: str, user: str, account: str, options: dict[str, str] | None = None, timeout: float = 120
) -> HubClient:
    """A demo user logged in with a token and a ready server with these options (one left by an earlier step is
    stopped first)."""
    client = HubClient.fresh(base_url, user, f"{user}-demo", "molecule", verify=False)
    resp = client.start_server({"account": account, **(options or {})})
    assert resp.status_code in (201, 202), resp.text
    client.wait_until_ready(timeout=timeout)
    return client


def host_of(model: dict[str, Any], node_type: str) -> str:
    """The compute container of a node type in the shapes scenarios (molecule.yml: jhub-mol-<cluster>-<type>)."""
    return f"jhub-mol-{model['name']}-{node_type.replace('_', '-')}"


def gpu_request(model: dict[str, Any], mig: bool) -> tuple[str, str, int, int] | None:
    """The first GPU type the form offers that is (or is not) a MIG slice, with the recommended cores and memory
    for one (memory within the form's maximum): (node type, GPU type, cores, memory MB)."""
    form = model["form"]
    for gpu_type in form["gpus"]["types"]:
        for name, node in sorted(model["node_types"].items()):
            gpu = node["gpus"].get(gpu_type)
            if gpu and (gpu["mig_of"] is not None) == mig:
                return name, gpu_type, gpu["cores"], min(gpu["memory_mb"], form["memory"]["max"])
    return None


def squeue_of(hub: Host, user: str) -> list[str]:
    """The user's jobs as 'id user state node' lines."""
    out = hub.check_output(f"squeue --noheader -u {user} -o '%i %u %T %N'")
    return [line for line in out.splitlines() if line.strip()]


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.5) -> float:
    """Seconds until predicate() is true; raises after timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return time.monotonic() - start
        except Exception:  # the service is restarting: keep trying
            pass
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s")


def save(name: str, data: dict[str, Any]) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    (STATE_DIR / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True))


def load(name: str) -> dict[str, Any]:
    """What an earlier step saved; a missing file fails the test (the step before it did not run or failed)."""
    return dict(json.loads((STATE_DIR / f"{name}.json").read_text()))
