"""Benchmarks of the demo site (./scripts/demo.sh first): spawn latency against its sbatch floor, bursts of
simultaneous users, Slurm's RPC load while spawns are pending, concurrent PAM logins, and deploy times.
Writes docs/bench/results.json and the plots (docs/bench/*.png) that docs/benchmarks.md shows. Reports; asserts
nothing.

    .venv/bin/python -m bench.run [--repeats 5] [--fresh] [--only latency,...] [--bursts 10,25,50] [--logins 100]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib

from tests.hostnames import map_domain  # run as a module from the project (python -m bench.run): tests/ is found
from tests.hubclient import HubClient

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]

# The demo's jupyterhub_subdomain_host: the hub at localhost, alice's server at alice.localhost (loopback, as
# browsers resolve it; this process resolves it the same way through tests/hostnames.py).
URL = "http://localhost:8000"
map_domain("localhost", "127.0.0.1")
HUB = "jhub-demo-hub"
DOCS = ROOT / "docs"
PLOTS = DOCS / "bench"
RESULTS = PLOTS / "results.json"
ANSIBLE = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(ROOT / "inventories/demo")]
ENV = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "NO_COLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}

# The floors: a job submitted with sbatch by hand, polled from the hub node (as the hub would) until its server
# answers. "singleuser" is the very command the hub's job runs (jupyterhub-singleuser, with the environment
# JupyterHub gives it and a token of the user), "server" a bare jupyter-server of the same environment (what Slurm
# and Jupyter cost, without the hub's handshake). Run inside the hub container; argv: kind, user, token, memory
# (MB), seconds between two squeue (the server's port is tried every 0.1 s once the job runs).
FLOOR_PROBE = r"""
import json, random, subprocess, sys, time, urllib.request
kind, user, token, mem, squeue_every = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
port = random.randint(20000, 60000)
prefix = f"/user/{user}/"
hub = "http://jhub-demo-hub:8081/hub/api"
env = {
    "JUPYTERHUB_API_TOKEN": token, "JUPYTERHUB_API_URL": hub, "JUPYTERHUB_ACTIVITY_URL": f"{hub}/users/{user}/activity",
    "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{user}", "JUPYTERHUB_USER": user, "JUPYTERHUB_SERVER_NAME": "",
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
    f"#SBATCH --partition=interactive --time=00:10:00 --cpus-per-task=1 --mem={mem}M --account=rrg-demo\n"
    f"#SBATCH --output=/home/{user}/.bench-floor-%j.log\n"
    "cd $HOME\n"
    "export JUPYTER_RUNTIME_DIR=/tmp/floor-$SLURM_JOB_ID\n"
    f"{exports}exec srun {cmd}\n"
)
start = time.monotonic()
job = subprocess.run(["sudo", "-u", user, "sbatch", "--parsable"], input=script, text=True,
                     capture_output=True, check=True).stdout.strip()
node, state, asked, ready = "", "", 0.0, False
while time.monotonic() - start < 300 and state not in ("gone",):
    if time.monotonic() - asked >= squeue_every:
        asked = time.monotonic()
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T %N"], capture_output=True, text=True).stdout.split()
        state = out[0] if out else "gone"
        if state == "RUNNING":
            node = out[1]
    if node:
        try:
            urllib.request.urlopen(f"http://{node}:{port}{path}", timeout=2)
            ready = True
            break
        except Exception:
            pass
    time.sleep(0.1)
took = time.monotonic() - start
subprocess.run(["scancel", job])
log = f"/home/{user}/.bench-floor-{job}.log"
if ready:
    print(json.dumps({"seconds": took}))
    subprocess.run(["rm", "-f", log])
else:
    tail = subprocess.run(["tail", "-n", "5", log], capture_output=True, text=True).stdout.strip()
    print(json.dumps({"failed": f"job {job} {state} after {took:.0f} s: {tail}"}))
