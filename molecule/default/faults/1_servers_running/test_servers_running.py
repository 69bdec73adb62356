"""Before the faults: alice and bob have running servers (their tokens and jobs saved for the next steps)."""

from __future__ import annotations

from hubclient import HubClient
from molhelpers import save, squeue_of
from testinfra.host import Host


def test_users_have_running_servers(base_url: str, hub: Host) -> None:
    users = {}
    for name, account in (("alice", "def-alice"), ("bob", "def-bob")):
        client = HubClient.fresh(base_url, name, f"{name}-demo", "fault steps", verify=False)
        assert client.start_server({"account": account}).status_code in (201, 202)
        users[name] = client
    jobs = {}
    for name, client in users.items():
        client.wait_until_ready(timeout=120)
        ((job, *_rest),) = (line.split() for line in squeue_of(hub, name))
        jobs[name] = job
    save("servers", {"users": {name: {"token": c.token, "job": jobs[name]} for name, c in users.items()}})
