"""The portal's REST limits, as a cloud Bitrix24 enforces them (restdocs ``limits.md``).

* **Request rate**: a leaky bucket per portal and source address. Each HTTP request to
  ``/rest/…`` raises a counter by one; the counter drains by ``rate`` per second; a
  request that would lift it above ``burst`` is refused with HTTP 503
  ``QUERY_LIMIT_EXCEEDED`` (and is not counted). ``batch`` is one HTTP request, so it
  counts once however many commands it carries. Every client behind one address (all
  kassas behind an office NAT) shares one bucket. The OAuth server and the push server
  are other hosts and are not counted.
* **Operating time**: the execution time of each method is summed per application (or
  webhook) in ten one-minute baskets; a basket leaves the sum ten minutes after its first
  call. Before a call the sum is checked: above ``operating_limit`` (480 s) the method is
  refused with HTTP 429 ``OPERATION_TIME_LIMIT`` until a basket leaves. The outer
  ``batch`` is not accounted; its commands are, each against its own method's sum.

A handler here takes microseconds, so :attr:`LimitProfile.method_costs` adds simulated
seconds per call of a method, which lets a test reach the operating block in a few calls;
``operating_window`` can shrink the ten minutes for the same reason.

Profiles: ``standard`` (2/s, burst 50: every tariff but Enterprise), ``enterprise``
(5/s, burst 250) and ``test`` (the same burst, drained fast) — the emulator's default
under the test suite, see :data:`DEFAULT_PROFILE_ENV`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

Clock = Callable[[], float]

QUERY_LIMIT_STATUS = 503
QUERY_LIMIT_BODY: dict[str, str] = {
    "error": "QUERY_LIMIT_EXCEEDED",
    "error_description": "Too many requests",
}
"""Bitrix24's answer over the rate (restdocs ``_includes/system-errors.md``)."""
OPERATION_LIMIT_STATUS = 429
OPERATION_LIMIT_CODE = "OPERATION_TIME_LIMIT"
OPERATION_LIMIT_TEXT = "Method is blocked due to operation time limit."
"""Bitrix24's answer for a blocked method (restdocs ``limits.md``; the text as the portal
sends it, quoted in bitrix24/b24phpsdk's tests of its API-level error handler)."""

PRODUCER_ADDRESS = "127.0.0.2"
"""The Bitrix24 side of a test or the demo (the app's server, a browser) calls the portal
from another address than the kassa does; on loopback the producer binds this one
(``RestClient(local_address=…)``) so it does not share the kassa's bucket."""

BASKETS = 10
"""The operating-time window is kept in this many baskets (one minute each by default)."""

DEFAULT_PROFILE_ENV = "KASSA_EMULATOR_LIMITS"
"""Names the profile an :class:`~kassa_appliance.testbeds.bitrix24.app.Emulator` uses when
none is given (``standard`` when unset). ``tests/conftest.py`` sets ``test``."""


@dataclass(frozen=True)
class LimitProfile:
    name: str
    rate: float
    """Counter drain per second (``Y`` in the docs)."""
    burst: int
    """The counter's ceiling (``X``): this many requests pass at once from an empty bucket."""
    operating_limit: float = 480.0
    """Seconds of summed execution time per method and application in the window."""
    operating_window: float = 600.0
    method_costs: Mapping[str, float] = field(default_factory=dict)
    """Simulated execution seconds added per call of a method (``entity.item.get`` …)."""

    def __post_init__(self) -> None:
        if not self.rate > 0 or self.burst < 1:
            raise ValueError(f"limit profile {self.name!r}: rate must be > 0 and burst >= 1")
        if not self.operating_limit > 0 or not self.operating_window > 0:
            raise ValueError(f"limit profile {self.name!r}: operating limit and window > 0")

    def with_changes(self, changes: Mapping[str, Any]) -> LimitProfile:
        """This profile with ``rate``/``burst``/``operating_limit``/``operating_window``/
        ``method_costs`` replaced (the emulator's ``POST /_emulator/limits``)."""
        allowed = {"rate", "burst", "operating_limit", "operating_window", "method_costs"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown limit keys {sorted(unknown)}; expected {sorted(allowed)}")
        values: dict[str, Any] = {}
        for key in ("rate", "operating_limit", "operating_window"):
            if key in changes:
                values[key] = float(changes[key])
        if "burst" in changes:
            values["burst"] = int(changes["burst"])
        if "method_costs" in changes:
            costs = changes["method_costs"]
            if not isinstance(costs, dict):
                raise ValueError("method_costs must map method names to seconds")
            values["method_costs"] = {str(m).lower(): float(s) for m, s in costs.items()}
        return replace(self, **values)


STANDARD = LimitProfile("standard", rate=2.0, burst=50)
ENTERPRISE = LimitProfile("enterprise", rate=5.0, burst=250)
TEST = LimitProfile("test", rate=500.0, burst=50)
"""The real burst, drained 250 times faster: a test's REST traffic passes as on a quiet
portal, and a burst of more than 50 requests at once is still refused."""
PROFILES: Mapping[str, LimitProfile] = {p.name: p for p in (STANDARD, ENTERPRISE, TEST)}


def profile_named(name: str) -> LimitProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"limit profile {name!r} unknown; expected one of {', '.join(PROFILES)}"
        ) from None


