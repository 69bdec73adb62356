"""Attacks by a hub user on what the hub does for her, tried against the real spawner classes (Slurm faked by
shell scripts). The end-to-end replays against a real hub and Slurm are in molecule/default/tests/."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_spawner_unit import fake, recording_scancel, spawner
from tornado import web

from jupyterhub_hpc import port_api
from jupyterhub_hpc.commands import run_bounded
from jupyterhub_hpc.job_output import JobOutputError
from jupyterhub_hpc.job_state import JobState
from jupyterhub_hpc.services import CommandNoAnswer
from jupyterhub_hpc.spawner import HPCSlurmSpawner

ROOT = Path(__file__).resolve().parents[1]
TAIL = ROOT / "src" / "jupyterhub_hpc" / "job_tail.py"
PAYLOAD = "/usr/bin/touch /tmp/owned; /usr/bin/sudo -E -u {username}"


# -- the port callback -------------------------------------------------------------------------------------------
def post(spawner: HPCSlurmSpawner, body: bytes, token: str | None = None) -> Any:
    """POST the body to the handler registered at /api/batchspawner, as the server's own token would."""
    (handler_class,) = port_api.installed_handlers()
    handler = object.__new__(handler_class)
    user = SimpleNamespace(name=spawner.user.name, spawners={"": spawner})
    handler._jupyterhub_user = user
    handler.request = SimpleNamespace(body=body, method="POST", uri="/hub/api/batchspawner")
    handler.application = SimpleNamespace(settings={})
    handler.get_auth_token = lambda: spawner.api_token if token is None else token
    replies: list[Any] = []
    handler.set_status = lambda code, reason=None: replies.append(code)
    handler.finish = lambda chunk=None: replies.append(chunk)
    handler.set_header = lambda *a: None
    handler_class.post(handler)
    return replies


def starting(tmp_path: Path) -> HPCSlurmSpawner:
    s = spawner(tmp_path)
    s.api_token = "the-servers-own-token"
    s._spawn_pending = True  # the hub is waiting for this server: the one time a port report is expected
    s.port = 0
    return s


def snapshot(s: HPCSlurmSpawner) -> tuple[dict[str, Any], dict[str, Any]]:
    return dict(s._trait_values), {k: v for k, v in vars(s).items() if k != "_trait_values"}


def test_only_the_projects_handler_answers_the_port_callback() -> None:
    assert port_api.installed_handlers() == [port_api.PortReportHandler]


def test_no_trait_or_attribute_of_the_spawner_can_be_set_through_the_port_callback(tmp_path: Path) -> None:
    s = starting(tmp_path)
    names = sorted((set(dir(s)) | set(s.trait_names())) - {"port"})
    assert {"exec_prefix", "batch_submit_cmd", "batch_cancel_cmd", "batch_script", "cmd", "req_memory"} <= set(names)
    before = snapshot(s)
    settable = []
    for name in names:
        for value in (PAYLOAD, 4242, ["/bin/sh", "-c", "id"], {"a": 1}, None, True):
            for body in ({name: value}, {name: value, "port": 5000}):
                try:
                    post(s, json.dumps(body).encode())
                except web.HTTPError as err:
                    assert err.status_code == 400
                else:
                    settable.append(name)
                if snapshot(s) != before:
                    settable.append(name)
                    s = starting(tmp_path)
                    before = snapshot(s)
    assert settable == []
    assert s.port == 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"port": 0}',
        b'{"port": 65536}',
        b'{"port": -1}',
        b'{"port": true}',
        b'{"port": 8000.0}',
        b'{"port": "8000"}',
        b'{"port": 8000, "port": 8001}',
        b'{"port": 8000, "ip": "10.0.0.1"}',
        b"[8000]",
        b"8000",
        b"",
        b"not json",
        b'{"port": ' + b"9" * 400 + b"}",
        b'{"port": 8000}' + b" " * 100,
        b"\xff\xfe",
    ],
)
def test_a_malformed_port_report_is_refused(tmp_path: Path, body: bytes) -> None:
    s = starting(tmp_path)
    with pytest.raises(web.HTTPError) as err:
        post(s, body)
    assert err.value.status_code == 400
    assert s.port == 0


def test_the_port_is_taken_once_from_the_servers_own_token_while_it_starts(tmp_path: Path) -> None:
    s = starting(tmp_path)
    with pytest.raises(web.HTTPError) as err:  # another token of the user (or anyone's): not the server's
        post(s, b'{"port": 8000}', token="some-other-token")
    assert err.value.status_code == 403 and s.port == 0
    assert post(s, b'{"port": 8000}') == [201, json.dumps({"message": "port recorded"})]
    assert s.port == 8000
    with pytest.raises(web.HTTPError):  # a second report (the server is reachable: no redirecting it)
        post(s, b'{"port": 9000}')
    assert s.port == 8000
    s._spawn_pending = False
    s.port = 0
    with pytest.raises(web.HTTPError):  # not starting
        post(s, b'{"port": 9000}')
    assert s.port == 0


