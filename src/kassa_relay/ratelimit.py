"""Per-tenant token buckets, per relay instance (N instances allow N times the rate; the
deployment docs size ``--rate`` with that in mind)."""

from __future__ import annotations

import time
from dataclasses import dataclass

MAX_TRACKED = 100_000
"""Buckets kept before the oldest are forgotten (an unknown tenant costs one entry)."""


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, key: str, rate: float | None = None) -> float:
        """0.0 if the request may go ahead, else the seconds until it may."""
        per_second = rate if rate is not None else self.rate
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._buckets.pop(next(iter(self._buckets)))
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * per_second)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / per_second
