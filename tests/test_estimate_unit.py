"""Slurm's start estimate on the form (estimate.py, estimate_gate.py): sbatch --test-only's answer read field by
field, its bounds (rate, concurrency, cache, bytes, seconds), and the command it runs, against a fake sbatch. End to
end, on the real Slurm: Molecule's test_start_estimate.py and the browser test."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest

# one_hub_per_test: autouse, each test a hub of its own (the estimates' gate counts per hub).
from test_spawner_unit import fake, one_hub_per_test, spawner  # noqa: F401  # pylint: disable=unused-import

from jupyterhub_hpc import i18n
from jupyterhub_hpc.estimate import OUTPUT_LIMIT, Estimate, parse, start_estimate
from jupyterhub_hpc.estimate_gate import EstimateGate
from jupyterhub_hpc.form import render
from jupyterhub_hpc.model import Request

NOW = datetime(2026, 12, 7, 23, 0, 0)
LINE = "sbatch: Job 3 to start at 2026-12-07T23:05:35 using 1 processors on nodes c1 in partition cpu"
REQUEST = Request("def-alice", 60, 1, 512, None, 0, "", "lab", ("cpu",))
FIELDS = {"account": ["def-alice"], "time": ["1"], "cores": ["1"], "memory": ["512"], "interface": ["lab"]}


# -- Slurm's answer ------------------------------------------------------------------------------------------------
def test_slurms_line_gives_the_start_nodes_and_partition() -> None:
    estimate = parse(0, LINE + "\n")
    assert estimate == Estimate(datetime(2026, 12, 7, 23, 5, 35), "c1", "cpu")
    assert estimate.message(REQUEST, NOW) == "Slurm expects this session to start in about 6 min on node type cpu."


@pytest.mark.parametrize(
    ("start", "text"),
    [
        (NOW, "Slurm expects this session to start now on node type cpu."),
        (NOW - timedelta(minutes=5), "Slurm expects this session to start now on node type cpu."),
        (NOW + timedelta(seconds=50), "Slurm expects this session to start now on node type cpu."),
        (NOW + timedelta(minutes=42), "Slurm expects this session to start in about 42 min on node type cpu."),
        (
            NOW + timedelta(hours=5, minutes=10),
            "Slurm expects this session to start in about 5 h on node type cpu (at "
            + (NOW + timedelta(hours=5, minutes=10)).astimezone().strftime("%Y-%m-%d %H:%M %Z")
            + ").",
        ),
    ],
)
def test_the_line_says_now_minutes_or_hours(start: datetime, text: str) -> None:
    assert Estimate(start, "c1", "cpu").message(REQUEST, NOW) == text


def test_a_request_that_fits_several_node_types_names_the_nodes() -> None:
    request = Request("", 60, 1, 512, None, 0, "", "lab", ("cpu", "gpu"))
    assert Estimate(NOW, "c[1-2]", "cpu").message(request, NOW) == "Slurm expects this session to start now on c[1-2]."


def test_in_french() -> None:
    with i18n.use("fr"):
        text = Estimate(NOW + timedelta(minutes=3), "c1", "cpu").message(REQUEST, NOW)
    assert text == "Slurm prévoit que cette session commence dans environ 3 min sur le type de nœud cpu."


@pytest.mark.parametrize(
    "stderr",
    [
        "",
        "sbatch: Job 3 to start at 2026-13-07T23:05:35 using 1 processors on nodes c1 in partition cpu",  # month 13
        "sbatch: Job 3 to start at 2026-12-07T23:05:35 using 1 processors on nodes <script> in partition cpu",
        "sbatch: Job 3 to start at 2026-12-07T23:05:35 using 1 processors on nodes c1 in partition cpu<b>",
        "sbatch: Job 99999999999 to start at 2026-12-07T23:05:35 using 1 processors on nodes c1 in partition cpu",
        "sbatch: Job 3 to start at 2026-12-07T23:05:35 using 1 processors on nodes " + "c" * 300 + " in partition x",
        "warning\n" * 50 + LINE,  # Slurm's line after 20 others: not read
    ],
)
def test_anything_but_slurms_exact_line_is_no_estimate(stderr: str) -> None:
    assert parse(0, stderr) == Estimate()


@pytest.mark.parametrize(
    ("stderr", "problem"),
    [
        (
            "sbatch: error: Batch job submission failed: Requested node configuration is not available",
            "Requested node configuration is not available",
        ),
        ("sbatch: error: <img src=x onerror=alert(1)>", ""),  # not Slurm's shape: not shown
        ("sbatch: error: " + "x" * 500, "x" * 197 + "..."),
    ],
)
def test_slurms_refusal_is_shown_checked_and_short(stderr: str, problem: str) -> None:
    estimate = parse(1, stderr)
    assert estimate == Estimate(problem=problem)
    assert not estimate.known


def test_only_slurms_own_refusal_is_shown() -> None:
    """sudo's refusal names the hub's account, its host and the command; a site plugin's note is not the reason."""
    sudo = "Sorry, user jupyterhub is not allowed to execute '/usr/bin/sbatch --test-only' as alice on hub."
    assert parse(1, sudo) == Estimate()
    note = "sbatch: NOTE: your job is routed\nsbatch: error: Batch job submission failed: Invalid account"
    assert parse(1, note) == Estimate(problem="Invalid account")


