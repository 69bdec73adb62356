"""A hostile user against the real hub: the attacks of docs/security.md replayed from inside her own job, with
what her server holds (its token), and what the hub must not do on her behalf."""

from __future__ import annotations

import base64
import json
import textwrap
import time

from hubclient import HubClient
from molhelpers import squeue_of
from testinfra.host import Host

# What alice posts to the port callback with her server's token. Each command, run by the hub as its own
# account, would leave /tmp/owned-<name> on the hub node.
ATTACKS = {
    "exec_prefix": "/usr/bin/touch /tmp/owned-exec_prefix; /usr/bin/sudo -E -u {username}",
    "batch_cancel_cmd": "/usr/bin/touch /tmp/owned-batch_cancel_cmd; /usr/bin/scancel {job_id}",
    "batch_query_cmd": "/usr/bin/touch /tmp/owned-batch_query_cmd; /usr/bin/squeue -h -j {job_id} -o '%T %B'",
    "batch_submit_cmd": "/usr/bin/touch /tmp/owned-batch_submit_cmd; /usr/bin/sbatch --parsable",
    "job_board_cmd": "/usr/bin/touch /tmp/owned-job_board_cmd",
    "output_tail_cmd": "/usr/bin/touch /tmp/owned-output_tail_cmd",
    "accounts_cmd": "/usr/bin/touch /tmp/owned-accounts_cmd",
    "req_memory": "1G\n#SBATCH --uid=0",
    "req_nprocs": "1\n/usr/bin/touch /tmp/owned-req_nprocs",
    "cmd": ["/bin/sh", "-c", "touch /tmp/owned-cmd"],
    "batch_script": "#!/bin/sh\ntouch /tmp/owned-batch_script\n",
}

# Runs in a kernel of alice's server, in her Slurm job: posts each body with her server's own token.
IN_THE_JOB = textwrap.dedent(
    """
    import json, os, urllib.request, urllib.error
    url = os.environ["JUPYTERHUB_API_URL"] + "/batchspawner"
    headers = {{"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"], "Content-Type": "application/json"}}
    codes = {{}}
    for label, body in {bodies}:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            codes[label] = urllib.request.urlopen(request).status
        except urllib.error.HTTPError as err:
            codes[label] = err.code
    print(json.dumps(codes))
    """
)


def post_from_the_job(alice: HubClient, bodies: list[tuple[str, object]]) -> dict[str, int]:
    return dict(json.loads(alice.execute(IN_THE_JOB.format(bodies=repr(bodies)), timeout=120)))


def owned_markers(host: Host) -> list[str]:
    return host.check_output("ls /tmp | grep '^owned-' || true").split()


def test_the_port_callback_takes_nothing_but_a_starting_servers_port(alice: HubClient, hub: Host, node: Host) -> None:
    assert owned_markers(hub) == [] and owned_markers(node) == []
    assert alice.start_server({"account": "def-alice"}).status_code in (201, 202)
    alice.wait_until_ready(timeout=180)
    job = squeue_of(hub, "alice")[0].split()[0]

    bodies = [(key, {key: value}) for key, value in ATTACKS.items()]
    bodies += [(f"{key} with a port", {key: value, "port": 8888}) for key, value in ATTACKS.items()]
    bodies += [("a second port report", {"port": 8888})]  # a running server's port cannot be moved either
    codes = post_from_the_job(alice, bodies)
    print("port callback answers:", codes)
    assert len(codes) == len(bodies)
    assert set(codes.values()) == {400}, codes

    # Every command the hub runs for alice now runs: stop (squeue, scancel), start (sbatch, board), stop.
    alice.stop_server()
    assert squeue_of(hub, "alice") == [] or squeue_of(hub, "alice")[0].split()[0] != job
    assert alice.start_server({"account": "def-alice"}).status_code in (201, 202)
    alice.wait_until_ready(timeout=180)
    assert alice.execute("1+1") == "2"
    alice.stop_server()

    assert owned_markers(hub) == [] and owned_markers(node) == []
    journal = hub.check_output("journalctl --no-pager -u jupyterhub --since '-10 min'")
    assert "Refused a port report for alice's server" in journal


