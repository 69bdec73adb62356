"""The one-interactive-job rule before Start: squeue's answer read field by field, the form's warning, the cancel
page's decision and its handler (with a fake squeue and scancel), in English and French. End to end on the real
Slurm: Molecule's test_interactive_rule.py."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hubpages import CONTEXT, environment
from jupyterhub.handlers.base import BaseHandler
from test_spawner_unit import CLUSTER, fake, spawner
from traitlets.config import Config

from jupyterhub_hpc import form, i18n, interactive
from jupyterhub_hpc.cluster_rules import validate_cluster
from jupyterhub_hpc.handlers import handlers
from jupyterhub_hpc.interactive import OtherJob, RateLimit, cancel_answer, parse, parse_line
from jupyterhub_hpc.interactive_handler import PATH, CancelInteractiveHandler
from jupyterhub_hpc.services import HubServices, SlurmRefused

MODEL = validate_cluster(CLUSTER)

# As Slurm 24.11.5 prints them (-O with "|" suffixes: the line ends with "|").
ALLOC = "1|0|RUNNING|2026-12-07T23:05:35|9:56|alice|probe-alloc|"
SESSION = "7|1|PENDING|N/A|1:00:00|alice|jupyterhub|"
BATCH = "8|1|RUNNING|2026-12-07T22:00:00|2-03:04:05|alice|my-analysis|"


def job(job_id: str = "1", kind: Any = "allocation") -> OtherJob:
    return OtherJob(job_id, kind, "RUNNING", "2026-12-07T23:05:35", "9:56")


# -- reading squeue ------------------------------------------------------------------------------------------------
def test_real_lines() -> None:
    assert parse_line(ALLOC, "alice", "jupyterhub") == OtherJob(
        "1", "allocation", "RUNNING", "2026-12-07T23:05:35", "9:56"
    )
    assert parse_line(SESSION, "alice", "jupyterhub") == OtherJob("7", "session", "PENDING", "", "1:00:00")
    assert parse_line(BATCH, "alice", "jupyterhub") is None  # her own sbatch job: no boost to take
    assert parse(f"{ALLOC}\n{BATCH}\n{SESSION}\n", "alice", "jupyterhub") == [
        parse_line(ALLOC, "alice", "jupyterhub"),
        parse_line(SESSION, "alice", "jupyterhub"),
    ]
    assert parse(f"{ALLOC}\n{SESSION}\n", "alice", "jupyterhub", exclude=["7"]) == [
        parse_line(ALLOC, "alice", "jupyterhub")
    ]


def test_a_job_name_cannot_shift_the_fields_nor_start_a_line_of_its_own() -> None:
    """The name is hers and last: a "|" in it is part of it (her allocation is still named), and only "\n" ends a
    line (str.splitlines would also end one at \u2028 or \x1c, and a name could then forge a job of her own)."""
    (job,) = interactive.parse("1|0|RUNNING|2026-12-07T23:05:35|9:56|alice|x|y|\n", "alice", "jupyterhub")
    assert (job.id, job.kind) == ("1", "allocation")
    forged = "1|0|RUNNING|N/A|9:56|alice|x\u2028 99999|0|RUNNING|N/A|9:56|alice|y|\n"
    assert [j.id for j in interactive.parse(forged, "alice", "jupyterhub")] == ["1"]


@pytest.mark.parametrize(
    "line",
    [
        "1|0|RUNNING|2026-12-07T23:05:35|9:56|bob|probe-alloc|",  # another user's job in the answer
        "1|0|RUNNING|2026-12-07T23:05:35|9:56|alice2|x|",
        "1|0|RUNNING|2026-12-07T23:05:35|9:56|alice|x",  # no trailing separator: not this format
        "1;rm|0|RUNNING|2026-12-07T23:05:35|9:56|alice|x|",
        "<script>|0|RUNNING|2026-12-07T23:05:35|9:56|alice|x|",
        "1|0|<script>alert(1)</script>|2026-12-07T23:05:35|9:56|alice|x|",
        "1|0|COMPLETED|2026-12-07T23:05:35|0:00|alice|x|",  # ended
        "1|0|CANCELLED|2026-12-07T23:05:35|0:00|alice|x|",
        "1|0|RUNNING|2026-13-07T23:05:35|9:56|alice|x|",  # the shape of a time, not a time
        "1|0|RUNNING|<b>|9:56|alice|x|",
        "1|0|RUNNING|2026-12-07T23:05:35|99999999:00|alice|x|",
        "1|0|RUNNING|2026-12-07T23:05:35|soon|alice|x|",
        "1|0|RUNNING|2026-12-07T23:05:35|9:5|alice|x|",
        "1|2|RUNNING|2026-12-07T23:05:35|9:56|alice|x|",  # no such batch flag
        "|0|RUNNING|2026-12-07T23:05:35|9:56|alice|x|",
        "1" * 21 + "|0|RUNNING|2026-12-07T23:05:35|9:56|alice|x|",
        "1|0|RUNNING|2026-12-07T23:05:35|9:56|alice|" + "x" * 600 + "|",
        "",
    ],
)
def test_hostile_or_foreign_lines_are_skipped(line: str) -> None:
    assert parse_line(line, "alice", "jupyterhub") is None
    assert parse(line, "alice", "jupyterhub") == []


@pytest.mark.parametrize(
    ("time_left", "ok"),
    [("9:56", True), ("1:00:00", True), ("2-03:04:05", True), ("UNLIMITED", True), ("NOT_SET", True)],
)
def test_slurms_time_left_shapes(time_left: str, ok: bool) -> None:
    line = f"1|0|RUNNING|N/A|{time_left}|alice|x|"
    assert (parse_line(line, "alice", "jupyterhub") is not None) is ok


def test_a_million_lines_are_read_up_to_the_bound() -> None:
    lines = "\n".join(f"{n}|0|RUNNING|N/A|9:56|alice|x|" for n in range(1, 10**6 + 1))
    jobs = parse(lines, "alice", "jupyterhub")
    assert len(jobs) == interactive.MAX_LINES and jobs[-1].id == str(interactive.MAX_LINES)


def test_no_user_name_no_job() -> None:
    assert parse_line("1|0|RUNNING|N/A|9:56||x|", "", "jupyterhub") is None


def queries_config(**settings: str) -> Config:
    """The hub's configuration of its form's queries (c.UserQueries.*)."""
    return Config({"UserQueries": settings})


# -- the services' query -------------------------------------------------------------------------------------------
def test_the_query_runs_as_the_hub_with_the_users_name_quoted_and_is_cached(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    squeue = fake(tmp_path, "squeue", f'echo "$@" >> {calls}; echo "{ALLOC}"; echo "{SESSION}"')
    services = HubServices(
        config=queries_config(interactive_jobs_cmd=squeue + " --user={username}"), job_ledger_file=""
    )

    async def go() -> tuple[list[OtherJob], list[OtherJob], list[OtherJob]]:
        first = await services.queries.other_interactive_jobs("alice")
        cached = await services.queries.other_interactive_jobs("alice", exclude=["7"])
        fresh = await services.queries.other_interactive_jobs("alice", fresh=True)
        return first, cached, fresh

    first, cached, fresh = asyncio.run(go())
    assert [j.id for j in first] == ["1", "7"] and [j.id for j in cached] == ["1"] and fresh == first
    assert calls.read_text().splitlines() == ["--user=alice", "--user=alice"]  # the cached one asked nothing
    default = HubServices(job_ledger_file="").queries.interactive_jobs_cmd
    assert default == "/usr/bin/squeue --noheader --user={username} -O '" + interactive.FORMAT + "'"
    assert "sudo" not in default


def test_users_opening_the_form_at_once_ask_slurm_once(tmp_path: Path) -> None:
    """A user who opens the form 30 times at once: one squeue, the others share its answer (the form's queries
    run in slots of their own, never a spawn's)."""
    calls = tmp_path / "calls"
    squeue = fake(tmp_path, "squeue", f'echo x >> {calls}; sleep 0.3; echo "{ALLOC}"')
    services = HubServices(config=queries_config(interactive_jobs_cmd=squeue), job_ledger_file="")

    async def thirty() -> list[list[OtherJob]]:
        return list(await asyncio.gather(*(services.queries.other_interactive_jobs("alice") for _n in range(30))))

    answers = asyncio.run(thirty())
    assert all([j.id for j in jobs] == ["1"] for jobs in answers)
    assert calls.read_text().split() == ["x"]


def test_a_failing_query_is_no_job_and_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    squeue = fake(tmp_path, "squeue", "echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1")
    services = HubServices(config=queries_config(interactive_jobs_cmd=squeue), job_ledger_file="")
    services.queries.log = logging.getLogger("test-interactive")
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(services.queries.other_interactive_jobs("alice")) == []
    assert "Unable to contact slurm controller" in caplog.text


# -- the form ------------------------------------------------------------------------------------------------------
def test_the_form_names_each_job_and_links_its_cancel_page() -> None:
    html = form.render(MODEL, ["def-alice"], {}, others=[job("1"), job("7", "session")], hub_url="/hub/")
    assert '<div class="alert alert-warning hpc-interactive" role="status">' in html
    assert "only one interactive job per user" in html.lower()
    assert "wait with the regular batch jobs" in html
    assert (
        "Slurm job 1: an interactive allocation (salloc or srun), RUNNING, start 2026-12-07 23:05:35, time left 9:56."
        in html
    )
    assert 'href="/hub/hpc/interactive/cancel?job_id=1">Cancel job 1...</a>' in html
    assert 'href="/hub/hpc/interactive/cancel?job_id=7">' in html
    assert "<form" not in html  # the form is inside the spawn form: links only
    assert "hpc-interactive" not in form.render(MODEL, ["def-alice"], {})


def test_another_of_her_servers_is_stopped_from_home_not_cancelled_here() -> None:
    html = form.render(MODEL, ["def-alice"], {}, others=[job("7", "session")], server_jobs={"7"})
    assert "another session of this hub" in html
    assert 'href="/hub/home">Stop it from the home page</a>' in html and "cancel?job_id=7" not in html


def test_the_form_escapes_what_it_shows() -> None:
    hostile = OtherJob("1", "allocation", "<b>", "<script>", '"><img src=x>')
    html = form.render(MODEL, ["def-alice"], {}, others=[hostile], hub_url='/hub/"><x>')
    assert "<script>" not in html and "<img" not in html and "<b>" not in html and "<x>" not in html


def test_the_form_in_french() -> None:
    with i18n.use("fr"):
        html = form.render(MODEL, ["def-alice"], {}, others=[job("1")])
    assert "Une seule tâche interactive" in html and "Annuler la tâche 1" in html
    assert "allocation interactive" in html


def test_the_spawner_leaves_out_its_own_job_and_marks_other_servers(tmp_path: Path) -> None:
    s = spawner(tmp_path)
    name = s.user.name  # the account running the tests: the lines are rewritten for it
    squeue = fake(
        tmp_path,
        "squeue",
        "; ".join(f'echo "{line.replace("alice", name)}"' for line in (ALLOC, SESSION))
        + f'; echo "9|1|RUNNING|N/A|5:00|{name}|jupyterhub|"',
    )
    s.services.queries.interactive_jobs_cmd = squeue
    other = SimpleNamespace(owned_jobs=lambda: ("7",))
    s.user.spawners = {"": s, "gpu": other}
    s.owned_jobs = lambda: ("9",)  # type: ignore[method-assign]
    html = asyncio.run(s.render_form())
    assert "Slurm job 1:" in html and "cancel?job_id=1" in html
    assert "Slurm job 7:" in html and "cancel?job_id=7" not in html  # her server "gpu": stopped from home
    assert "Slurm job 9" not in html  # the server being spawned


# -- the cancel page's decision ------------------------------------------------------------------------------------
def decide(job_id: str, confirmed: bool, listed: list[OtherJob], allowed: bool = True) -> tuple[Any, list[str]]:
    cancelled: list[str] = []

    async def list_jobs() -> list[OtherJob]:
        return listed

    async def cancel(job: str) -> None:
        cancelled.append(job)

    return asyncio.run(cancel_answer("alice", job_id, confirmed, list_jobs, cancel, allowed)), cancelled


def test_only_her_own_listed_job_is_cancelled_and_only_once_confirmed() -> None:
    answer, cancelled = decide("1", False, [job("1")])
    assert (answer.status, answer.outcome, cancelled) == (200, "confirm", [])
    answer, cancelled = decide("1", True, [job("1")])
    assert (answer.status, answer.outcome, cancelled) == (200, "cancelled", ["1"])


@pytest.mark.parametrize(
    ("job_id", "status", "outcome"),
    [
        ("2", 404, "not_yours"),  # not in her list: another user's, ended, a batch job, one of her servers
        ("1 2", 400, "malformed"),
        ("1;scancel -u bob", 400, "malformed"),
        ("-1", 400, "malformed"),
        ("", 400, "malformed"),
        ("1" * 21, 400, "malformed"),
        ("\u0661", 400, "malformed"),  # non-ASCII digits
    ],
)
def test_refused_job_ids(job_id: str, status: int, outcome: str) -> None:
    answer, cancelled = decide(job_id, True, [job("1")])
    assert (answer.status, answer.outcome, cancelled) == (status, outcome, [])


def test_rate_bound() -> None:
    answer, cancelled = decide("1", True, [job("1")], allowed=False)
    assert (answer.status, answer.outcome, cancelled) == (429, "too_many", [])
    now = [0.0]
    limit = RateLimit(2, 60.0, clock=lambda: now[0])
    assert limit.allow("alice") and limit.allow("alice") and not limit.allow("alice")
    assert limit.allow("bob")
    now[0] = 61.0
    assert limit.allow("alice")


def test_slurm_refusing_is_told_not_a_500() -> None:
    async def list_jobs() -> list[OtherJob]:
        return [job("1")]

    async def cancel(job_id: str) -> None:
        raise SlurmRefused("scancel: error: Kill job error on job id 1: Access/permission denied")

    answer = asyncio.run(cancel_answer("alice", "1", True, list_jobs, cancel))
    assert (answer.status, answer.outcome) == (502, "failed")
    assert "Access/permission denied" in answer.problem


# -- the handler ---------------------------------------------------------------------------------------------------
class FakeHandler:
    """The handler's own methods on a fake request: its user, its log, a rate bound of its own."""

    def __init__(self, name: str, spawners: dict[str, Any] | None = None) -> None:
        self.current_user = SimpleNamespace(name=name, spawners=spawners or {})
        self.log = logging.getLogger("test-interactive")
        self.limit = RateLimit(100, 60.0)
        self.server_jobs = lambda user: CancelInteractiveHandler.server_jobs(self, user)  # type: ignore[arg-type]


def hub_with(tmp_path: Path, lines: list[str]) -> Path:
    """The hub's services with a squeue that prints ``lines`` and a scancel (run as the user: exec_prefix names
    her) that records what it was asked; the record's path."""
    record = tmp_path / "scancel.calls"
    squeue = fake(tmp_path, "squeue", "; ".join(f'echo "{line}"' for line in lines))
    scancel = fake(tmp_path, "scancel", f'echo "$@" >> {record}')
    HubServices.reset()
    HubServices.instance(
        config=queries_config(interactive_jobs_cmd=squeue),
        exec_prefix="/usr/bin/env HPC_AS={username}",
        cancel_cmd=f"{scancel} {{job_id}}",
        job_ledger_file="",
    )
    return record


def test_the_handler_cancels_her_listed_job_as_her(tmp_path: Path) -> None:
    record = hub_with(tmp_path, [ALLOC, "5|0|RUNNING|N/A|9:56|bob|bobs-alloc|"])
    handler = FakeHandler("alice")
    answer = asyncio.run(CancelInteractiveHandler.answer(handler, "1", confirmed=False))  # type: ignore[arg-type]
    assert answer.outcome == "confirm" and not record.exists()  # a GET only asks
    answer = asyncio.run(CancelInteractiveHandler.answer(handler, "1", confirmed=True))  # type: ignore[arg-type]
    assert answer.outcome == "cancelled" and record.read_text() == "1\n"
    # bob's job is in squeue's answer (a hub that sees all jobs), but not in alice's list: never cancelled.
    answer = asyncio.run(CancelInteractiveHandler.answer(handler, "5", confirmed=True))  # type: ignore[arg-type]
    assert (answer.status, answer.outcome) == (404, "not_yours") and record.read_text() == "1\n"


def test_the_handler_never_cancels_her_servers_job(tmp_path: Path) -> None:
    record = hub_with(tmp_path, [SESSION])
    handler = FakeHandler("alice", {"gpu": SimpleNamespace(owned_jobs=lambda: ("7",))})
    answer = asyncio.run(CancelInteractiveHandler.answer(handler, "7", confirmed=True))  # type: ignore[arg-type]
    assert (answer.status, answer.outcome) == (404, "not_yours") and not record.exists()


def test_the_handler_asks_slurm_every_time(tmp_path: Path) -> None:
    """A list cached for the form (a job that has ended since) is never what the page acts on."""
    record = hub_with(tmp_path, [])
    services = HubServices.instance()
    services.queries._interactive["alice"] = (1e18, [job("1")])  # a cached list naming job 1, fresh forever
    answer = asyncio.run(CancelInteractiveHandler.answer(FakeHandler("alice"), "1", True))  # type: ignore[arg-type]
    assert answer.outcome == "not_yours" and not record.exists()


def test_the_page_is_registered_authenticated_and_xsrf_checked() -> None:
    assert (PATH, CancelInteractiveHandler) in handlers()
    assert PATH == "/hpc/interactive/cancel"
    assert issubclass(CancelInteractiveHandler, BaseHandler)
    # JupyterHub's prepare checks the XSRF token of every POST: the handler keeps it as it is.
    assert "POST" not in CancelInteractiveHandler._xsrf_safe_methods
    for name in ("prepare", "check_xsrf_cookie", "xsrf_token", "_xsrf_safe_methods"):
        assert name not in vars(CancelInteractiveHandler)
    # @web.authenticated: an anonymous request is redirected to the login page before the method runs.
    assert CancelInteractiveHandler.get.__wrapped__ and CancelInteractiveHandler.post.__wrapped__  # type: ignore[attr-defined]


def test_a_post_without_xsrf_is_refused_by_jupyterhubs_check() -> None:
    """The very check JupyterHub's prepare runs for this handler's POST (jupyterhub._xsrf_utils)."""
    from jupyterhub._xsrf_utils import check_xsrf_cookie
    from tornado import web

    request = SimpleNamespace(method="POST", headers={"Sec-Fetch-Mode": "navigate"})
    handler = SimpleNamespace(request=request, get_argument=lambda name, default=None: default, xsrf_token=b"T")
    with pytest.raises(web.HTTPError) as err:
        check_xsrf_cookie(handler)
    assert err.value.status_code == 403
    handler.get_argument = lambda name, default=None: "wrong"
    with pytest.raises(web.HTTPError):
        check_xsrf_cookie(handler)


# -- the page ------------------------------------------------------------------------------------------------------
def page(language: str = "en", **ns: Any) -> str:
    async def go() -> str:
        i18n.set_language(language)
        return await environment().get_template("hpc_interactive_cancel.html").render_async(**(CONTEXT | ns))

    return " ".join(asyncio.run(go()).split())


def test_the_confirmation_page_posts_with_the_xsrf_token() -> None:
    html = page(hpc_outcome="confirm", hpc_job=vars(job("1")), hpc_job_kind="an interactive allocation")
    assert "Cancel Slurm job 1?" in html
    assert '<form method="post" action="/hub/hpc/interactive/cancel">' in html
    assert '<input type="hidden" name="_xsrf" value="XSRF-TOKEN" />' in html
    assert '<input type="hidden" name="job_id" value="1" />' in html


@pytest.mark.parametrize(
    ("outcome", "words"),
    [
        ("cancelled", "Slurm job 1 was cancelled."),
        ("failed", "Slurm could not cancel job 1."),
        ("not_yours", "Job 1 is not one of your other interactive jobs"),
        ("too_many", "Too many requests"),
        ("malformed", "This is not a Slurm job id."),
    ],
)
def test_the_outcome_pages(outcome: str, words: str) -> None:
    html = page(hpc_outcome=outcome, hpc_job=vars(job("1")), hpc_job_kind="x", hpc_job_id="1", hpc_problem="")
    assert words in html and "<form" not in html and 'href="/hub/spawn"' in html


def test_the_page_in_french_and_escaped() -> None:
    html = page("fr", hpc_outcome="confirm", hpc_job=vars(job("1")), hpc_job_kind="<script>x</script>")
    assert "Annuler la tâche Slurm 1" in html and "<script>x" not in html
    html = page("fr", hpc_outcome="failed", hpc_job=vars(job("1")), hpc_job_kind="", hpc_problem="<b>no</b>")
    assert "<b>no" not in html and "&lt;b&gt;no&lt;/b&gt;" in html
