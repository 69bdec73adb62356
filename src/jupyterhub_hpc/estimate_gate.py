"""The bounds of the form's start estimates (estimate.py): per user a number a minute and one at a time, hub-wide a
number at once, and a short cache of each user's answers by request. One per hub (``UserQueries.estimates``).

A hand-written sliding window, not a rate-limiting library: a few lines over a deque per user, and the hub's
environment takes no package for it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from jupyterhub_hpc.model import Request

__all__ = ["EstimateGate"]


@dataclass(frozen=True)
class _Cached:
    at: float
    answer: dict[str, str]


class EstimateGate:
    """The estimates' bounds: per user a number a minute and one at a time, hub-wide a number at once, and a short
    cache of each user's answers by request. State of one hub (``UserQueries.estimates``)."""

    def __init__(
        self,
        per_minute: int,
        concurrency: int,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        hub_per_minute: int = 120,
    ) -> None:
        self.per_minute = per_minute
        self.concurrency = concurrency
        self.cache_seconds = cache_seconds
        # Each estimate is a will-run request that slurmctld answers under its job and node locks: the hub's
        # estimates, all users together, are bounded a minute too, not only at once.
        self.hub_per_minute = hub_per_minute
        self._clock = clock
        self._asked: dict[str, deque[float]] = {}
        self._hub_asked: deque[float] = deque()
        self._running: set[str] = set()
        self._cache: dict[tuple[str, Request], _Cached] = {}

    def cached(self, user: str, request: Request) -> dict[str, str] | None:
        kept = self._cache.get((user, request))
        if kept is None or self._clock() - kept.at > self.cache_seconds:
            return None
        return kept.answer

    def admit(self, user: str) -> str:
        """ "" if the user may ask Slurm now (the caller then calls ``done``), else why not: "user" (her own
        limit) or "busy" (the hub's)."""
        now = self._clock()
        if len(self._asked) > 10_000:  # users who asked nothing for a minute are forgotten
            self._asked = {name: times for name, times in self._asked.items() if times and now - times[-1] < 60.0}
        asked = self._asked.setdefault(user, deque())
        for times in (asked, self._hub_asked):
            while times and now - times[0] >= 60.0:
                times.popleft()
        if user in self._running or len(asked) >= self.per_minute:
            return "user"
        if len(self._running) >= self.concurrency or len(self._hub_asked) >= self.hub_per_minute:
            return "busy"
        asked.append(now)
        self._hub_asked.append(now)
        self._running.add(user)
        return ""

    def done(self, user: str, request: Request, answer: dict[str, str] | None) -> None:
        """The user's turn has ended; ``answer`` (None: none, nothing kept) is reused for the same request."""
        self._running.discard(user)
        if answer is None:
            return
        now = self._clock()
        # Forget what has aged out, so the cache holds at most what a minute of estimates gave.
        for key in [key for key, kept in self._cache.items() if now - kept.at > self.cache_seconds]:
            del self._cache[key]
        self._cache[(user, request)] = _Cached(now, answer)

    def failed(self, user: str) -> None:
        self._running.discard(user)