"""


def floor_probe(kind: str, user: HubClient, memory_mb: int, squeue_every: float = 0.1) -> float | str:
    """Seconds from sbatch to an answering server, for one floor job of ``user``; or why it failed."""
    args = [kind, user.user, user.token, str(memory_mb), str(squeue_every)]
    answer = json.loads(hub_exec("python3", "-", *args, stdin=FLOOR_PROBE))
    return float(answer["seconds"]) if "seconds" in answer else str(answer["failed"])


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
    for _i in range(repeats):
        for kind, times in floors.items():
            wait_queue_empty()
            took = floor_probe(kind, alice, 512)
            if isinstance(took, str):
                raise RuntimeError(f"floor job failed: {took}")
            times.append(took)
        wait_queue_empty()
        start = time.monotonic()
        alice.start_server({"account": "rrg-demo", "memory": "512", "interface": "lab"})
        alice.wait_until_ready(timeout=300)
        alice.session.get(alice.server_url("/api/status"), headers={"Authorization": f"token {alice.token}"})
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


def hub_pid() -> str:
    return hub_exec("systemctl", "show", "-p", "MainPID", "--value", "jupyterhub").strip()


def hub_cpu_seconds() -> float:
    """CPU time of the hub process and the commands it ran (sudo, sbatch, squeue), from /proc/<pid>/stat."""
    fields = hub_exec("cat", f"/proc/{hub_pid()}/stat").rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def hub_rss_mb() -> float:
    pid = hub_pid()
    status = hub_exec("cat", f"/proc/{pid}/status")
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def outcomes(results: list[float | str]) -> tuple[list[float], list[str]]:
    """Seconds of the spawns that got ready, messages of those that failed."""
    return [r for r in results if isinstance(r, float)], [r for r in results if isinstance(r, str)]


def stop_all(users: list[HubClient]) -> None:
    with cf.ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda c: c.stop_server(timeout=120), [c for c in users if c.user_model()["servers"]]))


def bench_burst(n: int) -> dict[str, Any]:
    users = [client(f"bench{i:02d}", "bench-demo") for i in range(1, n + 1)]
    wait_queue_empty()
    rss_before, cpu_before, began = hub_rss_mb(), hub_cpu_seconds(), time.monotonic()

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
    cpu, wall = hub_cpu_seconds() - cpu_before, time.monotonic() - began
    stop_all(users)
    # The floor of the burst: the same number of jupyterhub-singleuser jobs submitted at once with sbatch.
    wait_queue_empty()
    with cf.ThreadPoolExecutor(max_workers=n) as pool:
        # squeue once a second each, as the hub's job board (0.1 s each would load slurmctld with 500 RPC/s).
        floor = list(pool.map(lambda c: floor_probe("singleuser", c, 256, squeue_every=1.0), users))
    wait_queue_empty()
    times, failures = outcomes(results)
    floor_times, floor_failures = outcomes(floor)
    return {
        "n": n,
        "succeeded": len(times),
        "failures": failures[:3],
        "time": summary(times) if times else {},
        "times": times,
        "floor_succeeded": len(floor_times),
        "floor_failures": floor_failures[:3],
        "floor": summary(floor_times) if floor_times else {},
        "floor_times": floor_times,
        "hub_rss_mb": {"before": rss_before, "peak": rss_peak},
        "hub_cpu": {"seconds": cpu, "share_of_one_core": cpu / wall},
    }


# batchspawner as shipped: no job board, each spawn runs its own squeue every 0.5 s (its startup_poll_interval).
PER_JOB_DROP_IN = '{"HubServices": {"job_board_cmd": ""}, "SlurmSpawner": {"startup_poll_interval": 0.5}}'
DROP_IN_PATH = "/etc/jupyterhub/jupyterhub_config.d/90-bench-per-job.json"


def restart_hub() -> None:
    hub_exec("systemctl", "restart", "jupyterhub")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if HubClient(URL).session.get(URL + "/hub/health", timeout=5).status_code == 200:
                return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError("the hub did not come back")


def bench_slurm_load(pending: list[int], seconds: float = 30) -> list[dict[str, Any]]:
    """RPCs per second received by slurmctld while N spawns are pending (the node drained, so they stay), with
    the hub's shared job board and, for comparison, with batchspawner's per-spawn queries."""
    rows = []
    for mode in ("job board", "per-spawn squeue"):
        if mode == "per-spawn squeue":
            hub_exec("install", "-m", "0644", "/dev/stdin", DROP_IN_PATH, stdin=PER_JOB_DROP_IN)
            restart_hub()
        try:
            rows += [{"mode": mode, "pending": n, "rpc_per_s": slurm_rpc_rate(n, seconds)} for n in pending]
        finally:
            if mode == "per-spawn squeue":
                hub_exec("rm", "-f", DROP_IN_PATH)
                restart_hub()
    return rows


def slurm_rpc_rate(n: int, seconds: float) -> float:
    users = [client(f"bench{i:02d}", "bench-demo") for i in range(1, n + 1)]
    wait_queue_empty()
    hub_exec("scontrol", "update", "NodeName=jhub-demo-node1", "State=DRAIN", "Reason=bench")
    try:
        # At once: the hub answers each request only after slow_spawn_timeout (10 s) for a pending spawn.
        with cf.ThreadPoolExecutor(max_workers=max(n, 1)) as pool:
            list(pool.map(lambda c: c.start_server({"account": "rrg-demo", "memory": "256"}), users))
        time.sleep(10)  # every spawn submitted (sbatch is an RPC too) and polling
        before, start = sdiag_total(), time.monotonic()
        time.sleep(seconds)
        return (sdiag_total() - before - 1) / (time.monotonic() - start)  # minus our own sdiag call
    finally:
        stop_all(users)
        hub_exec("scontrol", "update", "NodeName=jhub-demo-node1", "State=RESUME")


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
    return {
        "seconds": took,
        "tasks": sum(int(ok) for ok, _changed in recap),
        "changed": sum(int(c) for _ok, c in recap),
    }


def bench_deploy(repeats: int, fresh: bool) -> dict[str, Any]:
    """site.yml on the demo: unchanged re-runs; with ``fresh``, first the first converge on new containers (the
    demo is torn down with its homes and environments, as on a new machine, then given its cluster again)."""
    first = []
    for _i in range(repeats if fresh else 0):
        sh(*ANSIBLE, str(ROOT / "playbooks/demo_down.yml"), "-e", "demo_purge=true", env=ENV, cwd=ROOT)
        sh(*ANSIBLE, str(ROOT / "playbooks/demo_up.yml"), env=ENV, cwd=ROOT)
        sh(*ANSIBLE, str(ROOT / "playbooks/demo_cluster.yml"), env=ENV, cwd=ROOT)
        first.append(site_run())
    reruns = [site_run() for _i in range(repeats)]
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


@contextlib.contextmanager
def figure(name: str, title: str, xlabel: str, ylabel: str) -> Iterator[Any]:
    """One plot, written to docs/bench/<name>.png."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    yield ax
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    PLOTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOTS / f"{name}.png", dpi=100)
    plt.close(fig)


