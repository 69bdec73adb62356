"""What the last session used, told on the next form: sacct's accounting of the user's previous session, requested
against used, and a suggestion when the request was far larger than the use. From the attacker's side too: sacct's
answer is checked against Slurm's shapes, and what does not parse says nothing."""

from __future__ import annotations

import asyncio
import html
import os
import pwd
from pathlib import Path

import pytest
from test_form_unit import MODEL
from test_spawner_unit import fake, spawner

from jupyterhub_hpc import form, i18n, usage
from jupyterhub_hpc.usage import SessionUsage

# Slurm 22.05: ReqMem with its unit only (21.08+), MaxRSS on the steps only, AllocTRES's mem with a unit.
SLURM_22 = """\
4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14.003|32G||billing=8,cpu=8,mem=32G,node=1
4242.batch|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|2097152K|cpu=8,mem=32G,node=1
4242.extern|COMPLETED|2024-05-01T11:13:02|3723|8|00:00.003|32G|972K|billing=8,cpu=8,mem=32G,node=1
"""

# Slurm 24.11: an older session, a GPU session cancelled by its user (the newest that ran), a session cancelled
# while it was pending (it never ran: not the last session), an array's parts (not a session's).
SLURM_24 = """\
5001|TIMEOUT|2025-03-02T09:00:00|28800|4|1-02:00:00|16G||billing=4,cpu=4,mem=16G,node=1
5001.batch|CANCELLED|2025-03-02T09:00:01|28800|4|1-02:00:00|16G|15.50G|cpu=4,mem=16G,node=1
5001.extern|COMPLETED|2025-03-02T09:00:00|28800|4|00:00:00|16G|0|billing=4,cpu=4,mem=16G,node=1
5007|CANCELLED by 1001|2025-03-03T15:30:00|5400|16|00:45:00|64G||billing=20,cpu=16,gres/gpu=1,mem=64G,node=1
5007.batch|CANCELLED|2025-03-03T15:30:01|5400|16|00:44:59.500|64G|3.2G|cpu=16,gres/gpu=1,gres/gpu:a100=1,mem=64G,node=1
5007.extern|COMPLETED|2025-03-03T15:30:00|5400|16|00:00.500|64G|1024K|billing=20,cpu=16,gres/gpu=1,gres/gpu:a100=1,mem=64G,node=1
5009|CANCELLED by 1001|2025-03-03T16:00:00|0|1|00:00:00|4G||
5010_1|COMPLETED|2025-03-04T10:00:00|600|1|00:09:00|4G||billing=1,cpu=1,mem=4G,node=1
5010_1.batch|COMPLETED|2025-03-04T10:00:00|600|1|00:09:00|4G|1G|cpu=1,mem=4G,node=1
"""


def test_a_slurm_22_session_is_told_with_its_numbers() -> None:
    used = usage.parse(SLURM_22)
    assert used is not None
    assert used.cpu_seconds == pytest.approx(4094.003)  # the job's 1:08:14.003 (its steps': the same)
    assert used == SessionUsage("4242", 3723, 8, used.cpu_seconds, 32768.0, 2048.0, 0)
    assert used.cores_used == pytest.approx(1.0997, abs=1e-3)
    assert used.far_larger()
    assert used.message() == (
        "Your last session (Slurm job 4242, 1 h 02 min) used 1.1 of 8 cores and 2.0 of 32 GB of memory. "
        "A smaller request starts sooner and costs your allocation less."
    )


def test_the_newest_session_that_ran_is_told_with_its_gpus() -> None:
    used = usage.parse(SLURM_24)
    assert used is not None
    assert (used.job_id, used.elapsed, used.cores, used.gpus) == ("5007", 5400, 16, 1)
    assert used.cpu_seconds == pytest.approx(2700.0)  # the job's 45 min (its steps' 44:59.5 + 0.5 s)
    assert used.requested_mb == 65536 and used.max_rss_mb == pytest.approx(3.2 * 1024)
    assert used.message() == (
        "Your last session (Slurm job 5007, 1 h 30 min) used 0.5 of 16 cores and 3.2 of 64 GB of memory. "
        "It held 1 GPU. A smaller request starts sooner and costs your allocation less."
    )


def test_a_session_that_used_what_it_asked_for_gets_no_suggestion() -> None:
    first = "\n".join(SLURM_24.splitlines()[:3])
    used = usage.parse(first)
    assert used is not None and not used.far_larger()
    assert (
        used.message()
        == "Your last session (Slurm job 5001, 8 h 00 min) used 3.2 of 4 cores and 15.5 of 16 GB of memory."
    )


def test_before_slurm_21_08_memory_per_core_and_per_node_is_the_total() -> None:
    per_core = (
        "77|COMPLETED|2020-01-01T10:00:00|1200|2|00:30:00|4000Mc||cpu=2,mem=8000M,node=1\n"
        "77.batch|COMPLETED|2020-01-01T10:00:00|1200|2|00:30:00|4000Mc|102400K|cpu=2,mem=8000M,node=1"
    )
    used = usage.parse(per_core)
    assert used is not None and used.requested_mb == 8000 and used.max_rss_mb == 100
    per_node = "78|COMPLETED|2020-01-01T10:00:00|1200|2|00:30:00|2000Mn||cpu=2,mem=4000,node=2"
    assert usage.parse(per_node) == SessionUsage("78", 1200, 2, 1800.0, 4000.0, None, 0)


