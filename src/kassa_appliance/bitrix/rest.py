"""Async Bitrix24 REST client (httpx).

One :class:`RestClient` per portal link. It sends ``POST <rest url>/<method>`` with a JSON
body (the access token as ``auth`` in the body, never in the URL) and turns answers into
results or typed :mod:`~kassa_appliance.bitrix.errors`:

* ``expired_token`` / 401 with OAuth: renew the token once (shared by concurrent callers)
  and repeat the call;
* 503 ``QUERY_LIMIT_EXCEEDED`` and 429: back off with jitter and retry;
* 5xx, timeouts, dropped connections: back off and retry, a bounded number of times —
  so calls must be safe to repeat (updates are). An ``add`` repeated after a lost answer
  could create a second item: such a caller passes ``find_earlier``, which is asked before
  every repeat whether the first try took effect (e.g. an item with this NAME exists) and
  whose answer, when not None, is returned as the call's result;
* any other 4xx: fail at once with Bitrix's message.

With a :class:`~kassa_appliance.bitrix.budget.RestBudget` every HTTP request (each try,
each 50-command ``batch`` chunk, each page of a list) first takes a token from it, at the
caller's ``priority`` (:class:`~kassa_appliance.bitrix.budget.Priority`, default ``JOB``);
a 503/429 answer is reported back to the budget, which slows down. Without one (tools,
tests) requests go out at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from kassa_appliance.bitrix.auth import Auth
from kassa_appliance.bitrix.budget import Priority, RestBudget
from kassa_appliance.bitrix.errors import (
    BitrixError,
    ExpiredToken,
    InvalidArgument,
    InvalidToken,
    RateLimited,
    ServerError,
    TransportError,
    error_from_payload,
)
from kassa_appliance.bitrix.phpquery import build_query
from kassa_appliance.bitrix.redact import install_redaction

log = logging.getLogger(__name__)

BATCH_LIMIT = 50
_METHOD_NAME = re.compile(r"^[A-Za-z0-9_.]+$")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    """Tries for 5xx answers, timeouts and dropped connections."""
    rate_limit_attempts: int = 12
    """Tries for 503 QUERY_LIMIT_EXCEEDED / 429."""
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        """Exponential back-off with jitter: uniform in [ceiling/2, ceiling]."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class RestResponse:
    result: Any
    next: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class BatchItem:
    """One command's outcome inside a batch: ``error`` is set when it failed."""

    result: Any = None
    error: BitrixError | None = None
    total: int | None = None
    next: int | None = None


