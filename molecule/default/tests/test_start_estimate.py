"""Slurm's start estimate on the Server Options form, on the real Slurm: it follows the node's load (another user's
job fills it, then ends), and from the attacker's side it runs nothing but sbatch --test-only, only for a logged-in
user's own valid request, with the page's XSRF token, at a bounded rate."""

from __future__ import annotations

import shlex
import time

import requests
from hubclient import HubClient
from molhelpers import squeue_of, wait_for
from testinfra.host import Host

BASE = {"account": "def-alice", "time": "1", "cores": "1", "memory": "512", "interface": "lab"}


def estimate(client: HubClient, **fields: str) -> requests.Response:
    """What the form's script posts (the page's XSRF token in its header)."""
    return client.session.post(
        client.url("/hub/hpc/estimate"),
        data={**BASE, **fields},
        headers=client.xsrf_headers(),
        allow_redirects=False,
        timeout=60,
    )


def fill_the_node(hub: Host, hours: int) -> str:
    """bob's job holding all the memory of the demo's one compute node (8000 MB: its cores are shared, the demo
    oversubscribes them, its memory is not) for ``hours``; its id."""
    out = hub.check_output(
        "runuser -u bob -- sbatch --parsable --job-name=node-filler --account=def-bob --cpus-per-task=1 "
        f"--mem=8000 --time={hours * 60} --output=/dev/null --wrap 'sleep 3600'"
    )
    job_id = out.strip().split(";")[0]
    wait_for(lambda: any(line.split()[2] == "RUNNING" for line in squeue_of(hub, "bob")), 60)
    return job_id


def test_the_form_carries_the_estimates_line(alice: HubClient) -> None:
    page = alice.session.get(alice.url("/hub/spawn"), timeout=60).text
    assert 'id="hpc-estimate"' in page
    assert 'data-url="/hub/hpc/estimate"' in page


def test_the_estimate_follows_the_nodes_load(alice: HubClient, hub: Host) -> None:
    free = estimate(alice, cores="1")
    assert free.status_code == 200, free.text
    assert free.json()["state"] == "start"
    assert free.json()["message"] == "Slurm expects this session to start now on node type cpu."
    job_id = fill_the_node(hub, hours=2)
    try:
        # Another request (the same one would be answered from the cache for a few seconds).
        full = estimate(alice, cores="2")
        assert full.status_code == 200, full.text
        answer = full.json()
        assert answer["state"] == "start"
        # Slurm places her job after bob's ends: about 2 h from now.
        assert "start in about 2 h on node type cpu" in answer["message"], answer
    finally:
        hub.check_output(f"scancel {shlex.quote(job_id)}")
    wait_for(lambda: squeue_of(hub, "bob") == [], 60)
    freed = estimate(alice, cores="3")
    assert freed.json()["message"] == "Slurm expects this session to start now on node type cpu.", freed.text
    assert squeue_of(hub, "alice") == []  # --test-only: nothing was ever submitted


def test_a_request_no_node_can_hold_is_refused_before_slurm(alice: HubClient, hub: Host) -> None:
    resp = estimate(alice, cores="64", memory="999999")
    assert resp.status_code == 400
    assert "Cores: 64 is above the maximum of 4" in resp.json()["message"]
    assert squeue_of(hub, "alice") == []


def test_hostile_fields_are_refused_and_never_reach_a_shell(alice: HubClient, hub: Host) -> None:
    marker = "/tmp/estimate-attack"
    hub.run(f"rm -f {marker}")
    for field, value in (
        ("account", f"def-alice --wrap='touch {marker}'"),
        ("account", f"def-alice; touch {marker}"),
        ("time", f"1 --wrap 'touch {marker}'"),
        ("memory", f"$(touch {marker})"),
        ("gpu", f"a100:1\n#SBATCH --wrap=touch {marker}"),
    ):
        resp = estimate(alice, **{field: value})
        assert resp.status_code == 400, (field, value, resp.status_code)
    assert not hub.file(marker).exists


def test_without_the_pages_xsrf_token_nothing_is_asked(alice: HubClient) -> None:
    """A page of another site (or a user's own server) posting with alice's cookie: refused."""
    resp = alice.session.post(alice.url("/hub/hpc/estimate"), data=BASE, allow_redirects=False, timeout=60)
    assert resp.status_code == 403


def test_without_a_login_nothing_is_asked(client: HubClient) -> None:
    resp = client.session.post(client.url("/hub/hpc/estimate"), data=BASE, allow_redirects=False, timeout=60)
    assert resp.status_code in (302, 403)
    assert "/hub/login" in resp.headers.get("location", "/hub/login")


def test_a_users_rate_is_bounded(base_url: str) -> None:
    """The form asks after each change; a script asking in a loop gets 429 past a dozen a minute. As carol: alice's
    estimates in the browser steps that follow within the minute must not meet this test's window."""
    carol = HubClient(base_url, verify=False)
    assert carol.login("carol", "carol-demo").status_code == 302
    base = {**BASE, "account": "def-carol"}
    statuses = [
        carol.session.post(
            carol.url("/hub/hpc/estimate"),
            data={**base, "memory": str(600 + i)},
            headers=carol.xsrf_headers(),
            allow_redirects=False,
            timeout=60,
        ).status_code
        for i in range(16)
    ]
    assert 429 in statuses, statuses
    assert statuses.count(200) <= 12, statuses
    time.sleep(1)


def test_the_sudo_rule_admits_test_only_and_nothing_more(hub: Host) -> None:
    allowed = "runuser -u jupyterhub -- sudo -n -l -u alice {}"
    assert hub.run(allowed.format("/usr/bin/sbatch --test-only")).rc == 0
    for command in (
        "/usr/bin/sbatch --test-only --wrap=id",
        "/usr/bin/sbatch --test-only /tmp/x.sh",
        "/usr/bin/sbatch --wrap=id",
    ):
        assert hub.run(allowed.format(command)).rc != 0, command
