"""Applications beside JupyterLab (jupyter-server-proxy): the Linux desktop that jupyter-remote-desktop-proxy offers
runs inside the user's Slurm job, as the user, in the job's cgroup, and ends with the job.

The demo's Slurm has no cgroups (proctrack/linuxproc, roles/demo_cluster): there every process is in the container's
one cgroup, so the cgroup check compares the desktop's with the job task's (equal on any cluster, and must name
job_<id> where Slurm has cgroups); being inside the job is proven by the process tree (the step's slurmstepd)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hubclient import HubClient
from molhelpers import squeue_of, wait_for
from testinfra.host import Host

USER = "bob"
# What the desktop is made of on the node: TigerVNC's X server and Xfce's session (the proxy's own xstartup).
DESKTOP = ("Xtigervnc", "xfce4-session")


def pids_of(node: Host, user: str, name: str) -> list[int]:
    run = node.run(f"pgrep -u {user} -x {name}")
    return [int(pid) for pid in run.stdout.split()]


def ancestry(node: Host, pid: int) -> list[tuple[int, str]]:
    """(pid, command line) from pid up to PID 1."""
    chain: list[tuple[int, str]] = []
    while pid > 1:
        cmdline = node.check_output(f"tr '\\0' ' ' < /proc/{pid}/cmdline")
        chain.append((pid, cmdline))
        pid = int(node.check_output(f"awk '/^PPid:/ {{print $2}}' /proc/{pid}/status"))
    return chain


@pytest.fixture(scope="module")
def desktop(base_url: str, hub: Host, node: Host) -> Iterator[tuple[HubClient, str]]:
    """bob's server, and his desktop started the way the noVNC page starts it: a websocket to desktop-websockify,
    which answers with the VNC server's greeting."""
    client = HubClient(base_url, verify=False)
    assert client.login(USER, f"{USER}-demo").status_code == 302
    client.create_token()
    resp = client.start_server({"account": f"def-{USER}"})
    assert resp.status_code in (201, 202), resp.text
    client.wait_until_ready(timeout=120)
    (job,) = (line.split()[0] for line in squeue_of(hub, USER))
    conn = client.server_websocket("/desktop-websockify/", timeout=90)
    try:
        assert conn.recv()[:4] == b"RFB "  # the VNC server, through the proxy's raw socket
        wait_for(lambda: all(pids_of(node, USER, name) for name in DESKTOP), timeout=60)
        yield client, job
    finally:
        conn.close()
        client.stop_server()
    assert squeue_of(hub, USER) == []
    # Nothing of the desktop outlives the job, not even what it daemonized (dbus-daemon, xfconfd): with cgroups
    # Slurm ends the job's cgroup; the demo's cluster has none, its epilog ends the user's last processes.
    wait_for(lambda: node.run(f"pgrep -u {USER}").stdout.strip() == "", timeout=60)


def test_the_desktop_is_offered_in_the_launcher(desktop: tuple[HubClient, str]) -> None:
    client, _job = desktop
    resp = client.session.get(
        client.server_url("/server-proxy/servers-info"), headers={"Authorization": f"token {client.token}"}, timeout=30
    )
    servers = {server["name"]: server for server in resp.json()["server_processes"]}
    assert servers["desktop-websockify"]["launcher_entry"]["title"] == "Desktop"


@pytest.mark.parametrize("name", DESKTOP)
def test_desktop_processes_run_as_the_user_inside_the_job(
    desktop: tuple[HubClient, str], node: Host, name: str
) -> None:
    _client, job = desktop
    (pid,) = pids_of(node, USER, name)
    assert node.check_output(f"stat -c %U /proc/{pid}") == USER
    chain = ancestry(node, pid)
    # Started by the user's server, which is the task of the job's step: its parent is slurmstepd: [<job>.0].
    (step,) = [index for index, (_pid, cmdline) in enumerate(chain) if cmdline.startswith("slurmstepd:")]
    assert chain[step][1].startswith(f"slurmstepd: [{job}."), chain
    task = chain[step - 1][0]
    assert "jupyterhub-singleuser" in chain[step - 1][1] or "batchspawner-singleuser" in chain[step - 1][1], chain
    # The same cgroup as the job's task (with cgroups in Slurm, .../job_<id>/step_0/user/task_0): whatever the
    # desktop starts is counted, limited and ended with the job.
    cgroup = node.check_output(f"cat /proc/{pid}/cgroup")
    assert cgroup == node.check_output(f"cat /proc/{task}/cgroup")
    if "job_" in cgroup:
        assert f"job_{job}/" in cgroup, cgroup


def test_an_app_the_site_declared_runs_inside_the_job(desktop: tuple[HubClient, str], node: Host) -> None:
    """jupyter_env_apps (host_vars/jhub-mol-hub.yml): listed with its title, started on first use through the
    server, as the user, under the job's step, with its declared environment."""
    client, job = desktop
    auth = {"Authorization": f"token {client.token}"}
    info = client.session.get(client.server_url("/server-proxy/servers-info"), headers=auth, timeout=30).json()
    servers = {server["name"]: server for server in info["server_processes"]}
    assert servers["docs-http"]["launcher_entry"]["title"] == "Python docs (test app)"
    page = client.session.get(client.server_url("/docs-http/"), headers=auth, timeout=60)
    assert page.status_code == 200 and "Directory listing for /" in page.text, page.text[:300]
    (pid,) = [int(p) for p in node.run(f"pgrep -u {USER} -f 'http.server --bind 127.0.0.1'").stdout.split()]
    chain = ancestry(node, pid)
    assert any(cmdline.startswith(f"slurmstepd: [{job}.") for _pid, cmdline in chain), chain
    # Read as the user: in a container, root lacks CAP_SYS_PTRACE and cannot read another account's environ.
    environ = node.check_output(f"su -s /bin/sh {USER} -c \"tr '\\\\0' '\\\\n' < /proc/{pid}/environ\"")
    assert "JUPYTERHUB_HPC_APP=docs-http" in environ.splitlines()
