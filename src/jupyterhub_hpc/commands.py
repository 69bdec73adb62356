"""Commands the hub runs for its users (sbatch, squeue, scancel, sacctmgr, the job-output tail), bounded.

Each command gets a time limit (then SIGTERM, then SIGKILL to what the hub may signal), keeps at most ``limit``
bytes of each output stream (the rest is read and dropped, so the command is never blocked on a full pipe), runs
with an environment the caller names (never the hub's own: it holds the proxy's token), and waits for one of
``concurrency`` slots: a frozen slurmctld cannot make the hub pile up processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass

# What a Slurm client needs from the hub's environment; nothing else reaches a command.
ENV_KEEP = ("PATH", "LANG", "LC_ALL", "SLURM_CONF", "TZ")


def clean_env(keep: tuple[str, ...] = ENV_KEEP) -> dict[str, str]:
    """The few variables of the hub's environment a Slurm command needs."""
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    return env


@dataclass(frozen=True)
class Result:
    returncode: int | None  # None: killed at the time limit
    stdout: bytes
    stderr: bytes
    truncated: bool  # an output stream was longer than the limit

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


class CommandTimeout(RuntimeError):
    """The command did not end within its time limit (it was killed)."""


_slots: dict[tuple[int, int], asyncio.Semaphore] = {}


def _slot(concurrency: int) -> asyncio.Semaphore:
    # One semaphore per event loop and size (tests run several loops).
    key = (id(asyncio.get_running_loop()), concurrency)
    if key not in _slots:
        _slots[key] = asyncio.Semaphore(concurrency)
    return _slots[key]


async def _read(stream: asyncio.StreamReader | None, limit: int) -> tuple[bytes, bool]:
    if stream is None:
        return b"", False
    kept = bytearray()
    cut = False
    while chunk := await stream.read(65536):
        room = limit - len(kept)
        if room > 0:
            kept += chunk[:room]
        cut = cut or len(chunk) > room
    return bytes(kept), cut


def _signal(proc: asyncio.subprocess.Process, sig: int) -> None:
    # The command's own process group (start_new_session): sudo relays a TERM to the command it runs as the
    # user; the hub cannot signal another account's process directly, so each send is best effort.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        proc.send_signal(sig)


async def run_bounded(
    cmd: str,
    *,
    env: dict[str, str],
    timeout: float,
    limit: int,
    concurrency: int = 8,
    stdin: bytes | None = None,
) -> Result:
    """Run ``cmd`` through /bin/sh with the limits above; never raises for the command's own failure."""
    async with _slot(concurrency):
        proc = await asyncio.create_subprocess_shell(
            cmd,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )

        async def talk() -> tuple[tuple[bytes, bool], tuple[bytes, bool], int]:
            if stdin is not None and proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proc.stdin.write(stdin)
                    await proc.stdin.drain()
                proc.stdin.close()
            return await asyncio.gather(_read(proc.stdout, limit), _read(proc.stderr, limit), proc.wait())

        task = asyncio.ensure_future(talk())
        try:
            (out, cut_out), (err, cut_err), code = await asyncio.wait_for(asyncio.shield(task), timeout)
            return Result(code, out, err, cut_out or cut_err)
        except TimeoutError:
            _signal(proc, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), 2.0)
            if not task.done():
                _signal(proc, signal.SIGKILL)
                task.cancel()
            return Result(None, b"", f"no answer within {timeout:g} s".encode(), False)
        except asyncio.CancelledError:
            _signal(proc, signal.SIGTERM)
            task.cancel()
            raise
