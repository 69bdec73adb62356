"""A server's job that ends under its user (a node failure, the walltime, an operator's scancel): the hub keeps
Slurm's last word on it and the next form says what happened. From the attacker's side too: the state comes from
Slurm's and the hub's database, and neither reaches the page unchecked."""

from __future__ import annotations

import asyncio
import html
from pathlib import Path

import pytest
from test_form_unit import MODEL
from test_spawner_unit import fake, spawner

from jupyterhub_hpc import form
from jupyterhub_hpc.job_end import JobEnd
from jupyterhub_hpc.job_state import JobState


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("NODE_FAIL node7", JobEnd("42", "NODE_FAIL", "node7")),
        ("TIMEOUT node7", JobEnd("42", "TIMEOUT", "node7")),
        ("CANCELLED n/a", JobEnd("42", "CANCELLED", "")),  # ended before it had a node
        ("", JobEnd("42")),
        ("slurm_load_jobs error: Invalid job id specified", JobEnd("42")),
        # Hostile or broken lines keep only what matches Slurm's vocabulary.
        ("NODE_FAIL <img src=x onerror=alert(1)>", JobEnd("42", "NODE_FAIL", "")),
        ("<script> node7", JobEnd("42")),
        ("NODE_FAIL node7 and more words", JobEnd("42", "NODE_FAIL", "")),
        ("NODE_FAIL " + "n" * 65, JobEnd("42", "NODE_FAIL", "")),
        ("NODE_FAIL <svg/onload=alert(1)>", JobEnd("42", "NODE_FAIL", "")),
        ("NODE_FAIL node7;reboot", JobEnd("42", "NODE_FAIL", "")),
        ("A" * 33 + " node7", JobEnd("42")),
    ],
)
def test_only_slurms_words_are_kept(status: str, expected: JobEnd) -> None:
    assert JobEnd.from_status("42", status) == expected


@pytest.mark.parametrize("job_id", ["", "42; touch /tmp/owned", "<b>", "1" * 21, "42\n"])
def test_an_id_that_is_not_a_slurm_job_id_keeps_nothing(job_id: str) -> None:
    assert JobEnd.from_status(job_id, "NODE_FAIL node7") is None


def test_the_message_says_what_happened_and_what_to_do() -> None:
    assert JobEnd("42", "NODE_FAIL", "node7").message() == (
        "Your previous server (Slurm job 42) ended: its node node7 failed or was taken out of service. "
        "Start again: Slurm will choose a working node."
    )
    assert "time limit" in JobEnd("42", "TIMEOUT", "node7").message()
    assert "cancelled" in JobEnd("42", "CANCELLED").message()
    assert JobEnd("42", "NODE_FAIL").message() == "Your previous server (Slurm job 42) ended (Slurm state NODE_FAIL)."
    assert JobEnd("42", "COMPLETED", "node7").message().endswith("(Slurm state COMPLETED).")
    assert JobEnd("42").message() == "Your previous server (Slurm job 42) ended."


def test_the_saved_state_is_checked_again_when_loaded() -> None:
    saved = JobEnd("42", "NODE_FAIL", "node7").to_state()
    assert JobEnd.from_state({"job_end": saved}) == JobEnd("42", "NODE_FAIL", "node7")
    assert JobEnd.from_state({}) is None
    assert JobEnd.from_state({"job_end": "NODE_FAIL"}) is None
    assert JobEnd.from_state({"job_end": {"job_id": 42}}) is None
    assert JobEnd.from_state({"job_end": {"job_id": "42", "state": "<b>x</b>", "node": "node7"}}) == JobEnd("42")


def test_a_node_failure_under_a_running_server_is_told_on_the_next_form(tmp_path: Path) -> None:
    """The hub's poll finds the job ended (squeue: NODE_FAIL on node7): the server is stopped, and the form the
    user opens next (also after a hub restart: the spawner's saved state) says which job, which node, what to do."""
    squeue = fake(tmp_path, "squeue", "echo 'NODE_FAIL node7'")
    s = spawner(tmp_path, batch_query_cmd=squeue + " {job_id}")
    s.job = JobState("42")
    assert asyncio.run(s.poll()) == 1
    assert s.job_id == ""
    state = s.get_state()
    assert state["job_end"] == {"job_id": "42", "state": "NODE_FAIL", "node": "node7"}

    restarted = spawner(tmp_path)
    restarted.load_state(state)
    page = asyncio.run(restarted.render_form())
    assert html.escape(JobEnd("42", "NODE_FAIL", "node7").message()) in page
    assert 'class="alert alert-warning hpc-job-end"' in page


def test_a_running_or_unanswered_job_is_not_an_end(tmp_path: Path) -> None:
    for answer in ("echo 'RUNNING node7'", "echo 'slurm_load_jobs error: Unable to contact' >&2; exit 1"):
        s = spawner(tmp_path, batch_query_cmd=fake(tmp_path, "squeue", answer) + " {job_id}")
        s.job = JobState("42")
        assert asyncio.run(s.poll()) is None
        assert "job_end" not in s.get_state()
        assert "hpc-job-end" not in asyncio.run(s.render_form())


