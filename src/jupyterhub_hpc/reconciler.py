"""The reconciler: the jobs the hub submitted that no server owns are cancelled, as their users.

A stop while slurmctld does not answer, a start interrupted at the wrong moment, or a hub restart can leave a job no
server owns: it would hold its allocation for its whole walltime. Every job ``sbatch`` answered is in the ledger;
each ``interval`` the reconciler cancels, as its user, each recorded job that no server owns, and forgets it once
Slurm says it is cancelled or gone. A user whose ``sbatch`` got no answer (its job may exist, its id unknown) has
her jobs with the hub's job name searched, and those no server owns cancelled.

What a server owns: the job of each live spawner (``owned_jobs``), the jobs ``sbatch`` answered whose start has not
taken them yet (``in_flight``), and the jobs of the servers the hub's database still counts as running (their
spawners are not loaded yet just after a hub restart). One reconciler per hub, in ``HubServices``.
"""

from __future__ import annotations

import asyncio
import shlex
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from jupyterhub import orm

from jupyterhub_hpc.job_state import JobState
from jupyterhub_hpc.ledger import JOB_ID

if TYPE_CHECKING:
    from jupyterhub_hpc.services import HubServices


class JobOwner(Protocol):
    """A live spawner, as the reconciler sees it."""

    def owned_jobs(self) -> Iterable[str]: ...


class Reconciler:
    """Cancels the recorded jobs no server owns (see the module's doc)."""

    def __init__(self, services: HubServices) -> None:
        self.services = services
        self.in_flight: set[str] = set()  # jobs sbatch answered whose start has not taken them yet
        self._owners: weakref.WeakSet[Any] = weakref.WeakSet()
        self._database: Any = None  # the hub's database session (SQLAlchemy), given by a spawner
        self._task: asyncio.Future[None] | None = None

    def attach(self, owner: JobOwner, database: Any = None) -> None:
        self._owners.add(owner)
        if database is not None:
            self._database = database

    def start(self, interval: float) -> None:
        """Run a round every ``interval`` seconds, once however many ask (no event loop: nothing to start)."""
        if self._task is not None and not self._task.done():
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = asyncio.ensure_future(self._forever(interval))

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    async def _forever(self, interval: float) -> None:
        while True:
            # The first round waits one interval: after a hub restart, the servers' spawners are loaded first.
            await asyncio.sleep(interval)
            try:
                await self.reconcile()
            except Exception:  # the loop must outlive any one round's failure
                self.services.log.exception("Job reconciler round failed")

    def owned(self) -> set[str]:
        """The jobs some server owns: live spawners', starts in flight, and the servers in the hub's database."""
        owned = {job for owner in list(self._owners) for job in owner.owned_jobs() if job}
        return owned | self.in_flight | self._jobs_in_database()

    async def reconcile(self) -> list[str]:
        """Cancel, as its user, every recorded job no server owns; forget the ones Slurm says are ended. Returns
        the ids cancelled."""
        owned = self.owned()
        ledger = self.services.ledger
        cancelled = []
        for job_id, user in sorted(ledger.jobs().items()):
            if job_id not in owned and await self.services.cancel_recorded(job_id, user):
                cancelled.append(job_id)
        for user in ledger.lost():
            cancelled += await self._cancel_lost(user, owned)
        return cancelled

    async def _cancel_lost(self, user: str, owned: set[str]) -> list[str]:
        """Jobs an unanswered sbatch may have submitted: the user's jobs with the hub's job name no server owns."""
        services = self.services
        result = await services.run(services.lost_jobs_cmd.format(username=shlex.quote(user)))
        if result.returncode != 0:
            return []  # no answer yet
        cancelled = []
        for job_id in result.stdout.decode(errors="replace").split():
            if JOB_ID.fullmatch(job_id) and job_id not in owned:
                services.ledger.add(job_id, user)  # cancelled from the ledger, this round or the next
                cancelled += [job_id] if await services.cancel_recorded(job_id, user) else []
        services.ledger.remove_lost(user)
        return cancelled

    def _jobs_in_database(self) -> set[str]:
        """Job ids in the hub's saved spawner states: servers the hub still counts as its own, even those whose
        spawner is not loaded yet (just after a hub restart)."""
        session = self._database if self._database is not None else _hub_database()
        if session is None:
            return set()
        rows = session.query(orm.Spawner.state).all()
        return {JobState.from_state(state).id for (state,) in rows if isinstance(state, dict)} - {""}


def _hub_database() -> Any:
    """The hub's own database session, before any spawner gave one (the hub's first rounds after its start)."""
    from jupyterhub.app import JupyterHub

    return getattr(JupyterHub.instance(), "db", None) if JupyterHub.initialized() else None
