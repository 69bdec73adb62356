"""The job board: one ``squeue`` per interval answers every spawner of the hub.

A starting spawn looks at its job every ``startup_poll_interval``; asked one by one, Slurm would get one RPC per
pending spawn each time. Here the questions asked since the last round are answered together by a single query
(``job_board_cmd``, run as the hub's own user), which takes one of the spawners' command slots: the load on
slurmctld is one RPC per interval, however many spawns wait.
"""

from __future__ import annotations

import asyncio
import time

from jupyterhub_hpc.commands import clean_env, run_bounded


class JobBoard:
    """One ``squeue`` per interval answers every spawner of the hub: the status of all the jobs asked about
    since the last round, in a single call. Load on slurmctld: one RPC per interval, however many spawns wait."""

    def __init__(
        self, cmd: str, interval: float, timeout: float = 30.0, limit: int = 1 << 20, concurrency: int = 8
    ) -> None:
        self.cmd = cmd
        self.interval = interval
        self.timeout = timeout
        self.limit = limit
        self.concurrency = concurrency  # the spawners' command slots: the board's squeue takes one of them
        self._wanted: set[str] = set()
        self._next: asyncio.Future[tuple[dict[str, str], str]] | None = None
        self._last_start = -1e9
        self._tasks: set[asyncio.Future[None]] = set()  # a running task must be referenced
        self._lock: asyncio.Lock | None = None
        self.rounds = 0

    async def status(self, job_id: str) -> str | None:
        """The job's '%T %B %S %r' line (job_board_cmd's format, after the id); "" if Slurm does not list it;
        None if squeue failed (no answer)."""
        self._wanted.add(job_id)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            task = asyncio.ensure_future(self._round(self._next))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        found, error = await asyncio.shield(self._next)
        return None if error else found.get(job_id, "")

    async def _round(self, future: asyncio.Future[tuple[dict[str, str], str]]) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one squeue at a time, even when each waits for its time limit
            await self._ask(future)

    async def _ask(self, future: asyncio.Future[tuple[dict[str, str], str]]) -> None:
        await asyncio.sleep(max(0.0, self._last_start + self.interval - time.monotonic()))
        self._next = None  # later questions wait for the next round
        ids, self._wanted = sorted(self._wanted, key=_job_order), set()
        self._last_start = time.monotonic()
        self.rounds += 1
        try:
            result = await run_bounded(
                self.cmd.format(job_ids=",".join(ids)),
                env=clean_env(),
                timeout=self.timeout,
                limit=self.limit,
                concurrency=self.concurrency,
            )
        except OSError as exc:
            future.set_result(({}, str(exc)))
            return
        text = result.stdout.decode(errors="replace")
        if result.returncode != 0:
            problem = result.stderr.decode(errors="replace").strip()
            # One id that Slurm no longer knows: an answer ("not listed"), not a failure.
            future.set_result(({}, "" if "Invalid job id specified" in problem else problem or "squeue failed"))
            return
        found = {}
        for line in text.splitlines():
            job_id, _sep, rest = line.strip().partition(" ")
            if job_id:
                found[job_id] = rest.strip()
        future.set_result((found, ""))


def _job_order(job_id: str) -> tuple[int, str]:
    return (int(job_id), "") if job_id.isdigit() else (0, job_id)
