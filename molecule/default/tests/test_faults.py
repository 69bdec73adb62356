"""Faults a production hub meets: its own restart, a cancelled job, and secrets that must not leak."""

from __future__ import annotations

import time
from collections.abc import Callable

from conftest import squeue_of
from hubclient import HubClient
from testinfra.host import Host


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


def test_running_server_survives_a_hub_restart(alice: HubClient, hub: Host) -> None:
    assert alice.start_server({"account": "def-alice"}).status_code in (201, 202)
    alice.wait_until_ready(timeout=120)
    (job_before,) = squeue_of(hub, "alice")
    hub.check_output("systemctl restart jupyterhub")
    took = wait_for(lambda: alice.server_api("GET", "/status").status_code == 200, timeout=10)
    print(f"server answered through the proxy {took:.2f} s after the hub restart")
    wait_for(lambda: alice.user_model()["servers"][""]["ready"], timeout=30)
    assert squeue_of(hub, "alice") == [job_before]  # the same job: nothing was resubmitted
    assert alice.execute("6*7") == "42"
    alice.stop_server()


def test_cancelled_job_is_noticed_and_user_can_start_again(alice: HubClient, hub: Host) -> None:
    assert alice.start_server({"account": "def-alice"}).status_code in (201, 202)
    alice.wait_until_ready(timeout=120)
    ((job_id, *_),) = (line.split() for line in squeue_of(hub, "alice"))
    hub.check_output(f"scancel {job_id}")
    took = wait_for(lambda: not alice.user_model()["servers"], timeout=45, interval=1)
    print(f"hub marked the server stopped {took:.1f} s after scancel")
    assert alice.start_server({"account": "def-alice"}).status_code in (201, 202)
    alice.wait_until_ready(timeout=120)
    alice.stop_server()


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
    bob = HubClient(base_url)
    assert bob.login("bob", "bob-demo").status_code == 302
    bob.create_token()
    assert "rrg-demo" in bob.session.get(bob.url("/hub/spawn"), timeout=60).text  # accounts now cached
    # The association goes away after the hub cached it: only Slurm can still say no.
    hub.check_output("sacctmgr --immediate delete user name=bob account=rrg-demo")
    try:
        _, message = spawn_failure(bob, {"account": "rrg-demo"}, timeout=30)
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


def test_server_survives_slurmctld_being_down_longer_than_the_poll_interval(alice: HubClient, hub: Host) -> None:
    assert alice.start_server({"account": "def-alice"}).status_code in (201, 202)
    alice.wait_until_ready(timeout=120)
    (job,) = squeue_of(hub, "alice")
    hub.check_output("systemctl stop slurmctld")
    try:
        time.sleep(40)  # longer than the hub's 30 s poll: it asks squeue, which cannot answer
        assert alice.user_model()["servers"][""]["ready"]
        assert alice.execute("2**10") == "1024"
    finally:
        hub.check_output("systemctl start slurmctld")
    wait_for(lambda: squeue_of(hub, "alice") == [job], timeout=60, interval=1)
    assert alice.user_model()["servers"][""]["ready"]
    alice.stop_server()


def test_proxy_restart_routes_come_back_within_the_route_check_interval(alice: HubClient, hub: Host) -> None:
    assert alice.start_server({"account": "def-alice"}).status_code in (201, 202)
    alice.wait_until_ready(timeout=120)
    hub.check_output("systemctl restart configurable-http-proxy")
    took = wait_for(lambda: alice.server_api("GET", "/status").status_code == 200, timeout=40, interval=0.5)
    print(f"user's route back {took:.1f} s after the proxy restart (route check every 30 s)")
    assert alice.execute("3*3") == "9"
    alice.stop_server()
