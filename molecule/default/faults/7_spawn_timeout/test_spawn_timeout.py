"""Fault 6 (short_spawn_timeout.yml): a job still pending at the spawn timeout (45 s here) is cancelled and the
user, in the browser, is told why and what to try (the seeds' "Spawn failed: Timeout" causes); while it waits,
the page shows Slurm's reason. Nothing is left in the queue."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from browser import expect, log_in, submit_form, watch_progress
from molhelpers import squeue_of, wait_for
from playwright.sync_api import Page
from testinfra.host import Host


def test_a_spawn_past_its_timeout_is_explained_and_its_job_cancelled(
    page: Page, base_url: str, hub: Host, shot: Callable[[str], Path]
) -> None:
    log_in(page, base_url, "carol", "carol-demo")
    page.wait_for_url(re.compile(r".*/hub/spawn.*"))
    start = time.monotonic()
    submit_form(page, account="def-carol")
    page.wait_for_url(re.compile(r".*/hub/spawn-pending/carol.*"), timeout=30_000)
    wait_for(lambda: squeue_of(hub, "carol"), timeout=30)
    ((job, *_rest),) = (line.split() for line in squeue_of(hub, "carol"))
    events = watch_progress(page, re.compile(r"/user/carol/"), timeout=70)
    took = time.monotonic() - start
    print(f"spawn failed {took:.1f} s after the request; events: {events}")
    failure = events[-1]
    # While it waited, the page said why, from the job board (queue_wait): Slurm's reason, explained.
    waiting = [event for event in events if event.startswith("Pending in queue")]
    explained = re.compile(
        r"Pending in queue: (the nodes it can use are not available .*\(Slurm: (ReqNodeNotAvail|Nodes)"
        r"|the cores, memory or GPUs it asks for are not free yet \(Slurm: Resources\))"
    )
    assert any(explained.match(event) for event in waiting), events
    assert 30 <= took <= 55
    assert failure.startswith(f"Spawn failed: Timeout. Your job {job} was still waiting in the Slurm queue after")
    assert re.search(r"\(Slurm's reason: (ReqNodeNotAvail|Resources|Nodes required for job are DOWN, DRAINED)", failure)
    assert "ask only for what you need" in failure
    expect(page.locator("#progress-message")).to_contain_text("Spawn failed: Timeout")
    shot("10-spawn-timeout")
    assert squeue_of(hub, "carol") == []
    assert hub.check_output(f"sacct -X -n -P -j {job} -o State").startswith("CANCELLED")
