"""What Slurm says of a server's job now (one look, from the shared job board, then the user's own query), and what
a starting server's page shows of it.

The board (one ``squeue`` per interval for all the hub's jobs) answers first. A job it does not list, or lists under a
state that says nothing yet (``SUSPENDED``), is asked about with the user's own query (``batch_query_cmd``, as the
user). Only Slurm saying the job is gone counts as gone: a query without an answer (slurmctld restarting, a
timeout) keeps the job; batchspawner read any failed ``squeue`` as "gone" and dropped servers whose jobs ran on.
A job Slurm says is gone is also forgotten by the hub's ledger: nothing is left to cancel.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Literal

from jupyterhub_hpc.i18n import N_
from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.job_state import JobState
from jupyterhub_hpc.queue_wait import waiting_message
from jupyterhub_hpc.services import CommandNoAnswer, HubServices, SlurmRefused

#: What one look at the job found.
Seen = Literal["running", "pending", "gone", "unknown"]

# The start's progress messages (batchspawner's words), translated as they are sent; a pending job's is
# queue_wait's.
RUNNING_MESSAGE = N_("Cluster job running... waiting to connect")
UNKNOWN_MESSAGE = N_("Unknown status...")


def _found(job: JobState) -> Seen | None:
    if job.running:
        return "running"
    if job.pending:
        return "pending"
    return None


async def look(services: HubServices, job: JobState, user_query: str) -> tuple[Seen, JobState]:
    """What Slurm says of ``job`` and the record with its last word. ``user_query``: the user's own query for this
    job, prefixed to run as the user."""
    if not job.id:
        return "gone", job
    line = await services.board_line(job.id)
    if line is None and services.job_board_cmd:
        services.log.warning("Slurm gave no answer about job %s, keeping it", job.id)
        return "unknown", job
    if line:
        job = job.seen(line)
        found = _found(job)
        if found:
            return found, job
        if job.ended:  # listed under the state it ended in (MinJobAge): gone, Slurm's last word kept
            services.gone(job.id)
            return "gone", job
    return await _ask_as_user(services, job, user_query)


async def _ask_as_user(services: HubServices, job: JobState, user_query: str) -> tuple[Seen, JobState]:
    try:
        text = await services.output(user_query)
    except SlurmRefused as refused:
        text = refused.stderr
    except CommandNoAnswer:
        services.log.warning("Slurm gave no answer about job %s, keeping it", job.id)
        return "unknown", job
    seen = job.seen(text)
    found = _found(seen)
    if found:
        return found, seen
    if text.strip() and not (seen.ended or "Invalid job id specified" in text):
        services.log.warning("Slurm gave no answer about job %s, keeping it: %s", job.id, text.strip()[-300:])
        return "unknown", job
    services.gone(job.id)  # Slurm says it is gone
    return "gone", seen


async def progress(current: Callable[[], JobState]) -> AsyncIterator[dict[str, str]]:
    """A starting server's progress, each second, from its job's record (``current()``), in the language of the page
    that shows it; ends once the job runs (the port and the server's answer are JupyterHub's to show). While the
    job is pending: Slurm's reason and expected start, as the job board last saw them (queue_wait)."""
    while True:
        job = current()
        if job.pending:
            yield {"message": waiting_message(job, datetime.now())}
        elif job.running:
            yield {"message": _(RUNNING_MESSAGE)}
            return
        else:
            yield {"message": _(UNKNOWN_MESSAGE)}
        await asyncio.sleep(1)
