"""Whether a running server still answers: its port checked at each poll, over polls.

Slurm notices a node that vanished minutes later (SlurmdTimeout); until then it lists the job as running. A
server's port that refused or did not answer at ``unanswered_polls`` polls in a row, spanning at least that many poll
intervals, is a server gone (a page reload also polls; a blip of the hub's own network is not a dead node).

The node's name is resolved once, when the server starts (or at the first check after a hub restart), and the checks
reach the node at that address: a DNS outage of the hub, or a node's name gone with the node, is never taken for a
server that does not answer, nor hides one. Every step is bounded by ``answer_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass, field


@dataclass
class Liveness:
    """One server's port checks: polls in a row without an answer, and the address its node resolved to."""

    polls: int  # unanswered polls in a row that end a server; 0: never
    poll_interval: float
    timeout: float
    log: logging.Logger | logging.LoggerAdapter[logging.Logger]
    unanswered: int = 0
    first_unanswered: float = 0.0
    address: tuple[str, str] = field(default=("", ""))  # the host name and the address it resolved to

    def reset(self) -> None:
        self.unanswered, self.first_unanswered, self.address = 0, 0.0, ("", "")

    async def resolve(self, host: str, port: int, owner: str) -> bool:
        """Resolve the server's host once; False (and nothing remembered) if it cannot be now."""
        try:
            lookup = asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found = await asyncio.wait_for(lookup, timeout=self.timeout)  # a slow resolver is bounded too
        except (TimeoutError, OSError) as err:
            self.log.warning("Cannot resolve %s for the server of %s: %s", host, owner, err)
            return False
        self.address = (host, str(found[0][4][0]))
        return True

    async def answers(self, host: str, port: int, owner: str) -> bool:
        """False only when the port has refused or not answered at ``polls`` polls in a row spanning at least that
        many poll intervals; a name that does not resolve now counts as neither."""
        if self.polls <= 0 or host in ("", "0.0.0.0", "::"):
            return True
        if self.address[0] != host and not await self.resolve(host, port, owner):
            return True  # cannot resolve it now: says nothing of the server
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.address[1], port), timeout=self.timeout
            )
        except (TimeoutError, OSError) as err:
            return self._missed(host, port, owner, err)
        writer.close()
        self.unanswered = 0
        return True

    def _missed(self, host: str, port: int, owner: str, err: BaseException) -> bool:
        now = time.monotonic()
        if not self.unanswered:
            self.first_unanswered = now
        self.unanswered += 1
        self.log.warning(
            "The server of %s did not answer at %s:%s (%d of %d): %s",
            owner,
            host,
            port,
            self.unanswered,
            self.polls,
            err or type(err).__name__,
        )
        span = (self.polls - 1) * self.poll_interval
        return not (self.unanswered >= self.polls and now - self.first_unanswered >= span)