# -- bounded work on the user's behalf ------------------------------------------------------------------------
# job_tail.py finds the job's output in the running user's home, from the password database: here tmp_path stands
# for that home (the user is the account running the tests; everything else is the real script, isolated).
AS_HOME = """import pwd, runpy, sys
home, tail = sys.argv[1], sys.argv[2]
real = pwd.getpwuid
pwd.getpwuid = lambda uid: pwd.struct_passwd((*real(uid)[:5], home, real(uid)[6]))
sys.argv = sys.argv[2:]
runpy.run_path(tail, run_name="__main__")
"""


async def output_tail(s: HPCSlurmSpawner, job_id: str) -> str:
    """What the user is shown of the job's output (the spawner's tail, through the hub's commands)."""
    return await s.output_tail.read(s.services, s.user.name, job_id)


def tail_spawner(tmp_path: Path, **config: Any) -> HPCSlurmSpawner:
    as_home = tmp_path / "as_home.py"
    as_home.write_text(AS_HOME)
    return spawner(
        tmp_path,
        output_tail_cmd=f"{sys.executable} -I -S {as_home} {tmp_path} {TAIL} {{max_bytes}} {{job_output}} {{job_id}}",
        command_timeout=5,
        **config,
    )


def test_a_huge_job_output_is_cut_to_a_few_kib(tmp_path: Path) -> None:
    (tmp_path / ".jupyterhub-slurm-7.log").write_text("x" * 5_000_000 + "\nlast line\n")
    tail = asyncio.run(output_tail(tail_spawner(tmp_path), "7"))
    assert len(tail) < 5000
    assert tail.startswith("[cut: the end of 5000011 bytes; the whole output is ~/.jupyterhub-slurm-7.log]")
    assert tail.endswith("last line")


def test_one_huge_line_is_shown_cut_not_dropped(tmp_path: Path) -> None:
    (tmp_path / ".jupyterhub-slurm-7.log").write_text("x" * 5_000_000)
    tail = asyncio.run(output_tail(tail_spawner(tmp_path), "7"))
    notice, _sep, rest = tail.partition("\n")
    assert notice == "[cut: the end of 5000000 bytes; the whole output is ~/.jupyterhub-slurm-7.log]"
    assert rest == "x" * 4096


def test_job_output_lines_are_limited_and_control_characters_removed(tmp_path: Path) -> None:
    lines = [f"line {i}" for i in range(100)] + ["\x1b[31mred\x1b[0m \x07bell"]
    (tmp_path / ".jupyterhub-slurm-7.log").write_text("\n".join(lines))
    tail = asyncio.run(output_tail(tail_spawner(tmp_path), "7"))
    assert tail.splitlines()[-1] == "[31mred[0m bell"
    assert tail.splitlines()[1] == "line 71" and len(tail.splitlines()) == 31  # the cut notice, then 30 lines


@pytest.mark.parametrize("kind", ["fifo", "symlink to a device", "symlink to a file"])
def test_the_job_output_tail_never_follows_a_link_nor_reads_a_fifo(tmp_path: Path, kind: str) -> None:
    path = tmp_path / ".jupyterhub-slurm-7.log"
    if kind == "fifo":
        os.mkfifo(path)  # a read would block for ever
    elif kind == "symlink to a device":
        path.symlink_to("/dev/zero")  # a read would never end
    else:
        (tmp_path / "secret").write_text("not the job's output")
        path.symlink_to(tmp_path / "secret")
    began = time.monotonic()
    assert asyncio.run(output_tail(tail_spawner(tmp_path), "7")) == ""
    assert time.monotonic() - began < 3  # 1 s of waiting for slurmd's last lines, then one open that fails


def test_the_tail_is_given_the_sites_pattern_and_the_job_id_never_a_path(tmp_path: Path) -> None:
    """The sudo rule names every argument of the tail but the job id (digits): the spawner passes exactly those."""
    record = fake(tmp_path, "tail", f'printf "%s\\n" "$@" > {tmp_path}/args; echo 2; printf ok')
    s = spawner(tmp_path, output_tail_cmd=f"{record} {{max_bytes}} {{job_output}} {{job_id}}", command_timeout=5)
    assert asyncio.run(output_tail(s, "4242")) == "ok"
    assert (tmp_path / "args").read_text().splitlines() == ["4096", ".jupyterhub-slurm-%j.log", "4242"]
    (tmp_path / "args").unlink()
    for job_id in ("4242 --all", "42/../x", "\u0664\u0662"):  # never passed on: not a job id
        assert asyncio.run(output_tail(s, job_id)) == ""
    assert not (tmp_path / "args").exists()