def test_no_answer_in_time_is_no_estimate() -> None:
    assert parse(None, LINE) == Estimate()  # a killed command's output is never read as an answer


# -- the gate ------------------------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_user_gets_a_few_estimates_a_minute_one_at_a_time() -> None:
    clock = Clock()
    gate = EstimateGate(per_minute=3, concurrency=10, cache_seconds=20, clock=clock)
    assert gate.admit("alice") == ""
    assert gate.admit("alice") == "user"  # one at a time
    gate.failed("alice")
    for _round in range(2):
        assert gate.admit("alice") == ""
        gate.failed("alice")
    assert gate.admit("alice") == "user"  # 3 in the last minute
    assert gate.admit("bob") == ""  # her limit is hers
    clock.now = 61.0
    assert gate.admit("alice") == ""


def test_the_hub_asks_slurm_for_a_bounded_number_at_once() -> None:
    gate = EstimateGate(per_minute=10, concurrency=2, cache_seconds=20, clock=Clock())
    assert gate.admit("alice") == ""
    assert gate.admit("bob") == ""
    assert gate.admit("carol") == "busy"  # answered at once, not queued
    gate.failed("bob")
    assert gate.admit("carol") == ""


def test_the_hubs_estimates_are_bounded_a_minute_too() -> None:
    clock = Clock()
    gate = EstimateGate(per_minute=10, concurrency=5, cache_seconds=20, clock=clock, hub_per_minute=3)
    for user in ("a", "b", "c"):
        assert gate.admit(user) == ""
        gate.done(user, REQUEST, None)
    assert gate.admit("d") == "busy"  # slurmctld's will-run requests: 3 a minute here, whoever asks
    clock.now = 61.0
    assert gate.admit("d") == ""


def test_a_turn_that_ended_without_an_answer_keeps_nothing() -> None:
    gate = EstimateGate(per_minute=10, concurrency=2, cache_seconds=20, clock=Clock())
    assert gate.admit("alice") == ""
    gate.done("alice", REQUEST, None)
    assert gate.cached("alice", REQUEST) is None
    assert gate.admit("alice") == ""  # her turn ended: the next one is hers


def test_the_same_request_is_answered_from_the_cache_for_a_while() -> None:
    clock = Clock()
    gate = EstimateGate(per_minute=10, concurrency=2, cache_seconds=20, clock=clock)
    assert gate.admit("alice") == ""
    gate.done("alice", REQUEST, {"state": "start"})
    assert gate.cached("alice", REQUEST) == {"state": "start"}
    assert gate.cached("bob", REQUEST) is None  # never another user's answer
    clock.now = 21.0
    assert gate.cached("alice", REQUEST) is None
    gate.admit("bob")
    gate.done("bob", REQUEST, {"state": "start"})
    assert ("alice", REQUEST) not in gate._cache  # aged-out answers are dropped, the cache stays small


# -- against a fake sbatch -----------------------------------------------------------------------------------------
def estimator(tmp_path: Path, sbatch_body: str, **settings: object) -> object:
    record = tmp_path / "ran"
    sbatch = fake(tmp_path, "sbatch", f'echo "$0 $*" > {record}; cat > {record}.stdin; {sbatch_body}')
    return spawner(tmp_path, estimate_cmd=f"{sbatch} --test-only", **settings)


def test_the_estimate_runs_sbatch_test_only_with_the_spawns_own_script(tmp_path: Path) -> None:
    spawner_ = estimator(tmp_path, f"echo '{LINE}' >&2")
    status, answer = asyncio.run(start_estimate(spawner_, {**FIELDS, "cores": ["2"]}))  # type: ignore[arg-type]
    assert status == 200
    assert answer["state"] == "start"
    assert answer["start"] == datetime(2026, 12, 7, 23, 5, 35).astimezone().isoformat()  # with the hub's zone
    assert (tmp_path / "ran").read_text() == f"{tmp_path}/sbatch --test-only\n"  # nothing of the user's
    script = (tmp_path / "ran.stdin").read_text()
    assert "#SBATCH --cpus-per-task=2\n" in script
    assert "#SBATCH --time=01:00:00\n" in script
    assert "#SBATCH --mem=512M\n" in script


