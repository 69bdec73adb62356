"""Fault 4 (jobs_end.yml): a job ended by its walltime and a job cancelled with scancel. The hub marked each
server stopped within its poll interval of the job's end (sacct), and the user can start a new server."""

from __future__ import annotations

from datetime import datetime

from hubclient import HubClient
from molhelpers import load
from testinfra.host import Host

POLL_INTERVAL = 30  # Spawner.poll_interval (JupyterHub's default), plus up to 10 % jitter


def job_end(hub: Host, job: str) -> tuple[str, float]:
    state, end = hub.check_output(f"sacct -X -n -P -j {job} -o State,End").split("|")
    return state.split()[0], datetime.fromisoformat(end.strip()).timestamp()


def test_the_hub_noticed_the_ended_jobs_within_its_poll_interval(hub: Host) -> None:
    noticed = load("jobs_end")
    servers = load("servers")["users"]
    for name, expected_state in (("alice", "TIMEOUT"), ("bob", "CANCELLED")):
        state, ended = job_end(hub, servers[name]["job"])
        assert state == expected_state
        lag = noticed[name] - ended
        print(f"{name}: job {state}, server marked stopped {lag:.1f} s after the job ended")
        assert -1 <= lag <= POLL_INTERVAL * 1.1 + 3


def test_the_user_can_start_a_new_server(base_url: str) -> None:
    alice = HubClient(base_url, verify=False, user="alice", token=load("servers")["users"]["alice"]["token"])
    assert alice.start_server({"account": "def-alice"}).status_code in (201, 202)
    alice.wait_until_ready(timeout=120)
    assert alice.execute("7*6") == "42"
    alice.stop_server()
