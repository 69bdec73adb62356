"""Why a user's server ended under them: the last state Slurm gave of its job, told on the user's next form.

A server's job can end without the user asking: its walltime, an operator's ``scancel``, a node that fails or is
set down. The hub notices at its next poll and shows "Start My Server"; ``JobEnd`` keeps what Slurm last said of
the job (the job board's ``%T %B`` line: state and node) so the form can say what happened and what to do.

Slurm's words only (job id, state, node name), each checked against a pattern and a length: nothing the user's job
prints reaches this, and a line that does not parse keeps only the job id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jupyterhub_hpc.i18n import N_
from jupyterhub_hpc.i18n import gettext as _

_JOB_ID = re.compile(r"[0-9]{1,20}(?:_[0-9]{1,10})?")
_STATE = re.compile(r"[A-Z_]{1,32}")
_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

#: What the user is told, per Slurm state (squeue's %T); any other state is named as Slurm gives it.
REASONS: dict[str, str] = {
    "NODE_FAIL": N_(
        "Your previous server (Slurm job {job_id}) ended: its node {node} failed or was taken out of service. "
        "Start again: Slurm will choose a working node."
    ),
    "BOOT_FAIL": N_(
        "Your previous server (Slurm job {job_id}) ended: its node {node} failed to boot. Start again and Slurm "
        "will choose another node."
    ),
    "TIMEOUT": N_("Your previous server (Slurm job {job_id}) ended: it reached its time limit."),
    "CANCELLED": N_("Your previous server (Slurm job {job_id}) ended: its job was cancelled."),
    "PREEMPTED": N_("Your previous server (Slurm job {job_id}) ended: its job was preempted by another one."),
    "OUT_OF_MEMORY": N_(
        "Your previous server (Slurm job {job_id}) ended: it ran out of memory. Ask for more memory this time."
    ),
}
OTHER = N_("Your previous server (Slurm job {job_id}) ended (Slurm state {state}).")
UNKNOWN = N_("Your previous server (Slurm job {job_id}) ended.")


@dataclass(frozen=True)
class JobEnd:
    """A server's job that ended without its user stopping it: Slurm's id, last state and node ("" if unknown)."""

    job_id: str
    state: str = ""
    node: str = ""

    @classmethod
    def from_status(cls, job_id: str, status: str) -> JobEnd | None:
        """From the job's id and Slurm's last ``%T %B`` line for it; None if the id is not a Slurm job id."""
        if not _JOB_ID.fullmatch(job_id):
            return None
        fields = status.split()
        state = fields[0] if fields and _STATE.fullmatch(fields[0]) else ""
        node = fields[1] if state and len(fields) == 2 and _NODE.fullmatch(fields[1]) else ""
        return cls(job_id, state, node)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> JobEnd | None:
        """From the spawner's saved state (``to_state``), checked again: the database is not trusted more than Slurm."""
        saved = state.get("job_end")
        if not isinstance(saved, Mapping):
            return None
        job_id, status, node = saved.get("job_id"), saved.get("state", ""), saved.get("node", "")
        if not (isinstance(job_id, str) and isinstance(status, str) and isinstance(node, str)):
            return None
        return cls.from_status(job_id, f"{status} {node}".strip())

    def to_state(self) -> dict[str, str]:
        return {"job_id": self.job_id, "state": self.state, "node": self.node}

    def message(self) -> str:
        """What the user is told, in the language of the request."""
        if not self.state:
            return _(UNKNOWN).format(job_id=self.job_id)
        template = REASONS.get(self.state, OTHER)
        if self.state in ("NODE_FAIL", "BOOT_FAIL") and not self.node:
            template = OTHER
        return _(template).format(job_id=self.job_id, state=self.state, node=self.node)