@pytest.mark.parametrize("pattern", ["../.jupyterhub-slurm-%j.log", "logs/../../bob/%j.log", "%x-%j.log", "out-%j%"])
def test_the_job_output_tail_refuses_a_pattern_outside_the_home_or_with_other_fields(
    tmp_path: Path, pattern: str
) -> None:
    (tmp_path / ".jupyterhub-slurm-7.log").write_text("the job's output\n")
    assert asyncio.run(output_tail(tail_spawner(tmp_path, job_output=pattern), "7")) == ""


def test_the_job_output_tail_fills_the_user_and_percent_fields(tmp_path: Path) -> None:
    s = tail_spawner(tmp_path, job_output="out-%u-%%-%j.log")
    (tmp_path / f"out-{s.user.name}-%-7.log").write_text("the job's output\n")
    assert asyncio.run(output_tail(s, "7")) == "the job's output"


def test_a_command_that_never_ends_is_ended_at_its_time_limit(tmp_path: Path) -> None:
    s = spawner(tmp_path, command_timeout=0.5)
    began = time.monotonic()
    with pytest.raises(CommandNoAnswer):
        asyncio.run(s.services.output("sleep 60"))
    assert time.monotonic() - began < 4


def test_a_command_that_floods_its_output_is_kept_to_the_limit() -> None:
    result = asyncio.run(run_bounded("head -c 50000000 /dev/zero", env={}, timeout=30, limit=1000))
    assert result.returncode == 0 and len(result.stdout) == 1000 and result.truncated


def test_a_frozen_slurm_never_runs_more_than_the_slots_at_once(tmp_path: Path) -> None:
    running = tmp_path / "running"
    slow = fake(tmp_path, "squeue", f"echo x >>{running}; sleep 0.3; echo done")

    async def many() -> None:
        await asyncio.gather(*(run_bounded(slow, env={}, timeout=10, limit=100, concurrency=3) for _i in range(9)))

    began = time.monotonic()
    asyncio.run(many())
    assert len(running.read_text().split()) == 9
    assert time.monotonic() - began >= 0.85  # three rounds of three, not nine at once


def test_the_hubs_secrets_never_reach_a_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIGPROXY_AUTH_TOKEN", "proxy-secret")
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "crypt-secret")
    env_file = tmp_path / "env"
    s = spawner(tmp_path, batch_query_cmd=fake(tmp_path, "squeue", f"env >{env_file}; echo 'RUNNING n1'"))
    s.job = JobState("7")
    asyncio.run(s.look())
    seen = env_file.read_text()
    assert "PATH=" in seen
    assert "proxy-secret" not in seen and "crypt-secret" not in seen


# -- no orphans -----------------------------------------------------------------------------------------------
def test_a_job_no_server_owns_is_cancelled_once_slurm_answers(tmp_path: Path) -> None:
    cancelled, answer = tmp_path / "cancelled", tmp_path / "answer"
    answer.write_text("down")
    scancel = fake(
        tmp_path,
        "scancel",
        f'if [ "$(cat {answer})" = down ]; then echo "scancel: error: Unable to contact slurm controller" >&2; '
        f"exit 1; fi; echo $1 >>{cancelled}",
    )
    scancel += " {job_id}"
    s = spawner(tmp_path, batch_submit_cmd=fake(tmp_path, "sbatch", "cat >/dev/null; echo 7"), cancel_cmd=scancel)
    # Another user's server on the same hub (the same services).
    other = spawner(tmp_path, batch_submit_cmd=fake(tmp_path, "sbatch-8", "cat >/dev/null; echo 8"), cancel_cmd=scancel)
    assert other.services is s.services

    async def scenario() -> list[list[str]]:
        for each in (s, other):
            await each.apply_options({"account": "def-alice"})
            await each.submit_batch_script()
        s.clear_state()  # a stop while Slurm did not answer: JupyterHub clears the state, the job id is lost
        rounds = [await s.services.reconcile()]  # Slurm down: kept for the next round
        answer.write_text("up")
        rounds.append(await s.services.reconcile())
        rounds.append(await s.services.reconcile())
        return rounds

    assert asyncio.run(scenario()) == [[], ["7"], []]
    assert cancelled.read_text().split() == ["7"]  # job 8 still belongs to a server: left alone
    assert json.loads((tmp_path / "jobs.json").read_text())["jobs"].keys() == {"8"}


