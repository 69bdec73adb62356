"""Benchmarks of the demo site (./scripts/demo.sh first): spawn latency against its sbatch floor, bursts of
simultaneous users, Slurm's RPC load while spawns are pending, concurrent PAM logins, and deploy times.
Writes docs/bench/results.json and the plots (docs/bench/*.png) that docs/benchmarks.md shows. Reports; asserts
nothing.

    .venv/bin/python bench/run.py [--repeats 5] [--fresh] [--only latency,...] [--bursts 10,25,50] [--logins 100]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from hubclient import HubClient  # noqa: E402

URL = "http://127.0.0.1:8000"
HUB = "jhub-demo-hub"
DOCS = ROOT / "docs"
PLOTS = DOCS / "bench"
RESULTS = PLOTS / "results.json"
ANSIBLE = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(ROOT / "inventories/demo")]
ENV = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "NO_COLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}

# The floors: a job submitted with sbatch by hand, polled from the hub node (as the hub would) until its server
# answers. "singleuser" is the very command the hub's job runs (jupyterhub-singleuser, with the environment
# JupyterHub gives it and a token of the user), "server" a bare jupyter-server of the same environment (what Slurm
# and Jupyter cost, without the hub's handshake). Run inside the hub container; argv: kind, user token.
FLOOR_PROBE = r"""
import subprocess, sys, time, urllib.request
kind, token = sys.argv[1], sys.argv[2]
port = 18000 + int(time.time()) % 1000
prefix = "/user/alice/"
hub = "http://jhub-demo-hub:8081/hub/api"
env = {
    "JUPYTERHUB_API_TOKEN": token, "JUPYTERHUB_API_URL": hub, "JUPYTERHUB_ACTIVITY_URL": hub + "/users/alice/activity",
    "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-alice", "JUPYTERHUB_USER": "alice", "JUPYTERHUB_SERVER_NAME": "",
    "JUPYTERHUB_BASE_URL": "/", "JUPYTERHUB_SERVICE_PREFIX": prefix, "JUPYTERHUB_DEFAULT_URL": "/lab",
    "JUPYTERHUB_OAUTH_CALLBACK_URL": prefix + "oauth_callback",
    "JUPYTERHUB_SERVICE_URL": f"http://0.0.0.0:{port}{prefix}",
}
if kind == "singleuser":
    exports = "".join(f"export {k}='{v}'\n" for k, v in env.items())
    cmd, path = "/opt/jupyterhub/user/bin/jupyterhub-singleuser", prefix + "api"
else:
    exports = ""
    cmd = (f"/opt/jupyterhub/user/bin/jupyter-server --ip=0.0.0.0 --port={port} --no-browser "
           "--ServerApp.token= --ServerApp.password=")
    path = "/api/status"
script = (
    "#!/bin/bash\n"
    "#SBATCH --partition=interactive --time=00:10:00 --cpus-per-task=1 --mem=512M --account=rrg-demo\n"
    "#SBATCH --output=/dev/null\n"
    "cd $HOME\n"
    "export JUPYTER_RUNTIME_DIR=/tmp/floor-$SLURM_JOB_ID\n"
    f"{exports}exec srun {cmd}\n"
)
start = time.monotonic()
job = subprocess.run(["sudo", "-u", "alice", "sbatch", "--parsable"], input=script, text=True,
                     capture_output=True, check=True).stdout.strip()
node = ""
while time.monotonic() - start < 300:
    if not node:
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T %N"], capture_output=True, text=True).stdout.split()
        if out and out[0] == "RUNNING":
            node = out[1]
    if node:
        try:
            urllib.request.urlopen(f"http://{node}:{port}{path}", timeout=2)
            break
        except Exception:
            pass
    time.sleep(0.1)