def test_a_hostile_saved_state_never_reaches_the_page_as_html(tmp_path: Path) -> None:
    """The database's state, however it got there: only a job id, a state and a node name of Slurm's shapes."""
    s = spawner(tmp_path)
    s.load_state({"job_end": {"job_id": "42", "state": "NODE_FAIL", "node": "<img src=x onerror=alert(1)>"}})
    page = asyncio.run(s.render_form())
    assert "<img" not in page and "onerror" not in page
    assert "Your previous server (Slurm job 42) ended" in page


@pytest.mark.parametrize(
    ("accounting", "expected"),
    [
        ("echo 'NODE_FAIL|node7'", JobEnd("42", "NODE_FAIL", "node7")),
        ("echo 'CANCELLED by 1001|node7'", JobEnd("42", "CANCELLED", "node7")),
        ("printf 'TIMEOUT|node7\\nCOMPLETED|node8\\n'", JobEnd("42", "TIMEOUT", "node7")),
        ("echo 'NODE_FAIL|<img src=x>'", JobEnd("42", "NODE_FAIL", "")),
        ("echo 'sacct: error: slurmdbd not responding' >&2; exit 1", JobEnd("42")),
        ("head -c 1000000 /dev/zero | tr '\\0' A", JobEnd("42")),  # bounded, and not a state
    ],
)
def test_when_squeue_has_forgotten_the_job_slurms_accounting_tells(
    tmp_path: Path, accounting: str, expected: JobEnd
) -> None:
    """squeue drops an ended job within seconds: sacct, as the hub's user, says how it ended."""
    calls = tmp_path / "calls"
    sacct = fake(tmp_path, "sacct", f'echo "$@" >>{calls}; {accounting}')
    s = spawner(tmp_path, batch_query_cmd=fake(tmp_path, "squeue", "true") + " {job_id}", sacct=sacct)
    s.job = JobState("42")
    assert asyncio.run(s.poll()) == 1
    assert not calls.exists()  # poll never waits for slurmdbd: the form that tells the end asks
    asyncio.run(s.render_form())
    assert s.job.end == expected
    assert calls.read_text().split() == [
        "--noheader",
        "--allocations",
        "--parsable2",
        "--jobs=42",
        "--format=State,NodeList",
    ]


def test_the_shared_job_boards_last_word_is_kept_without_asking_again(tmp_path: Path) -> None:
    """The deployed path: the hub's one squeue for all jobs lists the job under the state it ended in. That is
    Slurm saying it is gone (not "no answer"), and its state and node are what the form tells; the user's own
    squeue and sacct are not run."""
    calls = tmp_path / "calls"
    board = fake(tmp_path, "squeue-all", "echo '42 NODE_FAIL node7'")
    per_job = fake(tmp_path, "squeue", f"echo squeue >>{calls}; echo 'RUNNING node7'")
    sacct = fake(tmp_path, "sacct", f"echo sacct >>{calls}")
    s = spawner(tmp_path, job_board_cmd=board + " {job_ids}", batch_query_cmd=per_job + " {job_id}", sacct=sacct)
    s.job = JobState("42")
    assert asyncio.run(s.poll()) == 1
    assert "Your previous server (Slurm job 42) ended: its node node7 failed" in asyncio.run(s.render_form())
    assert not calls.exists()


def test_a_server_that_exited_by_itself_is_not_news(tmp_path: Path) -> None:
    """COMPLETED: the user shut the server down (JupyterLab's File > Shut Down); the next form is the plain one."""
    for squeue, accounting in (("echo 'COMPLETED node7'", "true"), ("true", "echo 'COMPLETED|node7'")):
        sacct = fake(tmp_path, "sacct", accounting)
        s = spawner(tmp_path, batch_query_cmd=fake(tmp_path, "squeue", squeue) + " {job_id}", sacct=sacct)
        s.job = JobState("42")
        assert asyncio.run(s.poll()) == 1
        assert "hpc-job-end" not in asyncio.run(s.render_form())
        assert "job_end" not in s.get_state()


def test_a_new_start_forgets_the_older_jobs_notice(tmp_path: Path) -> None:
    """Told on the form that asked for the start: after it (even a failed one) the form no longer says it."""
    sbatch = fake(tmp_path, "sbatch", "cat >/dev/null; echo 'sbatch: error: Invalid account' >&2; exit 1")
    s = spawner(tmp_path, batch_submit_cmd=sbatch)
    s.load_state({"job_end": JobEnd("41", "NODE_FAIL", "node7").to_state()})

    async def start() -> None:
        await s.apply_options({"account": "def-alice"})
        await s.start()

    with pytest.raises(RuntimeError):
        asyncio.run(start())
    assert "hpc-job-end" not in asyncio.run(s.render_form())


def test_the_form_escapes_the_notice_whatever_it_holds() -> None:
    page = form.render(MODEL, ["def-alice"], {}, "<script>alert(1)</script> & more")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
