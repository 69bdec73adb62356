"""The one-interactive-job rule before Start, on the real Slurm: while alice holds an allocation (salloc), the Server
Options form names it and explains the rule; its Cancel (a confirmation page, then a POST with JupyterHub's XSRF
token) ends it; bob cannot cancel her job through the page; once the job has ended the warning is gone."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import pytest
from hubclient import HubClient
from molhelpers import wait_for
from testinfra.host import Host

CANCEL = "/hub/hpc/interactive/cancel"


def as_user(hub: Host, user: str, command: str) -> str:
    """A command run by ``user`` on the hub (a shell of hers, as on a login node); its stdout."""
    return str(hub.check_output(f"runuser -u {user} -- /bin/sh -c {shlex.quote(command)}"))


def alice_jobs(hub: Host) -> list[str]:
    out = hub.check_output("squeue --noheader -u alice -o '%i'")
    return [line.strip() for line in out.splitlines() if line.strip()]


@pytest.fixture
def allocation(hub: Host) -> Iterator[str]:
    """An allocation of alice's that stays without a shell (salloc --no-shell), cancelled afterwards whatever
    happens; its job id."""
    out = as_user(
        hub,
        "alice",
        "timeout 120 salloc --no-shell --account=def-alice --time=10 --cpus-per-task=1 --mem=256 "
        "--job-name=probe-alloc 2>&1",
    )
    match = re.search(r"Granted job allocation ([0-9]+)", out)
    assert match, out
    job_id = match.group(1)
    yield job_id
    hub.run(f"scancel {job_id}")


def spawn_page(client: HubClient) -> str:
    resp = client.session.get(client.url("/hub/spawn"), timeout=60)
    assert resp.status_code == 200, resp.text[:500]
    return resp.text


def post_cancel(client: HubClient, job_id: str, xsrf: bool = True) -> int:
    data = {"job_id": job_id}
    if xsrf:
        data["_xsrf"] = client.session.cookies.get("_xsrf") or ""
    resp = client.session.post(client.url(CANCEL), data=data, allow_redirects=False, timeout=60)
    return resp.status_code


def test_the_form_names_her_allocation_and_its_cancel_ends_it(alice: HubClient, hub: Host, allocation: str) -> None:
    page = spawn_page(alice)
    assert 'class="alert alert-warning hpc-interactive"' in page, page[:2000]
    assert f"Slurm job {allocation}: an interactive allocation (salloc or srun), RUNNING" in page
    assert "wait with the regular batch jobs" in page
    assert f'{CANCEL}?job_id={allocation}"' in page

    # The link only asks: nothing is cancelled by a GET.
    confirm = alice.session.get(alice.url(f"{CANCEL}?job_id={allocation}"), timeout=60)
    assert confirm.status_code == 200 and f"Cancel Slurm job {allocation}?" in confirm.text
    assert 'name="_xsrf"' in confirm.text
    assert allocation in alice_jobs(hub)

    # A POST without JupyterHub's XSRF token is refused before the handler runs.
    assert post_cancel(alice, allocation, xsrf=False) == 403
    assert allocation in alice_jobs(hub)

    # A malformed id: 400, nothing cancelled.
    assert post_cancel(alice, f"{allocation};true") == 400
    assert allocation in alice_jobs(hub)

    assert post_cancel(alice, allocation) == 200
    wait_for(lambda: allocation not in alice_jobs(hub), timeout=60)
    wait_for(lambda: "hpc-interactive" not in spawn_page(alice), timeout=30)  # the form's list: a few seconds' cache


def test_bob_cannot_cancel_alices_job(base_url: str, hub: Host, allocation: str) -> None:
    bob = HubClient(base_url, verify=False)
    assert bob.login("bob", "bob-demo").status_code == 302
    assert "hpc-interactive" not in spawn_page(bob) or allocation not in spawn_page(bob)
    confirm = bob.session.get(bob.url(f"{CANCEL}?job_id={allocation}"), timeout=60)
    assert confirm.status_code == 404
    assert post_cancel(bob, allocation) == 404
    assert allocation in alice_jobs(hub)


def test_the_warning_goes_once_the_job_has_ended(alice: HubClient, hub: Host, allocation: str) -> None:
    assert allocation in spawn_page(alice)
    hub.check_output(f"scancel {allocation}")  # ended from elsewhere (scancel on a login node)
    wait_for(lambda: allocation not in alice_jobs(hub), timeout=60)
    wait_for(lambda: "hpc-interactive" not in spawn_page(alice), timeout=30)
