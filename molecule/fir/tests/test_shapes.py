"""Scenarios fir and narval (molecule/narval links this file): a reference cluster's shapes in a real Slurm.

* The agreement tool shipped in the hub's package, run on the hub (a submit host) as a user against this Slurm
  with the model the hub runs with: no physical-fit disagreement on several hundred requests.
* Placement: a GPU spawn (and a MIG slice's, when the model has MIG slices) through the hub's REST API runs on the
  node of the GPU's node type with exactly the requested TRES (cpu, mem, gres/gpu:<type>), as scontrol shows it.
* More than one node: a burst of spawns goes to the smallest node types that hold it (never a GPU node for a
  request without a GPU), over more than one node when one cannot hold them all; a node set down under a server
  is noticed, the user is told on the next form, and starts again on another node.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hubclient import HubClient
from molhelpers import SPAWNER_CONFIG, gpu_request, host_of, server_of, squeue_of, wait_for
from testinfra.host import Host

AGREEMENT = "/opt/jupyterhub/hub/bin/jupyterhub-hpc-agreement"


def memory_mb(value: str) -> int:
    """Slurm's memory in a TRES list (``250000M``, ``15G``, ``1.50T``) as MB."""
    number, unit = float(value[:-1]), value[-1]
    return round(number * {"M": 1, "G": 1024, "T": 1024**2}[unit])


def test_the_hub_and_slurm_agree_on_every_physical_fit(hub: Host, model: dict[str, Any]) -> None:
    result = hub.run(f"{AGREEMENT} --model {SPAWNER_CONFIG} --user alice --account def-alice")
    print(result.stdout)
    assert result.rc == 0, result.stdout + result.stderr
    total = re.search(r"^\| total \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$", result.stdout, re.M)
    assert total, result.stdout
    requests, agreed, policy, disagreed = map(int, total.groups())
    assert requests >= 300 and disagreed == 0 and agreed + policy == requests
    assert "Disagreements: 0" in result.stdout


@pytest.mark.parametrize("mig", [False, True], ids=["full GPU", "MIG slice"])
def test_a_gpu_spawn_runs_on_its_node_type_with_exactly_the_requested_tres(
    hub: Host, base_url: str, model: dict[str, Any], mig: bool
) -> None:
    wanted = gpu_request(model, mig)
    if wanted is None:
        pytest.skip(f"{model['name']}'s form offers no {'MIG slice' if mig else 'full GPU'}")
    node_type, gpu_type, cores, memory = wanted
    user = "bob" if mig else "alice"
    options = {"cores": str(cores), "memory": str(memory), "gpu": f"{gpu_type}:1", "time": "1"}
    client = server_of(base_url, user, f"def-{user}", options, timeout=240)
    try:
        jobs = squeue_of(hub, user)
        assert len(jobs) == 1, jobs
        job_id, _user, state, node = jobs[0].split()
        assert state == "RUNNING" and node == host_of(model, node_type)
        show = hub.check_output(f"scontrol show job {job_id}")
        fields = dict(re.findall(r"(\w+)=(\S+)", show))
        # Slurm 24.11 prints what the job holds as AllocTRES (22.05: TRES).
        tres = dict(item.split("=", 1) for item in (fields.get("AllocTRES") or fields["TRES"]).split(","))
        assert int(tres["cpu"]) == cores, show
        assert memory_mb(tres["mem"]) == memory, show
        assert tres[f"gres/gpu:{gpu_type}"] == "1" and tres["gres/gpu"] == "1", show
        # No other GPU type, no other GRES.
        assert sorted(k for k in tres if k.startswith("gres/")) == ["gres/gpu", f"gres/gpu:{gpu_type}"], show
        # Slurm 24.11 spells the GRES as a TRES (gres/gpu:...; 22.05: gres:gpu:...).
        assert fields["TresPerNode"] in (f"gres/gpu:{gpu_type}:1", f"gres:gpu:{gpu_type}:1"), show
        assert fields["NumNodes"] == "1" and fields["NodeList"] == host_of(model, node_type)
    finally:
        client.stop_server()


