"""One server's Slurm job as the hub knows it: one small typed record, the only thing a spawner saves.

``JobState`` holds the job's id ("" when the server has none), Slurm's last state and node for it (squeue's
``%T %B``), when Slurm expects a pending job to start and why it waits (the job board's ``%S %r``, after them), and how
the user's previous server ended (``JobEnd``, told on the next form). It is replaced, never changed in place: each
answer of Slurm makes a new record.

Every part is Slurm's word checked against a pattern and a length, here, once: whatever a saved state or a command's
output holds, a record only ever carries a job id of digits, a state of capitals and a node name. Saved states of
the versions before this record (batchspawner's ``job_id`` and ``job_status``) are read too, so an upgrade keeps
the servers that run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from jupyterhub_hpc.job_end import ENDED_STATES, JobEnd
from jupyterhub_hpc.ledger import JOB_ID

_STATE = re.compile(r"[A-Z_]{1,32}")
_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Slurm's reasons: words, and node lists in its compressed form ("UnavailableNodes:nc[10001-10003,10005]"); a long
# one is cut, not dropped.
_REASON = re.compile(r"[A-Za-z0-9_(),.:=/\[\] -]{1,2000}")
_REASON_SHOWN = 120
#: squeue's %S: a start time (the hub's local time, ISO 8601 without a zone), or what it prints for none.
_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_NO_START = frozenset({"N/A", "Unknown", "None"})


def _checked_reason(reason: str) -> str:
    reason = reason.strip()
    if not _REASON.fullmatch(reason):
        return ""
    return reason if len(reason) <= _REASON_SHOWN else reason[: _REASON_SHOWN - 3].rstrip() + "..."


def _checked_start(start: str) -> str:
    if not _START.fullmatch(start):
        return ""
    try:
        datetime.fromisoformat(start)
    except ValueError:  # the shape of a time, not a time (month 13, hour 25)
        return ""
    return start


#: Slurm's states of a job that has not started yet, and of one that runs (squeue's %T), as batchspawner's
#: SlurmSpawner reads them; any other state a job is listed under (SUSPENDED, ...) says nothing yet.
PENDING_STATES = frozenset({"PENDING", "CONFIGURING"})
RUNNING_STATES = frozenset({"RUNNING", "COMPLETING"})


@dataclass(frozen=True)
class JobState:
    """A server's job: ``id`` "" means no job; ``state`` "" means Slurm has not been asked (or gave no answer)."""

    id: str = ""
    state: str = ""
    node: str = ""
    reason: str = ""
    start: str = ""  # squeue's %S for the job, checked: "" when Slurm has none
    end: JobEnd | None = None

    @classmethod
    def submitted(cls, job_id: str) -> JobState:
        """A job sbatch answered with (its id already checked by the submission)."""
        if not JOB_ID.fullmatch(job_id):
            raise ValueError(f"not a Slurm job id: {job_id[:24]!r}")
        return cls(job_id)

    def seen(self, line: str) -> JobState:
        """This job with Slurm's line for it: ``%T %B`` (the user's query), or the board's ``%T %B %S %r`` (the
        reason last: it may hold spaces). State and node are read as before, whatever follows them (a node only
        from a line of two or four parts); the start and the reason only from a start field of squeue's shape,
        else none."""
        fields = line.split(maxsplit=3)
        state = fields[0] if fields and _STATE.fullmatch(fields[0]) else ""
        node = fields[1] if state and len(fields) in (2, 4) and _NODE.fullmatch(fields[1]) else ""
        extras = len(fields) == 4 and (_START.fullmatch(fields[2]) or fields[2] in _NO_START)
        start = _checked_start(fields[2]) if state and extras else ""
        reason = _checked_reason(fields[3]) if state and extras else ""
        return replace(self, state=state, node=node, start=start, reason=reason)

    def pending_because(self, reason: str) -> JobState:
        return replace(self, reason=_checked_reason(reason))

    @property
    def running(self) -> bool:
        return bool(self.id) and self.state in RUNNING_STATES

    @property
    def pending(self) -> bool:
        return bool(self.id) and self.state in PENDING_STATES

    @property
    def expected_start(self) -> datetime | None:
        """When Slurm expects the pending job to start (the hub's local time), if it said."""
        return datetime.fromisoformat(self.start) if self.pending and self.start else None

    @property
    def ended(self) -> bool:
        """Slurm lists the job under a state it ended in (squeue keeps ended jobs for MinJobAge)."""
        return self.state in ENDED_STATES

    @property
    def line(self) -> str:
        """Slurm's ``%T %B`` line as this record holds it (what JobEnd and the host's pattern read)."""
        return f"{self.state} {self.node}".strip()

    def to_state(self) -> dict[str, Any]:
        """What the spawner saves: only what is set."""
        saved: dict[str, Any] = {}
        if self.id:
            saved["job"] = {"id": self.id, "state": self.state, "node": self.node}
        if self.end is not None:
            saved["job_end"] = self.end.to_state()
        return saved

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> JobState:
        """From a saved state (this record's, or batchspawner's ``job_id``/``job_status`` of earlier versions),
        checked again: the database is not trusted more than Slurm."""
        end = JobEnd.from_state(state)
        saved = state.get("job")
        if isinstance(saved, Mapping):
            job_id, line = saved.get("id"), f"{saved.get('state', '')} {saved.get('node', '')}"
        else:
            job_id, line = state.get("job_id"), state.get("job_status", "")
        if not (isinstance(job_id, str) and JOB_ID.fullmatch(job_id) and isinstance(line, str)):
            return cls(end=end)
        return cls(job_id, end=end).seen(line)