def default_profile() -> LimitProfile:
    """The profile named by ``$KASSA_EMULATOR_LIMITS``, else ``standard``."""
    return profile_named(os.environ.get(DEFAULT_PROFILE_ENV) or STANDARD.name)


class LeakyBucket:
    """One request counter: +1 per admitted request, draining continuously by ``rate``/s."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._level = 0.0
        self._stamp = clock()

    def level(self) -> float:
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._stamp) * self.rate)
        self._stamp = now
        return self._level

    def admit(self) -> bool:
        """Count one request, or refuse it (uncounted) when it would pass the ceiling."""
        if self.level() + 1 > self.burst + 1e-9:
            return False
        self._level += 1
        return True


@dataclass
class _Basket:
    started: float
    seconds: float = 0.0


class OperatingTime:
    """Summed execution time per (application, method) in ``BASKETS`` baskets."""

    def __init__(self, limit: float, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._baskets: dict[tuple[str, str], dict[int, _Basket]] = {}

    def _live(self, key: tuple[str, str]) -> dict[int, _Basket]:
        now = self._clock()
        baskets = self._baskets.setdefault(key, {})
        for slot in [s for s, b in baskets.items() if b.started + self.window <= now]:
            del baskets[slot]
        return baskets

    def used(self, app: str, method: str) -> float:
        return sum(b.seconds for b in self._live((app, method)).values())

    def blocked(self, app: str, method: str) -> bool:
        """Checked before a call: the sum already above the limit."""
        return self.used(app, method) > self.limit

    def record(self, app: str, method: str, seconds: float) -> None:
        baskets = self._live((app, method))
        now = self._clock()
        slot = int(now // (self.window / BASKETS))
        basket = baskets.setdefault(slot, _Basket(started=now))
        basket.seconds += seconds

    def reset_at(self, app: str, method: str) -> float | None:
        """When the oldest basket leaves the sum (``time.operating_reset_at``)."""
        baskets = self._live((app, method))
        if not baskets:
            return None
        return min(b.started for b in baskets.values()) + self.window


@dataclass
class LimitStats:
    admitted: int = 0
    refused: int = 0
    """503 QUERY_LIMIT_EXCEEDED answers."""
    operation_blocked: int = 0
    """429 OPERATION_TIME_LIMIT answers (and refused batch commands)."""
    refused_by_source: dict[str, int] = field(default_factory=dict)


class PortalLimits:
    """Both limits of one portal: a bucket per source address, operating time per app."""

    def __init__(self, profile: LimitProfile, *, clock: Clock = time.time) -> None:
        """``clock`` is wall time: ``operating_reset_at`` is a Unix timestamp."""
        self._clock = clock
        self.stats = LimitStats()
        self.profile = profile
        self._buckets: dict[str, LeakyBucket] = {}
        self.operating = OperatingTime(profile.operating_limit, profile.operating_window, clock)

    def configure(self, profile: LimitProfile) -> None:
        """Switch profile; the counters start empty again."""
        self.profile = profile
        self._buckets.clear()
        self.operating = OperatingTime(
            profile.operating_limit, profile.operating_window, self._clock
        )

    def admit(self, source: str) -> bool:
        """One HTTP request from ``source`` (the peer address): True to serve it."""
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = self._buckets[source] = LeakyBucket(
                self.profile.rate, self.profile.burst, self._clock
            )
        if bucket.admit():
            self.stats.admitted += 1
            return True
        self.stats.refused += 1
        self.stats.refused_by_source[source] = self.stats.refused_by_source.get(source, 0) + 1
        return False

    def level(self, source: str) -> float:
        bucket = self._buckets.get(source)
        return 0.0 if bucket is None else bucket.level()

    def cost(self, method: str) -> float:
        return self.profile.method_costs.get(method, 0.0)

    def snapshot(self) -> dict[str, Any]:
        return {
            "profile": self.profile.name,
            "rate": self.profile.rate,
            "burst": self.profile.burst,
            "admitted": self.stats.admitted,
            "refused": self.stats.refused,
            "refused_by_source": dict(self.stats.refused_by_source),
            "operation_blocked": self.stats.operation_blocked,
            "levels": {source: round(b.level(), 3) for source, b in self._buckets.items()},
        }
