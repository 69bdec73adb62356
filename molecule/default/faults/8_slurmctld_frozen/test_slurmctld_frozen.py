"""Fault 7 (self-contained: causes and checks). First slurmctld is frozen for 60 s (SIGSTOP, a hung controller)
while alice's server runs and bob asks for one (his sbatch gets no answer, but Slurm may create the job when it
thaws). On the hub node a sampler counts the hub's child processes and times /hub/health every half second.
Checked: the hub never runs more than its command slots allow, answers /hub/health within 1 s throughout, tells bob
what happened, and leaves no job of his. Then slurmctld is stopped and alice presses Stop: the hub cannot cancel her
job, which keeps running; once slurmctld is back the reconciler cancels it (the hub submitted it, no server owns
it)."""

from __future__ import annotations

import base64
import json
import textwrap
import time

from hubclient import HubClient
from molhelpers import squeue_of, wait_for
from testinfra.host import Host

FROZEN_SECONDS = 60
# The hub's commands: 8 slots (batchspawner_command_concurrency) + the job board's squeue; each is up to three
# processes (sh -c, sudo, the Slurm command).
MAX_CHILDREN = 3 * (8 + 1)

SAMPLER = textwrap.dedent(
    """
    import json, subprocess, sys, time, urllib.request
    out, seconds = sys.argv[1], float(sys.argv[2])
    hub = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", "jupyterhub"],
                         capture_output=True, text=True).stdout.strip()
    end = time.time() + seconds
    while time.time() < end:
        ps = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.split()
        parent = dict(zip(ps[0::2], ps[1::2]))
        def under(pid):
            while pid in parent and pid != "1":
                pid = parent[pid]
                if pid == hub:
                    return True
            return False
        children = sum(1 for pid in parent if under(pid))
        began = time.monotonic()
        try:
            status = urllib.request.urlopen("http://jhub-mol-hub:8081/hub/health", timeout=10).status
        except Exception as err:
            status = repr(err)
        with open(out, "a") as f:
            f.write(json.dumps({"t": time.time(), "children": children, "health_s": time.monotonic() - began,
                                "status": status}) + "\\n")
        time.sleep(0.5)
    """
)


def test_a_frozen_slurmctld_piles_nothing_up_and_leaves_no_job_behind(base_url: str, hub: Host) -> None:
    hub.run("scontrol update NodeName=jhub-mol-node1 State=RESUME")  # an earlier step may have drained it
    alice = HubClient.fresh(base_url, "alice", "alice-demo", "frozen-slurmctld", verify=False)
    bob = HubClient.fresh(base_url, "bob", "bob-demo", "frozen-slurmctld", verify=False)
    before = {line.split()[0] for line in squeue_of(hub, "alice")}  # a job an earlier step left: not this one
    assert alice.start_server({"account": "def-alice"}).status_code in (201, 202)
    alice.wait_until_ready(timeout=180)
    (alices_job,) = {line.split()[0] for line in squeue_of(hub, "alice")} - before

    script = base64.b64encode(SAMPLER.encode()).decode()
    hub.check_output(f"rm -f /root/frozen.jsonl && echo {script} | base64 -d > /root/frozen-sampler.py")
    hub.check_output(
        f"systemd-run --unit=frozen-sampler-{int(time.time())} /usr/bin/python3 /root/frozen-sampler.py "
        f"/root/frozen.jsonl {FROZEN_SECONDS + 10}"
    )
    hub.check_output("pkill -STOP -x slurmctld")
    frozen_at = time.monotonic()
    try:
        assert bob.start_server({"account": "def-bob"}).status_code in (201, 202)
        time.sleep(max(0.0, FROZEN_SECONDS - (time.monotonic() - frozen_at)))
    finally:
        hub.check_output("pkill -CONT -x slurmctld")
    print(f"slurmctld frozen for {time.monotonic() - frozen_at:.1f} s")

    # bob is told what happened (or, if Slurm took the job at the last moment, his server starts).
    ready, message = bob.follow_spawn()
    print(f"bob's spawn: ready={ready}, told: {message[:300]!r}")
    assert ready or "Slurm did not answer" in message or "Slurm refused the job" in message
    if ready:
        bob.stop_server()
    # A job bob's unanswered sbatch may have created is cancelled by the reconciler (every 20 s here).
    took = wait_for(lambda: squeue_of(hub, "bob") == [], timeout=90, interval=1)
    print(f"no job of bob left {took:.1f} s after slurmctld thawed")
    assert alice.user_model()["servers"][""]["ready"]  # her server was kept throughout

    # slurmctld down: alice's Stop cannot cancel her job, the hub forgets the server, the job keeps running.
    hub.check_output("systemctl stop slurmctld")
    try:
        assert alice.api("DELETE", "/users/alice/server").status_code in (202, 204)
        wait_for(lambda: not alice.user_model()["servers"], timeout=120, interval=1)
    finally:
        hub.check_output("systemctl start slurmctld")
    wait_for(lambda: hub.run("scontrol ping").stdout.count("is UP"), timeout=60, interval=1)
    took = wait_for(lambda: squeue_of(hub, "alice") == [], timeout=120, interval=1)
    print(f"alice's orphan job cancelled {took:.1f} s after slurmctld was back")
    journal = hub.check_output("journalctl --no-pager -u jupyterhub --since '-10 min'")
    assert f"Cancelled job {alices_job} of alice: submitted by the hub, owned by no server" in journal
    state = hub.check_output(f"sacct -X -n -P -j {alices_job} -o State")
    assert state.startswith("CANCELLED"), state

    samples = [json.loads(line) for line in hub.file("/root/frozen.jsonl").content_string.splitlines()]
    assert len(samples) >= FROZEN_SECONDS  # two a second: the sampler ran throughout
    most = max(s["children"] for s in samples)
    slowest = max(s["health_s"] for s in samples)
    print(f"{len(samples)} samples: at most {most} processes under the hub, /hub/health at most {slowest:.3f} s")
    assert {s["status"] for s in samples} == {200}
    assert most <= MAX_CHILDREN
    assert slowest < 1.0

    # Everyone can start again.
    assert bob.start_server({"account": "def-bob"}).status_code in (201, 202)
    bob.wait_until_ready(timeout=180)
    assert bob.execute("1+1") == "2"
    bob.stop_server()
