"""When a delivery that failed for now is tried again."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential back-off with jitter: attempt ``n`` waits uniformly in
    ``[ceiling/2, ceiling]`` with ``ceiling = min(cap, base * 2**(n-1))``; a service's own
    ``retry_after`` (429 ``Retry-After``, MAX's ``retry_after``) is honoured as given, up
    to ``max_retry_after``."""

    base: float = 1.0
    cap: float = 300.0
    max_retry_after: float = 3600.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(float(retry_after), self.max_retry_after)
        ceiling = min(self.cap, self.base * (2 ** min(max(0, attempt - 1), 30)))
        return random.uniform(ceiling / 2, ceiling)
