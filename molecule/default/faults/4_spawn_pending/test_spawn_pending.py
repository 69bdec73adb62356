"""Before the slurmctld outage: carol's spawn is pending (the only node drained), next to the running servers."""

from __future__ import annotations

from hubclient import HubClient
from molhelpers import save, squeue_of, wait_for
from testinfra.host import Host


def test_a_spawn_is_pending(base_url: str, hub: Host) -> None:
    hub.check_output("scontrol update NodeName=jhub-mol-node1 State=DRAIN Reason=fault-test")
    carol = HubClient(base_url, verify=False)
    assert carol.login("carol", "carol-demo").status_code == 302
    carol.create_token(note="fault steps")
    assert carol.start_server({"account": "def-carol"}).status_code == 202
    wait_for(lambda: [line.split()[2] for line in squeue_of(hub, "carol")] == ["PENDING"], timeout=30)
    ((job, *_rest),) = (line.split() for line in squeue_of(hub, "carol"))
    save("pending", {"token": carol.token, "job": job})
