"""What a pending server's start page says while its job waits: Slurm's reason, in the user's words and language,
and when Slurm expects the job to start.

Both come from the job board's line (squeue's ``%S %r``, checked by ``JobState``), refreshed at each round of the
board: no extra call to Slurm. A reason this module does not know is shown as Slurm's own word; a start time Slurm
has not computed (``N/A``, before the backfill scheduler's pass) or one already past is left out.
"""

from __future__ import annotations

import math
from datetime import datetime

from jupyterhub_hpc.i18n import N_
from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.job_state import JobState

__all__ = ["explain", "waiting_message"]

#: Slurm's pending reasons (squeue's %r, exactly), and what they mean for a user who waits.
_EXACT = {
    "Priority": N_("jobs with a higher priority are ahead of this one"),
    "Resources": N_("the cores, memory or GPUs it asks for are not free yet"),
    "Dependency": N_("it waits for another job to end"),
    "BeginTime": N_("it was asked to start later"),
    "JobHeldUser": N_("it is held (by you)"),
    "JobHeldAdmin": N_("it is held by the cluster's administrators"),
    "PartitionDown": N_("the nodes it needs are out of service"),
    "PartitionInactive": N_("the nodes it needs are out of service"),
    "Reservation": N_("it waits for its reservation to start"),
    "Licenses": N_("it waits for a software licence"),
}

#: Reasons by their prefix: the limits of an account or QOS (Slurm has dozens, AssocGrpCpuLimit, QOSMaxGRESPerUser,
#: ...), and the nodes not available (24.11: "ReqNodeNotAvail, UnavailableNodes:...", "ReqNodeNotAvail, Reserved for
#: maintenance").
_PREFIX = (
    ("ReqNodeNotAvail, Reserved for maintenance", N_("the nodes it can use are reserved for a maintenance")),
    ("ReqNodeNotAvail", N_("the nodes it can use are not available (down, drained or reserved)")),
    ("Nodes_required_for_job_are_DOWN", N_("the nodes it can use are not available (down, drained or reserved)")),
    ("Nodes required for job are DOWN", N_("the nodes it can use are not available (down, drained or reserved)")),
    ("Assoc", N_("your account's limit of running jobs or resources is reached")),
    ("MaxCpuPer", N_("your account's limit of running jobs or resources is reached")),
    *(
        (prefix, N_("a limit of its quality of service (QOS) is reached"))
        for prefix in ("QOSGrp", "QOSMax", "QOSMin", "QOSJobLimit", "QOSResourceLimit", "QOSTimeLimit")
    ),
)


def explain(reason: str) -> str:
    """``reason`` (Slurm's word, already checked by JobState) for a user, in the request's language; "" for none."""
    if reason in ("", "None"):
        return ""
    message = _EXACT.get(reason)
    if message is None:
        message = next((text for prefix, text in _PREFIX if reason.startswith(prefix)), None)
    return _(message) if message else ""


def waiting_message(job: JobState, now: datetime) -> str:
    """The start page's line for a pending job: the plain message until Slurm gives a reason, then why it waits
    and, once Slurm has computed it, in about how many minutes it should start. ``now``: the hub's local time, as
    squeue prints the start."""
    if job.reason in ("", "None"):
        text = _("Pending in queue...")
    else:
        meaning = explain(job.reason)
        if meaning:
            text = _("Pending in queue: {meaning} (Slurm: {reason}).").format(meaning=meaning, reason=job.reason)
        else:
            text = _("Pending in queue (Slurm: {reason}).").format(reason=job.reason)
    start = job.expected_start
    if start is not None:
        # Both as aware times of the hub's zone: a change of daylight saving time between them counts.
        minutes = math.ceil((start.astimezone() - now.astimezone()).total_seconds() / 60)
        if minutes >= 1:
            text += " " + _("Slurm expects it to start in about {minutes} min.").format(minutes=minutes)
    return text