took = time.monotonic() - start
subprocess.run(["scancel", job])
print(took)
"""


def sh(*cmd: str, **kw: Any) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def hub_exec(*cmd: str, stdin: str | None = None) -> str:
    return sh("docker", "exec", "-i", HUB, *cmd, input=stdin)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "p95": p95,
        "n": len(ordered),
    }


def client(user: str, password: str) -> HubClient:
    return HubClient.fresh(URL, user, password, "bench")


def wait_queue_empty(timeout: float = 120) -> None:
    """No job left and every node idle (not still completing the last one), then a second to settle: a job
    submitted while the node completes waits for slurmctld's next scheduling pass (~1 s), which would be charged
    to whichever of the floor or the hub came second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = set(hub_exec("sinfo", "--noheader", "--Node", "--format=%T").split())
        if not hub_exec("squeue", "--noheader").strip() and states <= {"idle"}:
            break
        time.sleep(0.5)
    time.sleep(1)


# -- 1. spawn latency against the floor -------------------------------------------------------------------
def bench_latency(repeats: int) -> dict[str, Any]:
    alice = client("alice", "alice-demo")
    hub_times: list[float] = []
    floors: dict[str, list[float]] = {"singleuser": [], "server": []}
    for _ in range(repeats):
        for kind, times in floors.items():
            wait_queue_empty()
            times.append(float(hub_exec("python3", "-", kind, alice.token, stdin=FLOOR_PROBE).strip()))
        wait_queue_empty()
        start = time.monotonic()
        alice.start_server({"account": "rrg-demo", "memory": "512", "interface": "lab"})
        alice.wait_until_ready(timeout=300)
        alice.session.get(alice.url("/user/alice/api/status"), headers={"Authorization": f"token {alice.token}"})
        hub_times.append(time.monotonic() - start)
        alice.stop_server()
    hub_s, floor_s, server_s = summary(hub_times), summary(floors["singleuser"]), summary(floors["server"])
    return {
        "hub": hub_s,
        "floor": floor_s,
        "server_floor": server_s,
        "ratio": hub_s["median"] / floor_s["median"],
        "ratio_to_server": hub_s["median"] / server_s["median"],
        "raw": {"hub": hub_times, **floors},
    }


# -- 2 and 3. bursts, hub memory, Slurm RPCs ---------------------------------------------------------------
def sdiag_total() -> int:
    """slurmctld's count of RPCs received from users (sdiag's per-user table), summed."""
    out = hub_exec("sdiag")
    users = out.split("Remote Procedure Call statistics by user", 1)[1].split("Pending RPC", 1)[0]
    return sum(int(m) for m in re.findall(r"count:(\d+)", users))


def hub_rss_mb() -> float:
    pid = hub_exec("systemctl", "show", "-p", "MainPID", "--value", "jupyterhub").strip()
    status = hub_exec("cat", f"/proc/{pid}/status")
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def bench_burst(n: int) -> dict[str, Any]:
    users = [client(f"bench{i:02d}", "bench-demo") for i in range(1, n + 1)]
    wait_queue_empty()
    rss_before = hub_rss_mb()

    def spawn(c: HubClient) -> float | str:
        start = time.monotonic()
        resp = c.start_server({"account": "rrg-demo", "memory": "256", "interface": "lab"})
        if resp.status_code not in (201, 202):
            return f"{resp.status_code} {resp.text[:200]}"
        # As the users' spawn pages do: follow the progress stream (polling 50 users' models would load the hub).
        ready, message = c.follow_spawn()
        return time.monotonic() - start if ready else message[:200]

    rss_peak = rss_before
    with cf.ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(spawn, c) for c in users]
        while not all(f.done() for f in futures):
            rss_peak = max(rss_peak, hub_rss_mb())
            time.sleep(1)
    results = [f.result() for f in futures]
    times = [r for r in results if isinstance(r, float)]
    failures = [r for r in results if isinstance(r, str)]
    with cf.ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda c: c.stop_server(timeout=120), [c for c in users if c.user_model()["servers"]]))
    return {
        "n": n,
        "succeeded": len(times),
        "failures": failures[:3],
        "time": summary(times) if times else {},
        "times": times,
        "hub_rss_mb": {"before": rss_before, "peak": rss_peak},
    }