WATCHER = textwrap.dedent(
    """
    import json, os, sys, time
    uid, out, end = int(sys.argv[1]), sys.argv[2], time.time() + float(sys.argv[3])
    seen = set()
    while time.time() < end:
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid in seen:
                continue
            try:
                if os.stat("/proc/" + pid).st_uid != uid:
                    continue
                cmd = open("/proc/%s/cmdline" % pid, "rb").read().replace(b"\\0", b" ").decode(errors="replace")
                env = open("/proc/%s/environ" % pid, "rb").read().decode(errors="replace")
            except OSError:
                continue
            seen.add(pid)
            with open(out, "a") as f:
                f.write(json.dumps({"cmd": cmd, "env": env}) + "\\n")
        time.sleep(0.001)
    """
)


def test_the_hubs_secrets_never_reach_a_process_run_as_a_user(alice: HubClient, hub: Host) -> None:
    """Every process the hub runs as alice on the hub node (sbatch, squeue, scancel through sudo) is read from
    /proc while she starts and stops a server: none has the proxy's token or the cookie secret."""
    proxy_token = hub.file("/etc/configurable-http-proxy/auth.env").content_string.strip().split("=", 1)[1]
    cookie_secret = hub.file("/var/lib/jupyterhub/jupyterhub_cookie_secret").content_string.strip()
    uid = hub.check_output("id -u alice")
    script = base64.b64encode(WATCHER.encode()).decode()
    hub.check_output(f"rm -f /tmp/env-watch.jsonl && echo {script} | base64 -d > /tmp/env-watch.py")
    # As alice: reading another account's /proc/<pid>/environ needs CAP_SYS_PTRACE, which containers lack; a
    # process may read its own account's (what alice herself could see on a login node).
    hub.check_output(
        f"systemd-run --uid=alice --unit=env-watch-{int(time.time())} /usr/bin/python3 /tmp/env-watch.py {uid} "
        "/tmp/env-watch.jsonl 240"
    )
    time.sleep(1)
    assert alice.start_server({"account": "def-alice"}).status_code in (201, 202)
    alice.wait_until_ready(timeout=180)
    alice.stop_server()
    seen = [json.loads(line) for line in hub.file("/tmp/env-watch.jsonl").content_string.splitlines()]
    commands = sorted({entry["cmd"].split()[0] for entry in seen if entry["cmd"]})
    print("processes run as alice on the hub node:", commands)
    assert any("sbatch" in c or "scancel" in c or "squeue" in c or "sudo" in c for c in commands), commands
    for entry in seen:
        assert proxy_token not in entry["env"], entry["cmd"]
        assert cookie_secret not in entry["env"], entry["cmd"]
        assert "CONFIGPROXY_AUTH_TOKEN" not in entry["env"], entry["cmd"]


def test_a_huge_job_output_reaches_the_user_cut(alice: HubClient, hub: Host) -> None:
    """alice's server prints 5 MB on one line and exits: the spawn fails with a few KiB of it, said to be cut."""
    config = "/home/alice/.jupyter/jupyter_server_config.py"
    hub.check_output(
        "install -d -o alice -g $(id -gn alice) /home/alice/.jupyter && "
        f"printf 'import sys\\nsys.stdout.write(\"x\" * 5000000)\\nsys.stdout.flush()\\nsys.exit(3)\\n' > {config} && "
        f"chown alice {config}"
    )
    try:
        resp = alice.start_server({"account": "def-alice"})
        # A spawn that fails within the hub's slow_spawn_timeout is answered 500 with the message at once.
        assert resp.status_code in (201, 202, 500), resp.text[:300]
        ready, message = alice.follow_spawn()  # the last progress event: what the spawn page shows
    finally:
        hub.check_output(f"rm -f {config}")
    assert not ready
    print(f"the user is told {len(message)} characters: {message[:200]!r}")
    assert "ended before the server started" in message
    assert "[cut: the end of " in message
    assert len(message) < 6000
