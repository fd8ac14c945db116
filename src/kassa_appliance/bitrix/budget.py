"""The daemon's REST budget: one client-side token bucket per portal, with priorities.

A cloud portal counts REST requests per portal and source address in a leaky bucket
(2/s drain, ceiling 50; Enterprise 5/s and 250; restdocs ``limits.md``) and answers
503 ``QUERY_LIMIT_EXCEEDED`` beyond it. Every REST request of the link — job intake,
write-backs, heartbeats, the push config, later bots, automation and settings — takes a
token here first, so the daemon stays under the portal's limit by itself. The bucket is
smaller than the portal's (``bitrix.rest-rate`` 1.8/s, ``bitrix.rest-burst`` 40 by
default): the margin covers clock skew and a few requests of other apps from the same
address. Kassas behind one NAT share the portal's bucket, so their rates must add up
to less than 2/s (see docs/configuration.md).

When no token is free, requests wait in priority order (:class:`Priority`: fiscal results
first, heartbeats last; first come, first served within a priority). The backlog — queued
requests per priority, how long they waited, 503 answers seen — is in :meth:`snapshot`,
shown under ``link.rest_budget`` in ``status.json``. A 503 or 429 the portal still sends
(another app on the same address, a restart that forgot the bucket) empties the bucket,
so the link pauses for ``1/rate`` seconds per token before the next request.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

Clock = Callable[[], float]

DEFAULT_RATE = 1.8
"""Requests per second: under the portal's 2/s drain with a 10 % margin."""
DEFAULT_BURST = 40
"""Requests at once: under the portal's ceiling of 50, leaving 10 for other apps."""


class Priority(IntEnum):
    """Who waits least when the budget is short (lower value goes first)."""

    RESULT = 0
    """Writing a fiscal result back (the customer waits for it)."""
    JOB = 1
    """Taking jobs: fetching items, marking them accepted, reconciliation."""
    STATUS = 2
    """State-change events, settings, bots and other interactive traffic."""
    HEARTBEAT = 3
    """The periodic device status: late is fine."""


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    future: asyncio.Future[None] = field(compare=False)
    since: float = field(compare=False)


@dataclass
class _Counters:
    requests: dict[str, int] = field(default_factory=lambda: {p.name.lower(): 0 for p in Priority})
    waited: int = 0
    wait_seconds: float = 0.0
    longest_wait: float = 0.0
    limited_answers: int = 0
    last_limited_at: str = ""


class RestBudget:
    """A token bucket (``rate`` tokens/s, at most ``burst``) with a priority queue."""

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        *,
        clock: Clock = time.monotonic,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        if not rate > 0 or burst < 1:
            raise ValueError("a REST budget needs rate > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._queue: list[_Waiter] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._counters = _Counters()
        self.on_change = on_change

    # -- taking tokens ---------------------------------------------------------------------

    async def acquire(self, priority: Priority = Priority.JOB) -> None:
        """Wait until this request may go out; higher priorities are served first."""
        self._refill()
        name = Priority(priority).name.lower()
        if not self._queue and self._tokens >= 1:
            self._tokens -= 1
            self._counters.requests[name] += 1
            return
        loop = asyncio.get_running_loop()
        waiter = _Waiter(int(priority), next(self._seq), loop.create_future(), self._clock())
        heapq.heappush(self._queue, waiter)
        if len(self._queue) == 1:
            self._changed()  # a backlog starts
        self._schedule()
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self._tokens = min(self.burst, self._tokens + 1)  # granted, never used
                self._schedule()
            else:
                self._drop(waiter)
            raise
        waited = self._clock() - waiter.since
        self._counters.requests[name] += 1
        self._counters.waited += 1
        self._counters.wait_seconds += waited
        self._counters.longest_wait = max(self._counters.longest_wait, waited)

    def limited_answer(self, status: int) -> None:
        """The portal refused a request (503/429) although the budget let it go: empty the
        bucket so the next requests are paced at ``rate`` from now on."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)
        self._counters.limited_answers += 1
        self._counters.last_limited_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._changed()

    # -- reading it ------------------------------------------------------------------------

    def queued(self) -> dict[str, int]:
        counts = {p.name.lower(): 0 for p in Priority}
        for waiter in self._queue:
            counts[Priority(waiter.priority).name.lower()] += 1
        return counts

    def snapshot(self) -> dict[str, Any]:
        """The budget for ``status``: the bucket, the backlog and what it cost."""
        self._refill()
        now = self._clock()
        counters = self._counters
        oldest = min((w.since for w in self._queue), default=None)
        return {
            "rate_per_second": self.rate,
            "burst": self.burst,
            "tokens": round(self._tokens, 2),
            "queued": self.queued(),
            "oldest_queued_seconds": 0.0 if oldest is None else round(now - oldest, 3),
            "requests": dict(counters.requests),
            "waited": counters.waited,
            "wait_seconds_total": round(counters.wait_seconds, 3),
            "longest_wait_seconds": round(counters.longest_wait, 3),
            "limited_answers": counters.limited_answers,
            "last_limited_at": counters.last_limited_at,
        }

    def roomy(self) -> bool:
        """At least half the bucket is there and nobody waits: a request now costs the
        portal nothing it would miss (the write-back uses this to send a lone outcome at
        once instead of after its batching spacing)."""
        self._refill()
        return not self._queue and self._tokens >= self.burst / 2

    # -- machinery -------------------------------------------------------------------------

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def _drop(self, waiter: _Waiter) -> None:
        if waiter in self._queue:
            self._queue.remove(waiter)
            heapq.heapify(self._queue)
            if not self._queue:
                self._changed()

    def _schedule(self) -> None:
        if self._timer is not None or not self._queue:
            return
        delay = max(0.0, (1 - self._tokens) / self.rate)
        self._timer = asyncio.get_running_loop().call_later(delay, self._grant)

    def _grant(self) -> None:
        self._timer = None
        self._refill()
        while self._queue and self._tokens >= 1 - 1e-9:
            waiter = heapq.heappop(self._queue)
            if waiter.future.done():  # cancelled while queued
                continue
            self._tokens -= 1
            waiter.future.set_result(None)
        if self._queue:
            self._schedule()
        else:
            self._changed()  # the backlog is gone

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # showing the budget must never break a request
                pass


def budget_roomy(budget: RestBudget | None) -> bool:
    """No budget (tools, tests) or :meth:`RestBudget.roomy`."""
    return budget is None or budget.roomy()