def bench_slurm_load(pending: list[int], seconds: float = 20) -> list[dict[str, Any]]:
    """RPCs per second received by slurmctld while N spawns are pending (the node drained, so they stay)."""
    rows = []
    for n in pending:
        users = [client(f"bench{i:02d}", "bench-demo") for i in range(1, n + 1)] if n else []
        wait_queue_empty()
        hub_exec("scontrol", "update", "NodeName=jhub-demo-node1", "State=DRAIN", "Reason=bench")
        try:
            for c in users:
                c.start_server({"account": "rrg-demo", "memory": "256"})
            time.sleep(5)  # every spawn submitted and polling
            before, start = sdiag_total(), time.monotonic()
            time.sleep(seconds)
            rate = (sdiag_total() - before - 1) / (time.monotonic() - start)  # minus our own sdiag call
            rows.append({"pending": n, "rpc_per_s": rate})
        finally:
            for c in users:
                c.stop_server(timeout=120)
            hub_exec("scontrol", "update", "NodeName=jhub-demo-node1", "State=RESUME")
    return rows


# -- 4. logins ---------------------------------------------------------------------------------------------
def bench_logins(n: int) -> dict[str, Any]:
    def login(i: int) -> float:
        start = time.monotonic()
        resp = HubClient(URL).login(f"bench{(i % 50) + 1:02d}", "bench-demo")
        if resp.status_code != 302:
            raise RuntimeError(f"login {i}: {resp.status_code}")
        return time.monotonic() - start

    start = time.monotonic()
    with cf.ThreadPoolExecutor(max_workers=n) as pool:
        times = list(pool.map(login, range(n)))
    return {"n": n, "wall": time.monotonic() - start, "time": summary(times), "times": times}


# -- 5. deploy ---------------------------------------------------------------------------------------------
def site_run() -> dict[str, Any]:
    start = time.monotonic()
    out = sh(*ANSIBLE, str(ROOT / "site.yml"), env=ENV, cwd=ROOT)
    took = time.monotonic() - start
    recap = re.findall(r"ok=(\d+)\s+changed=(\d+)", out)
    return {"seconds": took, "tasks": sum(int(ok) for ok, _ in recap), "changed": sum(int(c) for _, c in recap)}


def bench_deploy(repeats: int, fresh: bool) -> dict[str, Any]:
    """site.yml on the demo: unchanged re-runs; with ``fresh``, first the first converge on new containers (the
    demo is torn down with its homes and environments, as on a new machine, then given its cluster again)."""
    first = []
    for _ in range(repeats if fresh else 0):
        sh(*ANSIBLE, str(ROOT / "playbooks/demo_down.yml"), "-e", "demo_purge=true", env=ENV, cwd=ROOT)
        sh(*ANSIBLE, str(ROOT / "playbooks/demo_up.yml"), env=ENV, cwd=ROOT)
        sh(*ANSIBLE, str(ROOT / "playbooks/demo_cluster.yml"), env=ENV, cwd=ROOT)
        first.append(site_run())
    reruns = [site_run() for _ in range(repeats)]
    return {
        "first": first,
        "reruns": reruns,
        "first_seconds": summary([r["seconds"] for r in first]) if first else {},
        "rerun_seconds": summary([r["seconds"] for r in reruns]),
    }


# -- report ------------------------------------------------------------------------------------------------
def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024 // 1024  # type: ignore[union-attr]
    return f"{os.cpu_count()} CPUs ({cpu}), {mem} GB RAM, {platform.system()} {platform.release()}"


def fmt(s: dict[str, float]) -> str:
    return f"{s['median']:.2f} s (min {s['min']:.2f}, max {s['max']:.2f}, n={s['n']})"