def test_an_estimate_before_a_start_leaves_the_spawner_as_it_was(tmp_path: Path) -> None:
    """batchspawner computes the job's --export names once per spawner, at the first call: an estimate before any
    Start (no server yet, so no JUPYTERHUB_SERVICE_PREFIX) must not be that call, or the next Start's job serves at
    the wrong path (Molecule found it: every kernel request 404)."""
    spawner_ = estimator(tmp_path, f"echo '{LINE}' >&2")
    del spawner_._trait_values["req_keepvars"]  # type: ignore[attr-defined]  # as the role sets it: not at all
    assert not spawner_.trait_has_value("req_keepvars")  # type: ignore[attr-defined]
    status, _answer = asyncio.run(start_estimate(spawner_, FIELDS))  # type: ignore[arg-type]
    assert status == 200
    assert "#SBATCH --export=" in (tmp_path / "ran.stdin").read_text()
    assert not spawner_.trait_has_value("req_keepvars")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cores", "64", "Cores: 64 is above the maximum of 4"),
        ("account", "def-alice; scancel -u bob", "is not a valid account name"),
        ("time", "$(reboot)", "Time (hours)"),
    ],
)
def test_values_the_rules_refuse_are_a_400_and_never_reach_slurm(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    spawner_ = estimator(tmp_path, f"echo '{LINE}' >&2")
    status, answer = asyncio.run(start_estimate(spawner_, {**FIELDS, field: [value]}))  # type: ignore[arg-type]
    assert status == 400
    assert answer["state"] == "invalid"
    assert message in answer["message"]
    assert not (tmp_path / "ran").exists()


def test_an_estimate_slurm_does_not_answer_in_time_is_ended(tmp_path: Path) -> None:
    spawner_ = estimator(tmp_path, f"sleep 30; echo '{LINE}' >&2", estimate_timeout=0.5)
    began = asyncio.get_event_loop_policy().new_event_loop()
    try:
        start = datetime.now()
        status, answer = began.run_until_complete(start_estimate(spawner_, FIELDS))  # type: ignore[arg-type]
    finally:
        began.close()
    assert (datetime.now() - start).total_seconds() < 5
    assert (status, answer["state"]) == (200, "unknown")


def test_a_flood_of_output_is_cut_and_no_estimate(tmp_path: Path) -> None:
    spawner_ = estimator(tmp_path, "head -c 50000000 /dev/zero | tr '\\0' 'x' >&2; echo >&2")
    status, answer = asyncio.run(start_estimate(spawner_, FIELDS))  # type: ignore[arg-type]
    assert (status, answer["state"]) == (200, "unknown")
    assert OUTPUT_LIMIT <= 4096


def test_over_the_users_rate_is_a_429_without_slurm(tmp_path: Path) -> None:
    spawner_ = estimator(tmp_path, f"echo '{LINE}' >&2", estimate_per_minute=2)

    async def ask_five() -> list[int]:
        statuses = []
        for cores in ("1", "2", "3", "4", "1"):
            status, _answer = await start_estimate(spawner_, {**FIELDS, "cores": [cores]})  # type: ignore[arg-type]
            statuses.append(status)
        return statuses

    # Two asked Slurm; the third and fourth are over her rate; the fifth repeats the first: from the cache.
    assert asyncio.run(ask_five()) == [200, 200, 429, 429, 200]


# -- the form ------------------------------------------------------------------------------------------------------
def test_the_form_carries_the_line_hidden_until_the_script_fills_it(tmp_path: Path) -> None:
    spawner_ = spawner(tmp_path, estimate_cmd="/usr/bin/sbatch --test-only")
    page = asyncio.run(spawner_.render_form())
    assert 'id="hpc-estimate"' in page
    assert 'data-url="/hub/hpc/estimate"' in page
    assert " hidden " in page.split('id="hpc-estimate"')[1].split(">")[0] + " "


def test_no_estimate_command_no_line(tmp_path: Path) -> None:
    page = asyncio.run(spawner(tmp_path).render_form())
    assert "hpc-estimate" not in page


def test_the_lines_url_is_escaped() -> None:
    from test_spawner_unit import SHIPPED

    from jupyterhub_hpc.model import Cluster

    page = render(Cluster.from_data(SHIPPED), ["def-alice"], {}, estimate_url='/hub/"><script>x</script>')
    assert "<script>" not in page