def test_a_stopped_server_owns_no_job_any_more(tmp_path: Path) -> None:
    """A server that started, then whose stop could not cancel its job (Slurm down): the reconciler cancels it."""
    cancelled = tmp_path / "cancelled"
    s = spawner(
        tmp_path,
        port_poll_interval=0,
        batch_submit_cmd=fake(tmp_path, "sbatch", "cat >/dev/null; echo 7"),
        job_board_cmd=fake(tmp_path, "squeue-all", "echo '7 RUNNING node1'") + " {job_ids}",
        job_board_interval=0.1,
        cancel_cmd=recording_scancel(tmp_path, cancelled),
    )

    async def scenario() -> list[str]:
        await s.apply_options({"account": "def-alice"})
        starting = asyncio.ensure_future(s.start())
        await asyncio.sleep(0.5)
        s.port = 8888  # the server reports its port
        await starting
        s.clear_state()  # the hub's stop failed to scancel, then cleared the state
        return await s.services.reconcile()

    assert asyncio.run(scenario()) == ["7"]


def test_the_ledger_records_only_a_job_id(tmp_path: Path) -> None:
    s = spawner(tmp_path, batch_submit_cmd=fake(tmp_path, "sbatch", "cat >/dev/null; echo '7;cluster'"))

    async def submit() -> None:
        await s.apply_options({"account": "def-alice"})
        await s.submit_batch_script()

    asyncio.run(submit())
    assert json.loads((tmp_path / "jobs.json").read_text())["jobs"].keys() == {"7"}
    with pytest.raises(ValueError):
        s.services.ledger.add("7; rm -rf ~", "alice")
    with pytest.raises(ValueError):
        s.services.ledger.add("8", "alice; id")


def test_a_job_an_unanswered_sbatch_submitted_is_found_and_cancelled(tmp_path: Path) -> None:
    """slurmctld frozen: sbatch is ended at its time limit, but Slurm creates the job once it thaws."""
    cancelled = tmp_path / "cancelled"
    s = spawner(
        tmp_path,
        command_timeout=0.5,
        batch_submit_cmd=fake(tmp_path, "sbatch", "cat >/dev/null; sleep 30; echo 9"),
        cancel_cmd=recording_scancel(tmp_path, cancelled),
        lost_jobs_cmd=fake(tmp_path, "squeue-name", "echo 9") + " {username}",
    )

    async def scenario() -> list[str]:
        await s.apply_options({"account": "def-alice"})
        with pytest.raises(RuntimeError, match=r"Slurm did not answer within 0\.5 s: no server was started"):
            await s.submit_batch_script()
        return await s.services.reconcile()

    assert asyncio.run(scenario()) == ["9"]
    assert cancelled.read_text().split() == ["9"]
    assert json.loads((tmp_path / "jobs.json").read_text()) == {"jobs": {}, "lost": {}}


# -- requests the rules did not foresee ------------------------------------------------------------------------
def test_an_unexpected_error_in_the_rules_is_a_400(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyterhub_hpc import request_rules

    def broken(*_: Any) -> Any:
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(request_rules, "validate_request", broken)
    with pytest.raises(web.HTTPError) as err:
        asyncio.run(spawner(tmp_path).apply_options({"cores": 10**400}))  # the REST API's path
    assert err.value.status_code == 400
    with pytest.raises(ValueError, match="Invalid Server Options"):
        asyncio.run(spawner(tmp_path).options_from_form({"cores": ["1e999"]}))


def test_a_job_output_cannot_write_lines_into_the_hubs_log(tmp_path: Path) -> None:
    """The user sees her job's output; the hub's log (JupyterHub logs the spawn's error as str()) gets it as one
    escaped line, so a forged 'Failed login ... from <address>' cannot feed the site's log watchers."""
    forged = "[W 2026-11-22 12:00:00.000 JupyterHub pam:1] Failed login for bob from 203.0.113.7"
    (tmp_path / ".jupyterhub-slurm-7.log").write_text(f"starting\n{forged}\n")
    with pytest.raises(JobOutputError) as err:
        s = tail_spawner(tmp_path)
        raise asyncio.run(s.output_tail.failure(s.services, s.user.name, "7"))
    assert "\n" not in str(err.value) and "\r" not in str(err.value)
    assert repr(f"starting\n{forged}") in str(err.value)  # escaped, so the ops still read it
    assert err.value.jupyterhub_message.splitlines() == [
        "Job 7 ended before the server started. End of its output:",
        "starting",
        forged,
    ]