def test_only_what_slurm_accounted_is_told() -> None:
    # jobacct_gather/none: no MaxRSS on any step (empty or 0): the cores only.
    no_rss = (
        "9|COMPLETED|2024-01-01T10:00:00|3600|8|01:00:00|32G||\n"
        "9.batch|COMPLETED|2024-01-01T10:00:00|3600|8|01:00:00|32G|0|"
    )
    used = usage.parse(no_rss)
    assert used is not None and not used.memory_known
    assert used.message() == (
        "Your last session (Slurm job 9, 1 h 00 min) used 1.0 of 8 cores. "
        "A smaller request starts sooner and costs your allocation less."
    )
    # No TotalCPU: the memory only.
    no_cpu = "9|COMPLETED|2024-01-01T10:00:00|3600|1||4G||\n9.batch|COMPLETED|2024-01-01T10:00:00|3600|1||4G|3G|"
    assert usage.parse(no_cpu).message() == (  # type: ignore[union-attr]
        "Your last session (Slurm job 9, 1 h 00 min) used 3.0 of 4 GB of memory."
    )
    # Neither, or a session that never ran, or no session at all: nothing.
    assert usage.parse("9|COMPLETED|2024-01-01T10:00:00|3600|8|00:00:00|32G||\n") is None
    assert usage.parse("9|CANCELLED by 1001|2024-01-01T10:00:00|0|8||32G||\n") is None
    assert usage.parse("") is None
    # One core cannot be smaller: no suggestion, whatever it used.
    one = usage.parse("9|COMPLETED|2024-01-01T10:00:00|3600|1|00:01:00|||\n")
    assert one is not None and one.message() == "Your last session (Slurm job 9, 1 h 00 min) used 0.0 of 1 core."


@pytest.mark.parametrize(
    ("elapsed", "cores", "cpu", "requested", "rss", "suggested"),
    [
        (3600, 8, 3600.0, 32768.0, 2048.0, True),  # 1 of 8 cores
        (3600, 8, 8 * 3600.0 * 0.5, 32768.0, 2048.0, True),  # half the cores, but 2 of 32 GB
        (3600, 8, 8 * 3600.0 * 0.5, 32768.0, 16384.0, False),  # half of both
        (3600, 8, 8 * 3600.0 * 0.25, 32768.0, 8192.0, False),  # a quarter is not far larger
        (120, 8, 60.0, 32768.0, 100.0, False),  # two minutes tell too little
        (599, 8, 60.0, 32768.0, 100.0, False),
        (600, 8, 60.0, 32768.0, 100.0, True),
        (3600, 1, 36.0, 1024.0, 10.0, False),  # one core, one GB: nothing smaller to ask
        (3600, 1, 36.0, 4096.0, 10.0, True),  # but 4 GB for 10 MB
        (3600, 8, None, 32768.0, None, False),  # nothing accounted: nothing suggested
    ],
)
def test_the_suggestion_is_made_only_when_the_request_was_far_larger(
    elapsed: int, cores: int, cpu: float | None, requested: float, rss: float | None, suggested: bool
) -> None:
    used = SessionUsage("1", elapsed, cores, cpu, requested, rss)
    assert used.far_larger() is suggested
    assert ("A smaller request" in used.message()) is suggested


def test_the_message_in_french() -> None:
    used = usage.parse(SLURM_22)
    assert used is not None
    with i18n.use("fr"):
        french = used.message()
    assert french == (
        "Votre dernière session (tâche Slurm 4242, 1 h 02 min) a utilisé 1,1 de ses 8 cœurs et 2,0 de ses 32 Go de "
        "mémoire. Une demande plus petite démarre plus tôt et coûte moins à votre allocation."
    )


GOOD = "4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|2G|billing=8,cpu=8,mem=32G,node=1"