def test_a_burst_of_spawns_spreads_over_nodes_when_one_cannot_hold_them(
    hub: Host, base_url: str, model: dict[str, Any]
) -> None:
    """Three users at once, each with the form's most memory and no GPU: Slurm never puts more memory on a node than
    its type has and takes the lowest-weight nodes, so when the smallest node cannot hold them all, they run on more
    than one (Narval: 3 x 125000 MB > 256000 MB on its cpu node; Fir's cpu node holds 3 x 250000 MB), and never on
    a GPU node."""
    memory = model["form"]["memory"]["max"]
    users = ("alice", "bob", "carol")
    clients = {user: HubClient.fresh(base_url, user, f"{user}-demo", "shapes-burst", verify=False) for user in users}
    try:
        for user, client in clients.items():
            resp = client.start_server({"account": f"def-{user}", "cores": "1", "memory": str(memory), "time": "1"})
            assert resp.status_code in (201, 202), resp.text
        for client in clients.values():
            client.wait_until_ready(timeout=300)
        placed: dict[str, int] = {}
        for user in clients:
            (job,) = squeue_of(hub, user)
            node = job.split()[3]
            placed[node] = placed.get(node, 0) + memory
        by_host = {host_of(model, name): node["memory_mb"] for name, node in model["node_types"].items()}
        assert all(used <= by_host[node] for node, used in placed.items()), placed
        # A request without a GPU never takes a GPU node while a node without GPUs holds it (the nodes' Weight,
        # as sites set it: the smallest node type first, GPU nodes last).
        gpu_hosts = {host_of(model, name) for name, node in model["node_types"].items() if node["gpus"]}
        assert not gpu_hosts & set(placed), placed
        # More than one node when the smallest cannot hold them all.
        smallest = min(size for host, size in by_host.items() if host not in gpu_hosts)
        if len(users) * memory > smallest:
            assert len(placed) > 1, placed
        print(f"{len(users)} x {memory} MB placed as {placed} (the smallest node: {smallest} MB)")
    finally:
        for client in clients.values():
            client.stop_server()


def test_a_node_set_down_under_a_server_is_told_and_the_user_starts_on_another(
    hub: Host, base_url: str, model: dict[str, Any]
) -> None:
    """carol's server runs; an operator sets its node down and drained (scontrol, as for a failing node). Slurm
    ends the job (NODE_FAIL, never requeued: the job script's --no-requeue), the hub notices at its poll, her next
    form says which job and which node failed, and her new server runs on another node and computes."""
    options = {"cores": "1", "memory": "1000", "time": "1"}
    client = server_of(base_url, "carol", "def-carol", options, timeout=240)
    ((job_id, _user, _state, node),) = (line.split() for line in squeue_of(hub, "carol"))
    try:
        # DOWN ends the node's jobs; DRAIN keeps it out of service (the demo's ReturnToService=2 would take a
        # merely DOWN node back at its next registration), as an operator takes a failing node out.
        hub.check_output(f"scontrol update NodeName={node} State=DOWN Reason=molecule-node-down")
        hub.check_output(f"scontrol update NodeName={node} State=DRAIN Reason=molecule-node-down")
        # JupyterHub polls each server every 30 s (poll_interval), plus jitter.
        noticed = wait_for(lambda: not client.user_model().get("servers", {}).get(""), timeout=120, interval=2)
        ended = hub.check_output(f"sacct -X -n -P -j {job_id} -o State").strip()
        print(f"job {job_id} on {node}: {ended}; the hub noticed in {noticed:.1f} s")
        assert ended == "NODE_FAIL"
        form = client.session.get(client.url("/hub/spawn"), timeout=60)
        assert form.status_code == 200
        told = f"Your previous server (Slurm job {job_id}) ended: its node {node} failed or was taken out of service."
        assert told in form.text, form.text[:3000]

        assert client.start_server({"account": "def-carol", **options}).status_code in (201, 202)
        client.wait_until_ready(timeout=240)
        ((_job, _user, state, elsewhere),) = (line.split() for line in squeue_of(hub, "carol"))
        assert state == "RUNNING" and elsewhere != node
        assert client.execute("6*7") == "42"
        # Told once: the form after a server that ran is the plain form again.
        client.stop_server()
        assert "hpc-job-end" not in client.session.get(client.url("/hub/spawn"), timeout=60).text
    finally:
        # The node back in service first: a stop that fails must not leave it drained for the next test.
        hub.run(f"scontrol update NodeName={node} State=RESUME")
        client.stop_server()
