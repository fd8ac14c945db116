"""Rung doorbells waiting for the next read: bounded, in the order they rang, coalesced.

The push receive loop only calls :meth:`Doorbells.ring` (no await, no REST), so a
doorbell never holds up the next frame; the link's doorbell loop takes every bell rung
so far in one go (:meth:`Doorbells.take`) and reads them in one request. When more than
``capacity`` distinct jobs wait, the oldest are forgotten and :attr:`Doorbells.overflowed`
says so: the read of new items finds those jobs anyway, and the link reconciles.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

DEFAULT_CAPACITY = 1000


class Doorbells:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._rung: OrderedDict[str, bool] = OrderedDict()
        self.ready = asyncio.Event()
        self.overflowed = False
        self.rung_total = 0

    def __len__(self) -> int:
        return len(self._rung)

    def ring(self, job_id: str, *, known: bool = False) -> None:
        """``known``: the job was in the journal when its bell rang (so the bell may mean
        a change, e.g. a cancel, and its item is read again)."""
        self.rung_total += 1
        self._rung[job_id] = self._rung.get(job_id, False) or known
        while len(self._rung) > self._capacity:
            self._rung.popitem(last=False)
            self.overflowed = True
        self.ready.set()

    def take(self) -> tuple[dict[str, bool], bool]:
        """Every job rung since the last take (oldest first, each with its ``known``
        flag), and whether some were lost."""
        rung, overflowed = dict(self._rung), self.overflowed
        self._rung.clear()
        self.overflowed = False
        self.ready.clear()
        return rung, overflowed
