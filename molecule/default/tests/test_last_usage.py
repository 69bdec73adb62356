"""What the last session used, on the next form, from the real Slurm's accounting (jobacct_gather/linux on the demo
cluster): a session that burnt one core for a minute is told as about 1 of 1 core, with its job id."""

from __future__ import annotations

import html
import json
import re
import shlex
from typing import Any

from hubclient import HubClient
from molhelpers import wait_for
from testinfra.host import Host

SPAWNER_CONFIG = "/etc/jupyterhub/jupyterhub_config.d/50-batchspawner.json"
USAGE = re.compile(r'<div class="alert alert-info hpc-last-usage" role="status">(.*?)</div>', re.S)


def as_user(host: Host, user: str, command: str) -> Any:
    """A command run by ``user`` on ``host`` (a shell of hers on the hub node, as any cluster user has)."""
    return host.run(f"runuser -u {user} -- /bin/sh -c {shlex.quote(command)}")


def hub_job_name(hub: Host) -> str:
    config = json.loads(hub.file(SPAWNER_CONFIG).content_string)
    return str(config.get("HubServices", {}).get("job_name", "jupyterhub"))


def accounted(hub: Host, job_id: str) -> tuple[list[str], bool]:
    """sacct's State|ElapsedRaw|TotalCPU of the job (its own line: with --allocations, Slurm 24.11 prints a TotalCPU
    of 00:00:00, the steps' sum is on the job's line without it), and whether any of its lines has a MaxRSS."""
    out = hub.check_output(
        f"sacct --noheader --parsable2 --jobs={job_id} --format=JobID,State,ElapsedRaw,TotalCPU,MaxRSS"
    )
    lines = [line.split("|") for line in out.splitlines() if line.count("|") == 4]
    job = next((fields[1:4] for fields in lines if fields[0] == job_id), [])
    return job, any(fields[4] for fields in lines)


def usage_line(client: HubClient) -> str:
    page = client.session.get(client.url("/hub/spawn"), timeout=60).text
    match = USAGE.search(page)
    return html.unescape(match.group(1)) if match else ""


def test_a_session_that_burnt_one_core_for_a_minute_is_told_so(alice: HubClient, hub: Host) -> None:
    # A session's job as the hub names it: one core, 512 MB, busy for 60 s, then done (COMPLETED, not TIMEOUT).
    burn = (
        f"sbatch --parsable --job-name={shlex.quote(hub_job_name(hub))} --account=def-alice --time=5 "
        "--cpus-per-task=1 --mem=512 --output=/dev/null "
        "--wrap 'timeout 60 sh -c \"while :; do :; done\"; true'"
    )
    result = as_user(hub, "alice", burn)
    assert result.rc == 0, result.stderr
    job_id = result.stdout.strip().split(";")[0]
    assert re.fullmatch(r"[0-9]+", job_id), result.stdout
    try:
        check_the_form_tells_it(alice, hub, job_id)
    finally:  # no job of alice's left for the next tests, whatever happened
        as_user(hub, "alice", f"scancel {job_id}")


def check_the_form_tells_it(alice: HubClient, hub: Host, job_id: str) -> None:
    def ended() -> bool:
        fields, _rss = accounted(hub, job_id)
        return len(fields) == 3 and fields[0] == "COMPLETED" and fields[2] not in ("", "00:00:00")

    wait_for(ended, timeout=240, interval=5)
    (state, elapsed, total_cpu), rss = accounted(hub, job_id)
    assert 60 <= int(elapsed) <= 90, (state, elapsed, total_cpu)

    # The form's line names this job (a user's line is reused up to a minute: wait for it to be the new one).
    wait_for(lambda: f"Slurm job {job_id}," in usage_line(alice), timeout=150, interval=5)
    line = usage_line(alice)
    # The memory only when Slurm accounted a MaxRSS (in these containers jobacct_gather/linux gives none: the
    # line then says the cores alone, as it must).
    memory = r" and (?P<memory>[0-9]+\.[0-9]) of 0\.5 GB of memory" if rss else ""
    match = re.fullmatch(
        rf"Your last session \(Slurm job {job_id}, 1 min\) used (?P<cores>[0-9]\.[0-9]) of 1 core{memory}\.",
        line,
    )
    assert match, (line, rss)
    assert 0.8 <= float(match.group("cores")) <= 1.0, line  # busy for ~60 s of its ~61 s, within accounting
    assert not rss or float(match.group("memory")) <= 0.1, line  # a shell loop: a few MB
    # One core and 512 MB for a minute: nothing smaller to suggest.
    assert "A smaller request" not in line
