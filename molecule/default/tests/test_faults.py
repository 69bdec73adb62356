"""Faults a user causes (a job that dies, an account Slurm refuses) and secrets that must not leak. The
infrastructure faults (restarts, slurmctld outage, ended jobs, spawn timeout) are the side_effect steps in
../faults/."""

from __future__ import annotations

import time

from hubclient import HubClient
from molhelpers import squeue_of, wait_for
from testinfra.host import Host


def test_secrets_stay_out_of_logs_and_users_servers(alice: HubClient, hub: Host) -> None:
    cookie_secret = hub.file("/var/lib/jupyterhub/jupyterhub_cookie_secret").content_string.strip()
    proxy_token = hub.file("/etc/configurable-http-proxy/auth.env").content_string.strip().split("=", 1)[1]
    assert len(cookie_secret) == 64 and len(proxy_token) == 64
    journal = hub.check_output("journalctl --no-pager -u jupyterhub -u configurable-http-proxy")
    assert cookie_secret not in journal
    assert proxy_token not in journal
    assert alice.start_server({"account": "def-alice"}).status_code in (201, 202)
    alice.wait_until_ready(timeout=120)
    env = alice.execute("import os; print(sorted(os.environ))")
    assert "CONFIGPROXY_AUTH_TOKEN" not in env
    values = alice.execute("import os; print(' '.join(os.environ.values()))")
    assert proxy_token not in values and cookie_secret not in values
    alice.stop_server()


def spawn_failure(client: HubClient, options: dict[str, str], timeout: float) -> tuple[float, str]:
    """Ask for a server that will fail; return the seconds until the hub gave up, and what the user is told."""
    start = time.monotonic()
    resp = client.start_server(options)
    wait_for(lambda: not client.user_model()["servers"], timeout=timeout, interval=0.25)
    return time.monotonic() - start, resp.text + "\n" + client.last_spawn_message()


def test_slurm_refusal_shows_slurms_reason(base_url: str, hub: Host) -> None:
    bob = HubClient(base_url, verify=False)
    assert bob.login("bob", "bob-demo").status_code == 302
    bob.create_token()
    assert "rrg-demo" in bob.session.get(bob.url("/hub/spawn"), timeout=60).text  # accounts now cached
    # The association goes away after the hub cached it: only Slurm can still say no.
    hub.check_output("sacctmgr --immediate delete user name=bob account=rrg-demo")
    try:
        _took, message = spawn_failure(bob, {"account": "rrg-demo"}, timeout=30)
        assert "Slurm refused the job: sbatch: error: Batch job submission failed: Invalid account" in message
        assert squeue_of(hub, "bob") == []
    finally:
        hub.check_output("sacctmgr --immediate add user name=bob account=rrg-demo cluster=demo")


def test_job_that_dies_before_the_server_starts_fails_fast_with_its_output(alice: HubClient, hub: Host) -> None:
    singleuser = "/opt/jupyterhub/user/bin/batchspawner-singleuser"
    hub.check_output(f"chmod a-x {singleuser}")  # the job's srun step cannot start the server
    try:
        took, message = spawn_failure(alice, {"account": "def-alice"}, timeout=30)
        print(f"spawn failed {took:.1f} s after the request (the job died at once)")
        assert "ended before the server started" in message
        assert "Permission denied" in message
    finally:
        hub.check_output(f"chmod a+x {singleuser}")
    assert squeue_of(hub, "alice") == []
