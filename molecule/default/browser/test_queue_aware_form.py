"""The form that knows the queue, in Chromium, in English and French (issue 25): the fast-start hint under Time, the
one-interactive-job warning and its confirmed Cancel, and what the last session used. Each step saves the
screenshot the README shows (docs/screenshots/); the start estimate and the pending reason are shot by
test_browser.py and the spawn-timeout fault step."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import expect, log_in
from playwright.sync_api import Page
from testinfra.host import Host

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


@pytest.fixture
def allocation(hub: Host) -> Iterator[str]:
    """An allocation of alice's with no shell (salloc --no-shell, as on a login node), cancelled afterwards."""
    out = hub.check_output(
        "runuser -u alice -- /bin/sh -c "
        + shlex.quote(
            "timeout 120 salloc --no-shell --account=def-alice --time=10 --cpus-per-task=1 --mem=256 "
            "--job-name=probe-alloc 2>&1"
        )
    )
    match = re.search(r"Granted job allocation ([0-9]+)", out)
    assert match, out
    # The form reuses a user's list of other jobs for 5 s (UserQueries.interactive_jobs_cache_seconds), and the
    # step before rendered alice's form a moment ago.
    time.sleep(6)
    yield match.group(1)
    hub.run(f"scancel {match.group(1)}")


def alice_jobs(hub: Host) -> list[str]:
    return hub.check_output("squeue --noheader -u alice -o '%i'").split()


def test_the_fast_start_hint_follows_the_time_typed(page: Page, base_url: str) -> None:
    log_in(page, base_url, "alice", "alice-demo")
    page.wait_for_url(re.compile(r".*/hub/spawn.*"))
    hint = page.locator(".hpc-fast-start small:not([hidden])")
    page.fill("#time", "1")
    expect(hint).to_have_count(0)  # at the demo's tier (1 h): no hint
    page.fill("#time", "1.5")
    expect(hint).to_have_text("Sessions of 1 h or less start fastest on Demo cluster.")
    page.locator("#spawn_form").screenshot(path=DOCS_SCREENSHOTS / "16-fast-start-hint.png")


def test_another_interactive_job_is_named_and_cancelled_from_the_page(
    page: Page, base_url: str, hub: Host, allocation: str
) -> None:
    log_in(page, base_url, "alice", "alice-demo")
    page.wait_for_url(re.compile(r".*/hub/spawn.*"))
    warning = page.locator(".hpc-interactive")
    expect(warning).to_contain_text("You already have one, so this session would wait with the regular batch jobs")
    expect(warning).to_contain_text(f"Slurm job {allocation}: an interactive allocation (salloc or srun), RUNNING")
    page.screenshot(path=DOCS_SCREENSHOTS / "17-interactive-job.png")
    page.click(f"a.hpc-interactive-cancel >> text=Cancel job {allocation}...")
    expect(page.locator("h1")).to_have_text(f"Cancel Slurm job {allocation}?")
    assert allocation in alice_jobs(hub)  # the link only asks
    page.click("#hpc-interactive-confirm")
    expect(page.locator("#hpc-interactive-outcome")).to_contain_text(f"Slurm job {allocation} was cancelled")
    assert allocation not in alice_jobs(hub)


def test_the_last_sessions_use_is_on_the_next_form(page: Page, base_url: str) -> None:
    """alice's sessions of the browser steps before this one have ended: the form tells what the last one used."""
    log_in(page, base_url, "alice", "alice-demo")
    page.wait_for_url(re.compile(r".*/hub/spawn.*"))
    line = page.locator(".hpc-last-usage")
    expect(line).to_have_text(re.compile(r"Your last session \(Slurm job [0-9]+, .*\) used [0-9.]+ of [0-9]+ core"))
    line.screenshot(path=DOCS_SCREENSHOTS / "18-last-usage.png")


def test_in_french(page_fr: Page, base_url: str, hub: Host, allocation: str) -> None:
    page = page_fr
    log_in(page, base_url, "alice", "alice-demo")
    page.wait_for_url(re.compile(r".*/hub/spawn.*"))
    expect(page.locator(".hpc-interactive")).to_contain_text(f"Tâche Slurm {allocation} : une allocation interactive")
    expect(page.locator(".hpc-interactive-cancel")).to_have_text(f"Annuler la tâche {allocation}...")
    expect(page.locator(".hpc-last-usage")).to_contain_text("Votre dernière session (tâche Slurm ")
    page.fill("#time", "2")
    expect(page.locator(".hpc-fast-start small:not([hidden])")).to_have_text(
        "Les sessions de 1 h ou moins démarrent le plus vite sur Demo cluster."
    )
    page.screenshot(path=DOCS_SCREENSHOTS / "fr-16-form-queue.png", full_page=True)