def plot_latency(latency: dict[str, Any]) -> None:
    raw = latency["raw"]
    with figure("latency", "Spawn latency against its floor", "", "seconds to an answering server") as ax:
        ax.boxplot(
            [raw["server"], raw["singleuser"], raw["hub"]],
            tick_labels=["sbatch\njupyter-server", "sbatch jupyterhub-\nsingleuser (floor)", "through the hub"],
        )


def plot_bursts(bursts: list[dict[str, Any]]) -> None:
    with figure("bursts", "Users starting at once", "users", "seconds to ready") as ax:
        sizes = [b["n"] for b in bursts]
        hub = ax.boxplot([b["times"] for b in bursts], positions=[i * 3 + 1 for i in range(len(sizes))])
        floor = [b.get("floor_times", []) for b in bursts]
        if all(floor):
            low = ax.boxplot(floor, positions=[i * 3 for i in range(len(sizes))], patch_artist=True)
            ax.legend([low["boxes"][0], hub["boxes"][0]], ["sbatch floor", "through the hub"])
        ax.set_xticks([i * 3 + 0.5 for i in range(len(sizes))], [str(n) for n in sizes])


def plot_slurm_load(rows: list[dict[str, Any]]) -> None:
    title = "Load on slurmctld while spawns are pending"
    with figure("slurm_load", title, "pending spawns", "RPCs per second") as ax:
        for mode in dict.fromkeys(r.get("mode", "job board") for r in rows):
            mine = [r for r in rows if r.get("mode", "job board") == mode]
            ax.plot([r["pending"] for r in mine], [r["rpc_per_s"] for r in mine], "o-", label=mode)
        ax.legend()


def plot_logins(logins: dict[str, Any]) -> None:
    with figure("logins", f"{logins['n']} concurrent PAM logins", "seconds per login", "logins") as ax:
        ax.hist(logins["times"], bins=20)


def plot_deploy(deploy: dict[str, Any]) -> None:
    runs = [("first", r) for r in deploy["first"]] + [("re-run", r) for r in deploy["reruns"]]
    with figure("deploy", "site.yml on the demo cluster", "", "seconds") as ax:
        ax.bar(
            range(len(runs)),
            [r["seconds"] for _kind, r in runs],
            tick_label=[f"{k}\nchanged={r['changed']}" for k, r in runs],
        )


PLOTTERS: dict[str, Callable[[Any], None]] = {
    "latency": plot_latency,
    "bursts": plot_bursts,
    "slurm_load": plot_slurm_load,
    "logins": plot_logins,
    "deploy": plot_deploy,
}


def record(results: dict[str, Any], name: str, value: Any) -> None:
    """Keep a measurement as soon as it is done (a stopped run keeps what it measured), with its plots."""
    results[name] = value
    results.setdefault("dates", {})[name] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    PLOTTERS[name](value)
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
