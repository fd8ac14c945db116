"""Per-tenant rate limits that hold across every relay instance.

Two stages:

* :class:`RateLimiter` — a token bucket per tenant in this instance's memory, a cheap first
  filter: one instance never lets a tenant past the tenant's own rate, and a flood is turned
  away without a round trip to the bus.
* :class:`FleetRateLimiter` — the limit itself, shared by the fleet through the JetStream
  key-value bucket ``kassa_rates`` (memory storage, replicated like the others). Time is cut
  into fixed windows of ``burst / rate`` seconds (1–60 s), each allowing ``rate × window``
  requests; key ``<tenant>.<window number>`` counts the requests granted so far. An instance
  claims a small share of the window (a tenth, at least one request) with ``create`` for a
  new window or ``update(…, last=revision)`` — optimistic concurrency, retried on a lost
  race — and spends it locally; once the window is used up it answers 429 until the next
  window without asking the bus again. Keys expire after ``RATES_TTL_SECONDS``.

So a tenant gets at most ``rate × window`` requests per window from the whole fleet (a share
claimed but not spent by an instance is lost for that window, never handed out twice). As
with every fixed window, two full windows back to back may pass up to twice the window's
allowance within one window's length. Windows are numbered from each instance's wall clock:
keep the relays' clocks in sync (NTP), as a skewed clock counts in a neighbouring window.

When the bus cannot be asked (no connection, no quorum, no answer within the
bus's publish timeout) the claim raises :class:`~kassa_relay.bus.BusUnavailable` and the
caller answers 503 with ``Retry-After`` — fail closed: the relay cannot publish a check then
anyway, and an internet-facing service must not drop its limits when the bus hiccups.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from kassa_relay.bus import BusUnavailable

log = logging.getLogger("kassa_relay")
MAX_TRACKED = 100_000
"""Buckets kept before the oldest are forgotten (an unknown tenant costs one entry)."""
RATES_BUCKET = "kassa_rates"
RATES_TTL_SECONDS = 180.0
"""Longer than the longest window (``WINDOW_MAX_SECONDS``): a key outlives its window."""
WINDOW_MIN_SECONDS = 1.0
WINDOW_MAX_SECONDS = 60.0
CLAIM_SHARE = 10
"""An instance claims ``allowance / CLAIM_SHARE`` requests of a window at a time."""
CLAIM_ATTEMPTS = 20
"""Lost optimistic-concurrency races before the claim gives up (answered 503)."""


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """This instance's token bucket per tenant (the cheap first filter)."""

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


@dataclass(frozen=True)
class Window:
    seconds: float
    allowance: int

    @classmethod
    def of(cls, rate: float, burst: int) -> Window:
        seconds = min(WINDOW_MAX_SECONDS, max(WINDOW_MIN_SECONDS, burst / rate))
        return cls(seconds, max(1, math.floor(rate * seconds)))

    def number(self, now: float) -> int:
        return math.floor(now / self.seconds)

    def left(self, number: int, now: float) -> float:
        """Seconds until window ``number`` ends."""
        return max(0.0, (number + 1) * self.seconds - now)


@dataclass
class _Share:
    """What this instance may still grant in one tenant's current window."""

    window: int = -1
    granted: int = 0
    exhausted: bool = False


class FleetRateLimiter:
    """The fleet-wide limit through ``kassa_rates`` (see the module's docstring)."""

    def __init__(
        self, js: JetStreamContext, rate: float, burst: int, replicas: int, timeout: float
    ) -> None:
        self._js = js
        self.timeout = timeout
        self.rate = rate
        self.burst = burst
        self.replicas = replicas
        self._kv: KeyValue | None = None
        self._shares: dict[str, _Share] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            config = KeyValueConfig(
                bucket=RATES_BUCKET,
                history=1,
                ttl=RATES_TTL_SECONDS,
                replicas=self.replicas,
                storage=StorageType.MEMORY,
                max_value_size=64,
            )
            try:
                self._kv = await self._js.key_value(RATES_BUCKET)
            except Exception:
                try:
                    self._kv = await self._js.create_key_value(config)
                except BadRequestError:  # another instance created it meanwhile
                    self._kv = await self._js.key_value(RATES_BUCKET)
        return self._kv

    async def prepare(self, wait_seconds: float = 30.0) -> None:
        """Create the bucket if need be and wait until it answers: a stream just created
        answers only once its replicas elected a leader."""
        kv = await self._bucket()
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                await asyncio.wait_for(kv.get("probe.0"), 2.0)
            except KeyNotFoundError:
                return
            except Exception as error:
                if time.monotonic() > deadline:
                    log.warning("the rate bucket does not answer yet: %r", error)
                    return
                await asyncio.sleep(0.2)
            else:
                return

    async def allow(self, tenant: str, rate: float | None = None) -> float:
        """0.0 if the fleet may take one more request of ``tenant`` now, else the seconds
        until its next window. Raises :class:`BusUnavailable` if the bus cannot be asked."""
        window = Window.of(rate if rate is not None else self.rate, self.burst)
        lock = self._locks.get(tenant)
        if lock is None:
            if len(self._locks) >= MAX_TRACKED:
                stale = next(iter(self._locks))
                self._locks.pop(stale)
                self._shares.pop(stale, None)
            lock = self._locks[tenant] = asyncio.Lock()
        async with lock:
            now = time.time()
            number = window.number(now)
            share = self._shares.get(tenant)
            if share is None or share.window != number:
                share = self._shares[tenant] = _Share(number)
            if share.granted == 0 and not share.exhausted:
                try:
                    kv = await self._bucket()  # the first time: created with the JS timeout
                    share.granted = await asyncio.wait_for(
                        self._claim(kv, tenant, number, window), self.timeout
                    )
                except Exception as error:
                    log.warning("rate window of tenant %s not readable: %r", tenant, error)
                    if isinstance(error, BusUnavailable):
                        raise
                    raise BusUnavailable(type(error).__name__) from None
                share.exhausted = share.granted == 0
            if share.granted > 0:
                share.granted -= 1
                return 0.0
            return max(0.1, window.left(number, time.time()))

    async def _claim(self, kv: KeyValue, tenant: str, number: int, window: Window) -> int:
        """Take up to a share of window ``number`` from the fleet's count; 0 if it is used up."""
        key = f"{tenant}.{number}"
        want = max(1, window.allowance // CLAIM_SHARE)
        for _attempt in range(CLAIM_ATTEMPTS):
            try:
                entry = await kv.get(key)
            except KeyNotFoundError:
                take = min(want, window.allowance)
                try:
                    await kv.create(key, str(take).encode())
                except KeyWrongLastSequenceError:
                    continue  # another instance opened the window first
                return take
            used = int(entry.value or b"0")
            take = min(want, window.allowance - used)
            if take <= 0:
                return 0
            try:
                await kv.update(key, str(used + take).encode(), last=entry.revision)
            except KeyWrongLastSequenceError:
                continue  # another instance claimed meanwhile: read again
            return take
        raise BusUnavailable("the rate window stayed contended")