class RestClient:
    def __init__(
        self,
        auth: Auth,
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        budget: RestBudget | None = None,
        local_address: str | None = None,
    ) -> None:
        """``local_address`` binds the client's own HTTP connections to that source
        address (the portal counts its rate limit per source address)."""
        install_redaction()
        self.auth = auth
        self.budget = budget
        self._own_http = http is None
        transport = (
            None if local_address is None else httpx.AsyncHTTPTransport(local_address=local_address)
        )
        self._http = http or httpx.AsyncClient(timeout=timeout, transport=transport)
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def result(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        priority: Priority = Priority.JOB,
        find_earlier: Callable[[], Awaitable[Any | None]] | None = None,
    ) -> Any:
        """Call ``method`` and return its ``result``."""
        return (
            await self.call(method, params, priority=priority, find_earlier=find_earlier)
        ).result

    async def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        priority: Priority = Priority.JOB,
        find_earlier: Callable[[], Awaitable[Any | None]] | None = None,
    ) -> RestResponse:
        """``find_earlier``: see the module docstring (repeats after a lost answer)."""
        if not _METHOD_NAME.match(method):
            raise InvalidArgument("ERROR_METHOD_NAME", f"not a REST method name: {method!r}")
        body = dict(params or {})
        refreshed = False
        failures = 0
        rate_limited = 0
        while True:
            generation = self.auth.generation
            token = await self.auth.access_token(self._http)
            if token is not None:
                body["auth"] = token
            if self.budget is not None:
                await self.budget.acquire(priority)
            try:
                response = await self._http.post(self.auth.rest_url(method), json=body)
            except httpx.HTTPError as exc:
                failures += 1
                if failures >= self._retry.attempts:
                    raise TransportError(
                        "TRANSPORT_ERROR",
                        f"{type(exc).__name__} after {failures} attempts",
                        method=method,
                    ) from None
                delay = self._retry.delay(failures)
                log.warning(
                    "%s: %s, retry %d in %.2fs", method, type(exc).__name__, failures, delay
                )
                await self._sleep(delay)
                earlier = await find_earlier() if find_earlier is not None else None
                if earlier is not None:
                    return RestResponse(result=earlier, next=None, total=None)
                continue
            status = response.status_code
            try:
                payload = response.json()
            except ValueError:
                payload = None
            error = error_from_payload(payload, status, method)
            if error is None and status == 200 and isinstance(payload, dict):
                return RestResponse(
                    result=payload.get("result"),
                    next=_int_or_none(payload.get("next")),
                    total=_int_or_none(payload.get("total")),
                )
            if error is None:
                error = ServerError(
                    "ERROR_UNEXPECTED_ANSWER",
                    f"HTTP {status} without a Bitrix24 error body",
                    status=status,
                    method=method,
                )
            if (
                (status == 401 or isinstance(error, ExpiredToken | InvalidToken))
                and self.auth.can_refresh
                and not refreshed
            ):
                refreshed = True
                log.info("%s: access token rejected (%s), renewing", method, error.code)
                await self.auth.refresh(self._http, generation)
                continue
            if isinstance(error, RateLimited) or status in {429, 503}:
                if self.budget is not None:
                    self.budget.limited_answer(status)
                rate_limited += 1
                if rate_limited >= self._retry.rate_limit_attempts:
                    raise RateLimited(error.code, error.description, status=status, method=method)
                delay = self._retry.delay(rate_limited)
                log.warning("%s: %s, backing off %.2fs", method, error.code, delay)
                await self._sleep(delay)
                continue
            if status >= 500:
                failures += 1
                if failures >= self._retry.attempts:
                    raise error
                delay = self._retry.delay(failures)
                log.warning("%s: HTTP %d %s, retry in %.2fs", method, status, error.code, delay)
                await self._sleep(delay)
                earlier = await find_earlier() if find_earlier is not None else None
                if earlier is not None:
                    return RestResponse(result=earlier, next=None, total=None)
                continue
            raise error

    async def batch(
        self,
        commands: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        halt: bool = False,
        priority: Priority = Priority.JOB,
    ) -> list[BatchItem]:
        """Run many calls through ``batch``, 50 per request; results in input order."""
        items: list[BatchItem] = []
        for start in range(0, len(commands), BATCH_LIMIT):
            chunk = commands[start : start + BATCH_LIMIT]
            keys = [f"c{start + i}" for i in range(len(chunk))]
            for method, _ in chunk:
                if not _METHOD_NAME.match(method):
                    raise InvalidArgument(
                        "ERROR_METHOD_NAME", f"not a REST method name: {method!r}"
                    )
            cmd = {
                key: f"{method}?{build_query(params)}"
                for key, (method, params) in zip(keys, chunk, strict=True)
            }
            answer = await self.result(
                "batch", {"halt": 1 if halt else 0, "cmd": cmd}, priority=priority
            )
            items.extend(_batch_items(answer, keys, [m for m, _ in chunk]))
        return items

    async def list_all(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
        priority: Priority = Priority.JOB,
    ) -> list[Any]:
        """Fetch every page of a list method by following ``next``."""
        collected: list[Any] = []
        query = dict(params or {})
        start = 0
        while True:
            query["start"] = start
            page = await self.call(method, query, priority=priority)
            if isinstance(page.result, list):
                collected.extend(page.result)
            elif isinstance(page.result, dict):
                collected.extend(page.result.values())
            if limit is not None and len(collected) >= limit:
                return collected[:limit]
            if page.next is None or page.next <= start:
                return collected
            start = page.next


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _keyed(section: Any) -> Mapping[str, Any]:
    """PHP serialises an empty array as ``[]`` and a sequential one as a list."""
    if isinstance(section, dict):
        return section
    if isinstance(section, list):
        return {str(i): v for i, v in enumerate(section)}
    return {}


def _batch_items(answer: Any, keys: list[str], methods: list[str]) -> list[BatchItem]:
    if not isinstance(answer, dict):
        raise ServerError("ERROR_UNEXPECTED_ANSWER", "batch answer has no result", method="batch")
    results = _keyed(answer.get("result"))
    errors = _keyed(answer.get("result_error"))
    totals = _keyed(answer.get("result_total"))
    nexts = _keyed(answer.get("result_next"))
    items = []
    for key, method in zip(keys, methods, strict=True):
        error = error_from_payload(errors.get(key), None, method) if key in errors else None
        if key in errors and error is None:
            error = ServerError("ERROR_UNEXPECTED_ANSWER", str(errors[key]), method=method)
        if error is None and key not in results:
            error = ServerError("BATCH_NOT_EXECUTED", "command was not executed", method=method)
        items.append(
            BatchItem(
                result=results.get(key),
                error=error,
                total=_int_or_none(totals.get(key)),
                next=_int_or_none(nexts.get(key)),
            )
        )
    return items