def plots(results: dict[str, Any]) -> None:
    PLOTS.mkdir(parents=True, exist_ok=True)
    if "latency" in results:
        raw = results["latency"]["raw"]
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        ax.boxplot(
            [raw["server"], raw["singleuser"], raw["hub"]],
            tick_labels=["sbatch\njupyter-server", "sbatch jupyterhub-\nsingleuser (floor)", "through the hub"],
        )
        ax.set_ylabel("seconds to an answering server")
        ax.set_title("Spawn latency against its floor")
        fig.tight_layout()
        fig.savefig(PLOTS / "latency.png", dpi=100)
    if "bursts" in results:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.boxplot([b["times"] for b in results["bursts"]], tick_labels=[str(b["n"]) for b in results["bursts"]])
        ax.set_xlabel("users starting at once")
        ax.set_ylabel("seconds to ready")
        ax.set_title("Bursts")
        fig.tight_layout()
        fig.savefig(PLOTS / "bursts.png", dpi=100)
    if "slurm_load" in results:
        rows = results["slurm_load"]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot([r["pending"] for r in rows], [r["rpc_per_s"] for r in rows], "o-", label="this hub (job board)")
        ax.plot(
            [r["pending"] for r in rows],
            [2 * r["pending"] for r in rows],
            "--",
            label="batchspawner: 2 per pending spawn",
        )
        ax.set_xlabel("pending spawns")
        ax.set_ylabel("slurmctld RPCs per second")
        ax.legend()
        ax.set_title("Load on Slurm while spawns are pending")
        fig.tight_layout()
        fig.savefig(PLOTS / "slurm_load.png", dpi=100)
    if "logins" in results:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(results["logins"]["times"], bins=20)
        ax.set_xlabel("seconds per login")
        ax.set_title(f"{results['logins']['n']} concurrent PAM logins")
        fig.tight_layout()
        fig.savefig(PLOTS / "logins.png", dpi=100)


def record(results: dict[str, Any], name: str, value: Any) -> None:
    """Keep a measurement as soon as it is done (a stopped run keeps what it measured), with its plots."""
    results[name] = value
    results.setdefault("dates", {})[name] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    plots(results)
    print(name, json.dumps(value)[:400], flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bursts", default="10,25,50")
    parser.add_argument("--pending", default="0,10,25,50")
    parser.add_argument("--logins", type=int, default=100)
    parser.add_argument("--only", default="", help="comma-separated: deploy,latency,bursts,slurm_load,logins")
    parser.add_argument("--fresh", action="store_true", help="deploy: also time first converges on new containers")
    args = parser.parse_args()
    # Earlier results are kept: one measurement can be run again alone (--only).
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = machine()
    steps: dict[str, Callable[[], Any]] = {
        "deploy": lambda: bench_deploy(args.repeats, args.fresh),  # first: a fresh deploy removes the bench users
        "latency": lambda: bench_latency(args.repeats),
        "bursts": lambda: [bench_burst(int(n)) for n in args.bursts.split(",")],
        "slurm_load": lambda: bench_slurm_load([int(n) for n in args.pending.split(",")]),
        "logins": lambda: bench_logins(args.logins),
    }
    chosen = [name for name in steps if name in (args.only.split(",") if args.only else steps)]
    if "deploy" in chosen:
        record(results, "deploy", steps["deploy"]())
    if not set(chosen) - {"deploy"}:
        return 0
    sh(*ANSIBLE, str(ROOT / "bench/setup.yml"), env=ENV, cwd=ROOT)
    # Room for 50 servers of 256 MB on the demo's one node: more memory declared and cores shared 64 ways.
    sh(
        *ANSIBLE,
        str(ROOT / "playbooks/demo_cluster.yml"),
        "-e",
        "demo_cluster_node_memory_mb=16000",
        "-e",
        "demo_cluster_oversubscribe=FORCE:64",
        env=ENV,
        cwd=ROOT,
    )
    try:
        for name in chosen:
            if name != "deploy":
                record(results, name, steps[name]())
    finally:
        sh(*ANSIBLE, str(ROOT / "playbooks/demo_cluster.yml"), env=ENV, cwd=ROOT)  # the demo's own settings back
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
