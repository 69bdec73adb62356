"""Fault 3 (slurmctld_outage.yml): slurmctld was down for 60 s. No running server was dropped, the pending
spawn completed once Slurm was back, and the queue holds exactly the users' servers (nothing orphaned)."""

from __future__ import annotations

import time

from hubclient import HubClient
from molhelpers import load, squeue_of
from testinfra.host import Host


def test_running_servers_were_kept(base_url: str, hub: Host) -> None:
    assert load("slurmctld_outage")["down_seconds"] >= 60
    for name, saved in load("servers")["users"].items():
        client = HubClient(base_url, verify=False, user=name, token=saved["token"])
        assert client.user_model()["servers"][""]["ready"], name
        assert [line.split()[0] for line in squeue_of(hub, name)] == [saved["job"]]
        assert client.execute("2**10") == "1024"
    assert "Slurm gave no answer about job" in hub.check_output("journalctl --no-pager -u jupyterhub")


def test_the_pending_spawn_completed_and_nothing_is_orphaned(base_url: str, hub: Host) -> None:
    pending = load("pending")
    carol = HubClient(base_url, verify=False, user="carol", token=pending["token"])
    carol.wait_until_ready(timeout=180)
    print(f"carol's pending spawn ready {time.time() - load('slurmctld_outage')['back_at']:.1f} s after Slurm was back")
    assert [line.split()[0] for line in squeue_of(hub, "carol")] == [pending["job"]]
    assert carol.execute("1+1") == "2"
    carol.stop_server()
    queue = hub.check_output("squeue --noheader -o '%i %u'").split("\n")
    expected = {f"{saved['job']} {name}" for name, saved in load("servers")["users"].items()}
    assert {line.strip() for line in queue if line.strip()} == expected
