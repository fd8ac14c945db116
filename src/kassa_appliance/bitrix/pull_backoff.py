"""Reconnect back-off of the Push&Pull client (jssdk ``getConnectionAttemptDelay``, §1.8).

``attempt`` counts consecutive failures before this one: 0 → 0.5 s, 1–2 → 15 s, 3–4 → 45 s,
5–9 → 10 min, then 1 h; plus a random 0–20 % on top so a fleet does not reconnect in step.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_STEPS: tuple[tuple[int, float], ...] = ((1, 0.5), (3, 15.0), (5, 45.0), (10, 600.0))


@dataclass(frozen=True)
class BackoffPolicy:
    steps: tuple[tuple[int, float], ...] = DEFAULT_STEPS
    """``(attempt limit, delay)``: the first step whose limit exceeds the attempt applies."""
    ceiling: float = 3600.0
    """Delay once every step is exhausted."""
    jitter: float = 0.2
    """Up to this fraction is added at random."""
    rng: Callable[[], float] = field(default=random.random, compare=False)
    """Returns a float in [0, 1); injectable for tests."""

    def delay(self, attempt: int) -> float:
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        base = next((delay for limit, delay in self.steps if attempt < limit), self.ceiling)
        return base * (1.0 + self.jitter * self.rng())


def random_between(bounds: tuple[float, float], rng: Callable[[], float]) -> float:
    low, high = bounds
    return low + (high - low) * rng()
