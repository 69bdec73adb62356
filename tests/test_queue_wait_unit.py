"""A pending server's start page: Slurm's reason and expected start from the job board's line (queue_wait,
JobState.seen), in English and French; and what a line of another shape can put on the page (nothing)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from test_spawner_unit import fake, pending_job_spawner, timed_out_start

from jupyterhub_hpc import i18n
from jupyterhub_hpc.job_state import JobState
from jupyterhub_hpc.queue_wait import explain, waiting_message

NOW = datetime(2026, 12, 7, 21, 0, 0)


def pending(line: str) -> JobState:
    return JobState("7").seen(line)


def test_the_boards_line_gives_the_reason_and_the_expected_start() -> None:
    job = pending("PENDING n/a 2026-12-07T21:02:10 Resources")
    assert (job.state, job.node, job.reason, job.start) == ("PENDING", "", "Resources", "2026-12-07T21:02:10")
    assert job.expected_start == datetime(2026, 12, 7, 21, 2, 10)
    # The reason last, with its spaces.
    job = pending("PENDING n/a N/A ReqNodeNotAvail, UnavailableNodes:jhub-mol-node1")
    assert (job.reason, job.start, job.expected_start) == ("ReqNodeNotAvail, UnavailableNodes:jhub-mol-node1", "", None)
    # A running job: its node; no expected start any more.
    job = pending("RUNNING node1 2026-12-07T20:59:00 None")
    assert (job.running, job.node, job.expected_start) == (True, "node1", None)
    # The user's own query ("%T %B"): state and node, no reason nor start.
    assert pending("PENDING n/a").reason == "" and pending("RUNNING node1").node == "node1"


@pytest.mark.parametrize(
    "line",
    [
        "PENDING n/a 2026-12-07T21:02:10 <script>alert(1)</script>",
        "PENDING n/a 2026-12-07T21:02:10 " + "R" * 2001,
        "PENDING n/a 2026-12-07T21:02:10 Resources\u202e",
        "PENDING n/a 2026-12-07T21:02:10 {reason}",
    ],
)
def test_a_reason_of_another_shape_never_reaches_the_page(line: str) -> None:
    job = pending(line)
    assert job.pending and job.reason == ""
    assert waiting_message(job, NOW) == "Pending in queue... Slurm expects it to start in about 3 min."


@pytest.mark.parametrize(
    "line",
    [
        "PENDING n/a tomorrow Resources",
        "PENDING n/a 2026-12-07T21:02:10;id Resources",
        "PENDING n/a/x 1 2 3 4",
        "PENDING n/a \u0662\u0660\u0662\u0666-12-07T21:02:10 Resources",  # digits, but not ASCII ones
    ],
)
def test_a_line_of_another_shape_gives_no_start_node_or_reason(line: str) -> None:
    job = pending(line)
    assert (job.state, job.node, job.start, job.reason) == ("PENDING", "", "", "")
    assert waiting_message(job, NOW) == "Pending in queue..."


def test_a_start_of_the_shape_of_a_time_but_no_time_is_left_out() -> None:
    job = pending("PENDING n/a 2026-13-45T25:00:00 Resources")  # month 13, hour 25
    assert (job.start, job.expected_start, job.reason) == ("", None, "Resources")


def test_the_node_of_a_running_job_does_not_depend_on_what_follows_it() -> None:
    """A site's board of another shape (SLURM_TIME_FORMAT in a wrapper's environment: a start with a space) keeps
    the running job's node, which the hub connects to; only the start and reason are left out."""
    job = pending("RUNNING nc10001 2026-12-07 21:02:10 None")
    assert (job.running, job.node, job.start, job.reason) == (True, "nc10001", "", "")


def test_slurms_node_lists_are_reasons_and_a_long_one_is_cut() -> None:
    job = pending("PENDING n/a N/A ReqNodeNotAvail, UnavailableNodes:nc[10001-10003,10005]")
    assert job.reason == "ReqNodeNotAvail, UnavailableNodes:nc[10001-10003,10005]"
    assert waiting_message(job, NOW).startswith("Pending in queue: the nodes it can use are not available")
    nodes = ",".join(f"nc[{n}-{n + 1}]" for n in range(10000, 10100, 2))
    long = pending(f"PENDING n/a N/A ReqNodeNotAvail, UnavailableNodes:{nodes}")
    assert len(long.reason) == 120 and long.reason.endswith("...")
    assert long.reason.startswith("ReqNodeNotAvail, UnavailableNodes:nc[10000-10001]")
    # The timeout's own query gives the same reason, checked the same way.
    asked = JobState("7", "PENDING").pending_because(f" ReqNodeNotAvail, UnavailableNodes:{nodes}\n")
    assert asked.reason == long.reason


def test_the_page_says_why_and_when_in_english_and_french() -> None:
    job = pending("PENDING n/a 2026-12-07T21:02:10 Priority")
    assert waiting_message(job, NOW) == (
        "Pending in queue: jobs with a higher priority are ahead of this one (Slurm: Priority). "
        "Slurm expects it to start in about 3 min."
    )
    with i18n.use("fr"):
        french = waiting_message(job, NOW)
    assert french.startswith("En attente dans la file : des tâches de plus haute priorité passent avant celle-ci")
    assert french.endswith("Slurm prévoit son début dans environ 3 min.")
    # Slurm's limits by prefix; a reason not known here is shown as Slurm's word.
    assert explain("QOSMaxGRESPerUser").startswith("a limit of its quality of service")
    assert explain("AssocGrpCpuLimit").startswith("your account's limit")
    assert explain("QOSNotAllowed") == ""  # not a limit reached: Slurm's own word only
    unknown = pending("PENDING n/a N/A BadConstraints")
    assert waiting_message(unknown, NOW) == "Pending in queue (Slurm: BadConstraints)."
    # Nothing said yet (None, before the scheduler's pass), a start already past: the plain line.
    assert waiting_message(pending("PENDING n/a N/A None"), NOW) == "Pending in queue..."
    assert waiting_message(pending("PENDING n/a 2026-12-07T20:59:00 Priority"), NOW).endswith("(Slurm: Priority).")


def test_the_start_page_follows_the_board(tmp_path: Path) -> None:
    """The spawner's progress while its job is pending: the board's latest reason, then the running message."""
    s: Any = pending_job_spawner(tmp_path, tmp_path / "cancelled")
    s.job = JobState("7").seen("PENDING n/a N/A Resources")

    async def first() -> str:
        events = s.progress()
        event = await events.__anext__()
        await events.aclose()
        return str(event["message"])

    assert asyncio.run(first()) == (
        "Pending in queue: the cores, memory or GPUs it asks for are not free yet (Slurm: Resources)."
    )


def test_the_timeout_tells_the_boards_reason_without_asking_slurm_again(tmp_path: Path) -> None:
    cancelled, asked = tmp_path / "cancelled", tmp_path / "asked"
    s = pending_job_spawner(
        tmp_path,
        cancelled,
        job_board_cmd=fake(tmp_path, "squeue-board", "echo '7 PENDING n/a N/A QOSMaxCpuPerUserLimit'") + " {job_ids}",
        pending_reason_cmd=fake(tmp_path, "squeue-reason", f"echo asked >{asked}; echo Resources") + " {job_id}",
        pending_timeout=1.0,
    )
    assert "(Slurm's reason: QOSMaxCpuPerUserLimit), so it was cancelled." in timed_out_start(s)
    assert not asked.exists()
    assert cancelled.read_text().strip() == "7"
