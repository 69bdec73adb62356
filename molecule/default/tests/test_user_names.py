"""Names as sites have them, end to end: Alice.Smith (capitals and a dot) and alice@example.org (an SSSD fully
qualified name) are real Linux accounts on the hub and the node (demo_cluster, the same uid on both), log in through
the real login form (PAM), get a Slurm job run as that very account (sudo's runas, the exec prefix, Slurm's
association), a kernel in it computes, and the stop leaves no job and nothing in the hub's ledger. Without the one
user-name rule the ledger refused both names after sbatch and every start cancelled its own job; without
PreserveCaseUser (slurmdbd.conf) Slurm refused every job of Alice.Smith ("Invalid account")."""

from __future__ import annotations

import json
import shlex

import pytest
from hubclient import HubClient
from molhelpers import squeue_of
from testinfra.host import Host

LEDGER = "/var/lib/jupyterhub/jupyterhub-jobs.json"
USERS = [("Alice.Smith", "asmith-demo"), ("alice@example.org", "aliceorg-demo")]


def ledger_jobs(hub: Host) -> dict[str, str]:
    return {job: entry[0] for job, entry in json.loads(hub.check_output(f"cat {LEDGER}")).get("jobs", {}).items()}


@pytest.mark.parametrize(("user", "password"), USERS)
def test_a_name_as_sites_have_it_gets_a_server_as_that_account(
    base_url: str, hub: Host, node: Host, user: str, password: str
) -> None:
    uid = hub.check_output(f"id -u {shlex.quote(user)}")
    assert node.check_output(f"id -u {shlex.quote(user)}") == uid
    # Slurm's accounting keeps the name as it is (PreserveCaseUser): the association is the account's.
    associations = hub.check_output(f"sacctmgr -nP show associations user={user} format=user,account")
    assert associations.splitlines() == [f"{user}|def-names"]

    client = HubClient.fresh(base_url, user, password, "molecule", verify=False)  # the login form, then a token
    assert client.user_model()["name"] == user  # not lowercased
    try:
        resp = client.start_server({"account": "def-names"})
        assert resp.status_code in (201, 202), resp.text
        client.wait_until_ready(timeout=120)

        jobs = squeue_of(hub, user)
        assert len(jobs) == 1, jobs
        job_id, job_user, state, node_name = jobs[0].split()
        assert (job_user, state, node_name) == (user, "RUNNING", node.check_output("hostname"))
        assert ledger_jobs(hub).get(job_id) == user
        assert node.run(f"pgrep -u {uid} -f jupyterhub-singleuser").rc == 0  # the server runs as the account
        # Through the proxy, at the user's own host name (one DNS label, lower case: JupyterHub's hashed form).
        assert client.server_url().startswith("https://u-")
        code = "import os, pwd; print(pwd.getpwuid(os.getuid()).pw_name, 6 * 7)"
        assert client.execute(code).strip() == f"{user} 42"
    finally:
        client.stop_server()
    assert squeue_of(hub, user) == []
    assert user not in ledger_jobs(hub).values()


def test_a_name_differing_only_in_case_is_another_account(client: HubClient) -> None:
    """alice.smith is not Alice.Smith (no such account): the right password of Alice.Smith does not log it in."""
    assert client.login("alice.smith", "asmith-demo").status_code == 403
    assert client.login("ALICE@EXAMPLE.ORG", "aliceorg-demo").status_code == 403
