"""The jobs the hub submitted and has not yet seen end, kept on disk so that none is forgotten.

A stop while slurmctld does not answer, a start interrupted at the wrong moment, or a hub restart can leave a job
that no spawner owns any more: it would hold its allocation for its whole walltime. Every job id that ``sbatch``
returns is written here (with its user) before anything else happens; the reconciler (``HPCSlurmSpawner``'s
class-level loop) cancels, as its user, each recorded job that no live spawner owns, once Slurm answers, and
forgets it when Slurm says it is cancelled or gone. Only ids ``sbatch`` returned are ever recorded: nothing a
user sends can put a job here.

An ``sbatch`` that got no answer in time (slurmctld frozen) may still have submitted its job, whose id the hub
never learns: the user is recorded as a *lost submission*, and the reconciler cancels that user's jobs with the
hub's job name that no server owns, then forgets the user once Slurm has answered.

A user is recorded only under a name of the site's rule (``username_pattern``, the site's
``jupyterhub_username_pattern``, checked by ``jupyterhub_hpc.names.username_ok`` as the login checks it): the
reconciler runs commands as that user, and a saved ledger's entries of any other name are not loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from pathlib import Path

from jupyterhub_hpc.names import DEFAULT_USERNAME_PATTERN, check_username_pattern, username_ok

#: A Slurm job id as sbatch --parsable returns the hub's (no arrays, no cluster name): the one rule of the package.
JOB_ID = re.compile(r"[0-9]{1,20}")


class JobLedger:
    """job id -> (user, time recorded); written atomically (0600) on every change.

    ``username_pattern``: the site's user-name pattern, the one the login checks (a pattern
    ``names.check_username_pattern`` refuses raises its ``UsernamePatternError``, a ``ValueError``)."""

    def __init__(self, path: str, *, username_pattern: str = DEFAULT_USERNAME_PATTERN) -> None:
        self.path = Path(path) if path else None
        self._user = re.compile(check_username_pattern(username_pattern, "username_pattern"))
        self._jobs: dict[str, tuple[str, float]] = {}
        self._lost: dict[str, float] = {}
        if self.path is not None and self.path.exists():
            with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
                saved = json.loads(self.path.read_text())
                for job_id, (user, when) in saved.get("jobs", {}).items():
                    if JOB_ID.fullmatch(str(job_id)) and self._user_ok(user):
                        self._jobs[str(job_id)] = (str(user), float(when))
                for user, when in saved.get("lost", {}).items():
                    if self._user_ok(user):
                        self._lost[str(user)] = float(when)

    def add(self, job_id: str, user: str) -> None:
        if not (JOB_ID.fullmatch(job_id) and self._user_ok(user)):
            raise ValueError(f"not a job id and user name: {job_id[:24]!r} {user[:40]!r}")
        self._jobs[job_id] = (user, time.time())
        self._save()

    def _user_ok(self, user: object) -> bool:
        return username_ok(user, self._user)

    def remove(self, job_id: str) -> None:
        if self._jobs.pop(job_id, None) is not None:
            self._save()

    def add_lost(self, user: str) -> None:
        if not self._user_ok(user):
            raise ValueError(f"not a user name: {user[:40]!r}")
        self._lost[user] = time.time()
        self._save()

    def remove_lost(self, user: str) -> None:
        if self._lost.pop(user, None) is not None:
            self._save()

    def lost(self) -> list[str]:
        """Users whose sbatch got no answer, not yet checked."""
        return sorted(self._lost)

    def jobs(self) -> dict[str, str]:
        """job id -> user."""
        return {job_id: user for job_id, (user, _when) in self._jobs.items()}

    def age(self, job_id: str) -> float:
        return time.time() - self._jobs[job_id][1] if job_id in self._jobs else 0.0

    def _save(self) -> None:
        if self.path is None:
            return
        jobs = {k: list(v) for k, v in sorted(self._jobs.items())}
        data = json.dumps({"jobs": jobs, "lost": dict(sorted(self._lost.items()))}, indent=0)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".ledger-")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(data)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
