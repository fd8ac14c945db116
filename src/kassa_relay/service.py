"""What every handler shares: the bus, the rate limiter, a short cache of registry reads,
and the request body rules (size, UTF-8, form fields, nesting)."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from kassa_appliance.bitrix.phpquery import parse_query
from kassa_appliance.inputs import InputRejected, decode_json_bytes
from kassa_relay.bus import TOKEN_KEY_FIELD, Bus, BusUnavailable
from kassa_relay.defaults import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FORM_FIELDS,
    DEFAULT_RATE_BURST,
    DEFAULT_RATE_PER_SECOND,
)
from kassa_relay.ratelimit import FleetRateLimiter, RateLimiter
from kassa_relay.registry import TOKEN_KEY, Cashbox, Tenant, cashbox_key, tenant_key

log = logging.getLogger("kassa_relay")
CACHE_SECONDS = 5.0
"""A registry read is reused this long (a revoked cashbox stops working within it)."""


class BodyRejected(ValueError):
    """The body breaks a limit or is not what the endpoint takes; text says which."""


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_form_fields: int = DEFAULT_MAX_FORM_FIELDS
    max_depth: int = DEFAULT_MAX_DEPTH
    rate: float = DEFAULT_RATE_PER_SECOND
    burst: int = DEFAULT_RATE_BURST


class Relay:
    def __init__(self, bus: Bus, limits: Limits, *, allow_private_callbacks: bool = False) -> None:
        self.bus = bus
        self.limits = limits
        self.limiter = RateLimiter(limits.rate, limits.burst)
        self._fleet_limiter: FleetRateLimiter | None = None
        self.allow_private_callbacks = allow_private_callbacks
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._token_key: bytes | None = None
        self.counters: dict[str, int] = {}

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    async def _cached(self, key: str) -> dict[str, Any] | None:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        value = await self.bus.registry_get(key)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now, value)
        return value

    async def cashbox(self, tenant: str, kassa: str) -> Cashbox | None:
        data = await self._cached(cashbox_key(tenant, kassa))
        return Cashbox.from_json(data) if data else None

    async def tenant(self, tenant: str) -> Tenant | None:
        data = await self._cached(tenant_key(tenant))
        return Tenant.from_json(data) if data else None

    async def token_key(self) -> bytes:
        if self._token_key is None:
            stored = await self.bus.registry_get(TOKEN_KEY)
            if stored is None:
                await self.bus.registry_create(TOKEN_KEY, {TOKEN_KEY_FIELD: secrets.token_hex(32)})
                stored = await self.bus.registry_get(TOKEN_KEY)
            assert stored is not None
            self._token_key = bytes.fromhex(stored[TOKEN_KEY_FIELD])
        return self._token_key

    async def rate_limited(self, tenant: str) -> float:
        """0.0, or the seconds to wait (429): this instance's bucket first, then the fleet's
        window in JetStream; raises :class:`BusUnavailable` if the bus cannot say (503)."""
        try:
            record = await self.tenant(tenant)
        except Exception as error:
            raise BusUnavailable(type(error).__name__) from None
        rate = record.rate_per_second if record is not None else None
        wait = self.limiter.allow(tenant, rate)
        if wait:
            return wait
        return await self.fleet_limiter().allow(tenant, rate)

    def fleet_limiter(self) -> FleetRateLimiter:
        if self._fleet_limiter is None:
            self._fleet_limiter = FleetRateLimiter(
                self.bus.js,
                self.limits.rate,
                self.limits.burst,
                self.bus.options.replicas,
                self.bus.options.publish_timeout,
            )
        return self._fleet_limiter

    # -- bodies -------------------------------------------------------------------------------

    async def read_body(self, request: web.Request) -> bytes:
        """At most ``max_body_bytes`` (aiohttp's own limit answers 413 beyond it)."""
        if (
            request.content_length is not None
            and request.content_length > self.limits.max_body_bytes
        ):
            raise web.HTTPRequestEntityTooLarge(
                max_size=self.limits.max_body_bytes, actual_size=request.content_length
            )
        return await request.read()

    def form(self, body: bytes, content_type: str) -> dict[str, Any]:
        """A PHP-style nested form (or JSON) body within the field and depth limits."""
        if content_type == "application/json":
            try:
                value = decode_json_bytes(body, "request")
            except InputRejected as error:
                raise BodyRejected(str(error)) from None
            if not isinstance(value, dict):
                raise BodyRejected("request: expected a JSON object")
            return value
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BodyRejected("request: the body is not UTF-8 text") from None
        try:
            pairs = parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=self.limits.max_form_fields,
                errors="strict",
            )
        except (ValueError, UnicodeDecodeError):
            raise BodyRejected(
                f"request: not a form body, or more than {self.limits.max_form_fields} fields"
            ) from None
        for key, _value in pairs:
            if key.count("[") > self.limits.max_depth or len(key) > 256:
                raise BodyRejected(
                    f"request: the field name {key[:60]!r} is nested deeper than "
                    f"{self.limits.max_depth} levels or too long"
                )
            if "\x00" in key:
                raise BodyRejected("request: a field name holds a NUL character")
        try:
            return parse_query(text)
        except (ValueError, RecursionError, TypeError, AttributeError):
            raise BodyRejected("request: the form fields do not nest consistently") from None


RELAY: web.AppKey[Relay] = web.AppKey("relay", Relay)
"""Where the application keeps its :class:`Relay`."""
