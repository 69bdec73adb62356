"""Why a user's server ended under them: the last state Slurm gave of its job, told on the user's next form.

A server's job can end without the user asking: its walltime, an operator's ``scancel``, a node that fails or is
set down. The hub notices at its next poll and shows "Start My Server"; ``JobEnd`` keeps what Slurm last said of
the job (the job board's ``%T %B`` line: state and node) so the form can say what happened and what to do.

Slurm's words only (job id, state, node name), each checked against a pattern and a length: nothing the user's job
prints reaches this, and a line that does not parse keeps only the job id. A job that ended ``COMPLETED`` is a
server that exited by itself (JupyterLab's File > Shut Down): not news, nothing is kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jupyterhub_hpc.i18n import N_
from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.ledger import JOB_ID

#: The states squeue and sacct give a job that has ended (squeue's %T, sacct's State without "by <uid>").
ENDED_STATES = frozenset(
    {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT"}
)
#: Not Slurm's: the hub's own word for a running job whose server stopped answering (the hub cancelled it).
NO_ANSWER = "NO_ANSWER"
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
    NO_ANSWER: N_(
        "Your previous server (Slurm job {job_id}) stopped answering on node {node} (the node may have failed), so "
        "the hub ended its job. Start again: Slurm will choose a working node."
    ),
    "OUT_OF_MEMORY": N_(
        "Your previous server (Slurm job {job_id}) ended: it ran out of memory. Ask for more memory this time."
    ),
}
NO_ANSWER_NO_NODE = N_(
    "Your previous server (Slurm job {job_id}) stopped answering (its node may have failed), so the hub ended its "
    "job. Start again: Slurm will choose a working node."
)
OTHER = N_("Your previous server (Slurm job {job_id}) ended (Slurm state {state}).")
UNKNOWN = N_("Your previous server (Slurm job {job_id}) ended.")


@dataclass(frozen=True)
class JobEnd:
    """A server's job that ended without its user stopping it: Slurm's id, last state and node ("" if unknown)."""

    job_id: str
    state: str = ""
    node: str = ""

    @classmethod
    def checked(cls, job_id: str, state: str, node: str) -> JobEnd | None:
        """Each part checked: None if the id is not a Slurm job id or the job completed by itself; a state or node
        of another shape is dropped (a node only with its state)."""
        if not JOB_ID.fullmatch(job_id) or state == "COMPLETED":
            return None
        state = state if _STATE.fullmatch(state) else ""
        return cls(job_id, state, node if state and _NODE.fullmatch(node) else "")

    @classmethod
    def from_status(cls, job_id: str, status: str) -> JobEnd | None:
        """From the job's id and Slurm's last ``%T %B`` line for it (squeue's)."""
        fields = status.split()
        return cls.checked(job_id, fields[0] if fields else "", fields[1] if len(fields) == 2 else "")

    @classmethod
    def no_answer(cls, job_id: str, status: str) -> JobEnd | None:
        """A running job (Slurm's ``%T %B`` line) whose server stopped answering: the hub ends it."""
        fields = status.split()
        return cls.checked(job_id, NO_ANSWER, fields[1] if len(fields) == 2 else "")

    @classmethod
    def from_accounting(cls, job_id: str, line: str) -> JobEnd | None:
        """From sacct's ``State|NodeList`` line for the job (``CANCELLED by 1001|node7``)."""
        state, _bar, node = line.partition("|")
        return cls.checked(job_id, (state.split() or [""])[0], node.strip())

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> JobEnd | None:
        """From the spawner's saved state (``to_state``), checked again: the database is not trusted more than Slurm."""
        saved = state.get("job_end")
        if not isinstance(saved, Mapping):
            return None
        job_id, status, node = saved.get("job_id"), saved.get("state", ""), saved.get("node", "")
        if not (isinstance(job_id, str) and isinstance(status, str) and isinstance(node, str)):
            return None
        return cls.checked(job_id, status, node)

    def to_state(self) -> dict[str, str]:
        return {"job_id": self.job_id, "state": self.state, "node": self.node}

    def message(self) -> str:
        """What the user is told, in the language of the request."""
        if not self.state:
            return _(UNKNOWN).format(job_id=self.job_id)
        template = REASONS.get(self.state, OTHER)
        if self.state in ("NODE_FAIL", "BOOT_FAIL") and not self.node:
            template = OTHER
        if self.state == NO_ANSWER and not self.node:
            template = NO_ANSWER_NO_NODE
        return _(template).format(job_id=self.job_id, state=self.state, node=self.node)


def has_ended(status: str) -> bool:
    """Whether Slurm's line for a job (squeue's ``%T ...``) names a state the job ended in."""
    fields = status.split()
    return bool(fields) and fields[0] in ENDED_STATES
