"""The end of a job's output, shown to its user when the job dies before its server starts.

The output file is the user's (the job writes it, in her home): it is read as the user (``job_tail.py`` through the
sudo rule: a regular file only, never through a link), at most a few KiB, and what comes back is the user's own text:
control characters are removed, and the hub's log gets it as one escaped line (``JobOutputError``), so no line of a
user's output can pass for one of the hub's own in its journal.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from dataclasses import dataclass

from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.ledger import JOB_ID
from jupyterhub_hpc.services import HubServices

# Characters a job's output may not bring into a message shown to the user (controls other than newline and tab).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class JobOutputError(RuntimeError):
    """A failed spawn with the end of the job's output, which the user wrote: the user is shown all of it (JupyterHub
    shows ``jupyterhub_message``), the hub's log gets it as one escaped line (``str()``: repr, at most 300
    characters)."""

    def __init__(self, message: str, output: str) -> None:
        self.jupyterhub_message = f"{message}\n{output}"
        shown = repr(output[-300:])
        super().__init__(f"{message} [{len(output)} characters of the job's output, the last ones: {shown}]")


@dataclass(frozen=True)
class OutputTail:
    """How a job's output is found and cut: the spawner's settings (job_output, output_tail_*)."""

    pattern: str  # the job's --output, relative to the home: %j, %u, %%
    cmd: str  # {max_bytes} {job_output} {job_id}; "" for none
    max_bytes: int
    max_lines: int

    def name(self, job_id: str, user: str) -> str:
        fields = {"j": job_id, "u": user, "%": "%"}
        return re.sub(r"%([ju%])", lambda match: fields[match.group(1)], self.pattern)

    async def read(self, services: HubServices, user: str, job_id: str) -> str:
        """At most max_lines lines of the last max_bytes bytes of the job's output, read as the user; control
        characters removed; says when it was cut. "" when there is nothing to show."""
        if not (job_id and self.cmd):
            return ""
        if not JOB_ID.fullmatch(job_id):
            services.log.warning("Not reading the output of job %r: not a job id", job_id)
            return ""
        # The tail finds the file itself from the pattern, as the user (job_tail.py); the name is for the message.
        tail_cmd = self.cmd.format(max_bytes=int(self.max_bytes), job_output=shlex.quote(self.pattern), job_id=job_id)
        await asyncio.sleep(1)  # slurmd writes the last lines as the job ends
        result = await services.run(services.as_user(user, tail_cmd), limit=self.max_bytes + 32)
        if result.returncode != 0:
            problem = result.stderr.decode(errors="replace").strip()[-300:]
            services.log.warning("Cannot read the output of job %s: %s", job_id, problem)
            return ""
        size_line, _newline, data = result.stdout.partition(b"\n")
        size = int(size_line) if size_line.isdigit() else len(data)
        return self._cut(data, size, self.name(job_id, user))

    def _cut(self, data: bytes, size: int, name: str) -> str:
        text = _CONTROL.sub("", data[: self.max_bytes].decode(errors="replace"))
        lines = text.splitlines()
        if size > len(data) and len(lines) > 1:
            lines = lines[1:]  # the first line read is a part of a line (kept if it is the only one)
        cut = size > len(data) or len(lines) > self.max_lines
        lines = lines[-self.max_lines :] if self.max_lines > 0 else []
        tail = "\n".join(lines).strip()
        if cut:
            cut_note = _("[cut: the end of {size} bytes; the whole output is ~/{name}]").format(size=size, name=name)
            tail = f"{cut_note}\n{tail}"
        return tail

    async def failure(self, services: HubServices, user: str, job_id: str) -> RuntimeError:
        """The error a start fails with when its job ended before the server started."""
        tail = await self.read(services, user, job_id)
        if tail:
            return JobOutputError(
                _("Job {job_id} ended before the server started. End of its output:").format(job_id=job_id), tail
            )
        return RuntimeError(_("Job {job_id} ended before the server started.").format(job_id=job_id))