@pytest.mark.parametrize(
    "line",
    [
        "4242|<script>alert(1)</script>|2024-05-01T11:13:02|3723|8|01:08:14|32G|2G|cpu=8",
        "4242<script>|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|2G|cpu=8",
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|2G|cpu=8,name=<img src=x onerror=alert(1)>",
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|2G|gres/gpu=<b>1</b>",
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|2G|cpu=8|extra",
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|2G",
        "4242|COMPLETED|<b>|3723|8|01:08:14|32G|2G|cpu=8",
        "4242|COMPLETED|2024-05-01T11:13:02|-3723|8|01:08:14|32G|2G|cpu=8",
        "4242|COMPLETED|2024-05-01T11:13:02|99999999999|8|01:08:14|32G|2G|cpu=8",  # elapsed beyond any job's
        "4242|COMPLETED|2024-05-01T11:13:02|3723|1234567890|01:08:14|32G|2G|cpu=8",
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|99:99|32G|2G|cpu=8",
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|1-2-3|32G|2G|cpu=8",
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|99999-23:59:59|32G|2G|cpu=8",  # more CPU than 8 cores in 31 y
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|9999999999999P|2G|cpu=8",
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32 G|2G|cpu=8",
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|2X|cpu=8",
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|1e9G|cpu=8",
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|2G|" + ",".join(["cpu=8"] * 65),
        "4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|2G|cpu=" + "8" * 600,
        "4242.<b>|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|2G|cpu=8",
        "sacct: error: Problem talking to the database: Connection refused",
    ],
)
def test_a_line_of_another_shape_says_nothing(line: str) -> None:
    assert usage.parse(GOOD) is not None
    assert usage.parse(f"{GOOD}\n{line}\n") is None
    assert usage.parse(f"{line}\n{GOOD}\n") is None


def test_an_answer_too_long_says_nothing_and_is_not_read_whole() -> None:
    assert usage.parse((GOOD + "\n") * 10**6) is None  # bytes
    assert usage.parse("\n" * (usage.MAX_LINES + 1) + GOOD) is None  # lines
    assert usage.parse(GOOD + "\n" * usage.MAX_LINES) is not None


def test_the_form_escapes_the_usage_line_whatever_it_holds() -> None:
    hostile = SessionUsage("<script>alert(1)</script>", 3600, 8, 3600.0, 32768.0, 2048.0)
    page = form.render(MODEL, ["def-alice"], {}, usage=hostile)
    assert "<script>" not in page
    assert "Slurm job &lt;script&gt;alert(1)&lt;/script&gt;, 1 h 00 min" in page
    assert '<div class="alert alert-info hpc-last-usage" role="status">' in page
    assert "hpc-last-usage" not in form.render(MODEL, ["def-alice"], {})
    assert "hpc-last-usage" not in form.render(
        MODEL, ["def-alice"], {}, usage=SessionUsage("1", 0, 8, None, None, None)
    )


def _me() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def test_the_form_tells_what_the_last_session_used_from_one_sacct_as_the_hubs_user(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    answer = tmp_path / "answer"
    answer.write_text(SLURM_22)
    sacct = fake(tmp_path, "sacct", f'echo "$@" >>{calls}; cat {answer}')
    s = spawner(tmp_path, sacct=sacct)
    page = asyncio.run(s.render_form())
    assert html.escape(usage.parse(SLURM_22).message()) in page  # type: ignore[union-attr]
    assert calls.read_text().split() == [
        "--noheader",
        "--parsable2",
        f"--user={_me()}",
        "--name=jupyterhub",
        "--starttime=now-14days",
        "--endtime=now",
        "--state=CD,CA,TO,F,OOM,NF,PR",
        "--format=JobID,State,End,ElapsedRaw,AllocCPUS,TotalCPU,ReqMem,MaxRSS,AllocTRES",
    ]
    # Reused for a while: a reload of the form does not ask Slurm again.
    asyncio.run(s.render_form())
    assert len(calls.read_text().splitlines()) == 1
    # A new start forgets it: the form after that session tells of that one.
    s.services.queries.session_started(_me())
    with i18n.use("fr"):
        assert "Votre dernière session (tâche Slurm 4242, 1 h 02 min)" in asyncio.run(s.render_form())


@pytest.mark.parametrize(
    "accounting",
    [
        "echo 'sacct: error: slurmdbd not responding' >&2; exit 1",
        "head -c 1000000 /dev/zero | tr '\\0' '\\n'",  # longer than the limit: cut, and not told
        "echo '4242|COMPLETED|2024-05-01T11:13:02|3723|8|01:08:14|32G|2G|<script>alert(1)</script>'",
        "sleep 5",  # no answer within command_timeout
    ],
)
def test_without_a_clear_answer_the_form_says_nothing_of_it(tmp_path: Path, accounting: str) -> None:
    s = spawner(tmp_path, sacct=fake(tmp_path, "sacct", accounting), command_timeout=1.0)
    page = asyncio.run(s.render_form())
    assert "hpc-last-usage" not in page and "<script>" not in page
    assert 'name="cores"' in page  # the form itself is there


def test_an_empty_setting_turns_it_off(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    s = spawner(tmp_path, sacct=fake(tmp_path, "sacct", f"echo x >>{calls}; cat <<'EOF'\n{SLURM_22}EOF"), usage_cmd="")
    assert "hpc-last-usage" not in asyncio.run(s.render_form())
    assert not calls.exists()


def test_a_user_name_is_shell_quoted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where an unquoted `touch x` would make x (a /tmp/x of another run says nothing)
    calls = tmp_path / "calls"
    s = spawner(tmp_path, sacct=fake(tmp_path, "sacct", f'echo "$@" >>{calls}'))
    assert asyncio.run(s.services.queries.last_usage("a b;touch x")) is None
    assert "--user=a b;touch x --name" in calls.read_text()
    assert not (tmp_path / "x").exists()
