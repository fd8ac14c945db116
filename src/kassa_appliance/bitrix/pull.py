"""Bitrix24 Push&Pull client: the appliance's doorbell (bitrix24-notes.md §1).

One WebSocket to the portal's push server, kept alive until cancelled::

    client = PullClient(
        lambda: rest.call("pull.application.config.get", {"CACHE": "N"}),
        on_message,                  # async (PullMessage) -> None; app events only
        on_connect=reconcile_jobs,   # async () -> None; after every (re)connect
    )
    await client.run()

What it does, and why:

* text framing (server v3/v4; several ``#!NGINXNMS!#…#!NGINXNME!#`` records per frame) and
  v5 JSON-RPC (text ``ping``→``pong``, ``mack:<mid>`` acks, 3005 when pings stop);
* every 60 s the config is checked (``config_timestamp``, ``exp``, each channel's ``end``);
  a stale one is fetched again and the connection reopened — the portal silently starts
  publishing to a new channel id after ~12 h;
* ``pull`` system commands: ``channel_expire`` (new channel → reconnect, otherwise fetch
  the config), ``config_expire`` and ``server_restart`` (fetch the config after a random
  10–120 s, per the REST docs);
* HTTP 400 at connect or close code 4010 means "wrong channel id": fetch the config again;
* reconnect back-off per :class:`BackoffPolicy`, reset once a connection stayed up
  ``stable_after`` seconds; history resume with ``mid=<last mid>`` and dedup of the last
  1000 mids, so a replay after a reconnect is not delivered twice;
* a revision other than 19 is logged, not fatal; malformed records are logged and skipped.

Application events published with ``pull.application.event.add`` arrive with ``module_id``
= the event's MODULE_ID, lower-cased, default ``"application"``; the doorbell is command
``kassa.job`` with params ``{job, kassa}`` (:func:`doorbell`). ``pull`` system commands are
handled here and never reach ``on_message``.

This module owns the connection: config fetch, connect, the receive loop with its config
checks and v5 ping watchdog, and the reconnect/back-off cycle. What happens to the received
records (dedup, system commands, delivery, acks) is
:mod:`~kassa_appliance.bitrix.pull_dispatch`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from kassa_appliance.bitrix.pull_backoff import BackoffPolicy, random_between
from kassa_appliance.bitrix.pull_config import PullConfig, PullConfigError
from kassa_appliance.bitrix.pull_dispatch import (
    CHANNEL_EXPIRED,
    CONFIG_EXPIRED,
    CONFIG_REPLACED,
    SERVER_RESTARTED,
    STUCK,
    SYSTEM_MODULE,
    WRONG_CHANNEL_ID,
    ActionOutcome,
    MessageHandler,
    Outcome,
    PullDispatcher,
    call_safely,
)
from kassa_appliance.bitrix.pull_frames import PullMessage, parse_jsonrpc_frame, parse_text_frame

__all__ = [
    "CHANNEL_EXPIRED",
    "CONFIG_EXPIRED",
    "CONFIG_REPLACED",
    "DOORBELL_COMMAND",
    "SERVER_RESTARTED",
    "STUCK",
    "SYSTEM_MODULE",
    "WRONG_CHANNEL_ID",
    "BackoffPolicy",
    "PullClient",
    "PullConfig",
    "PullConfigError",
    "PullMessage",
    "PullStatus",
    "PullTiming",
    "doorbell",
]

log = logging.getLogger(__name__)

DOORBELL_COMMAND = "kassa.job"
JSON_RPC_PING = "ping"
JSON_RPC_PONG = "pong"

ConfigFetcher = Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
ConnectHandler = Callable[[], Awaitable[None]]


def doorbell(message: PullMessage) -> tuple[str, str] | None:
    """``(job id, kassa id)`` if the message is a Kassa doorbell, else ``None``.

    The sender is not trustworthy (any app user can publish): act on the stored job only.
    """
    if message.command != DOORBELL_COMMAND:
        return None
    job, kassa = message.params.get("job"), message.params.get("kassa")
    if isinstance(job, str | int) and isinstance(kassa, str | int) and str(job):
        return str(job), str(kassa)
    return None


@dataclass(frozen=True)
class PullTiming:
    config_check_interval: float = 60.0
    stable_after: float = 30.0
    """A connection that lasted this long resets the back-off."""
    open_timeout: float = 10.0
    ping_interval: float | None = 30.0
    """Our own WebSocket pings (a dead NAT mapping shows up within ~2 intervals)."""
    jsonrpc_ping_timeout: float = 20.0
    """v5: no server ``ping`` for this long → close 3005 and reconnect."""
    wrong_channel_delay: tuple[float, float] = (5.0, 35.0)
    """Random wait before fetching the config after HTTP 400 / close 4010."""
    server_restart_delay: tuple[float, float] = (10.0, 120.0)
    """Random wait after ``config_expire`` / ``server_restart`` before fetching the config."""
    max_frame: int = 4 * 1_048_576


@dataclass(frozen=True)
class PullStatus:
    connected: bool = False
    last_error: str | None = None
    connections: int = 0
    """Successful WebSocket connects so far."""
    config_fetches: int = 0
    last_mid: str | None = None
    server_version: int | None = None


class PullClient:
    def __init__(
        self,
        fetch_config: ConfigFetcher,
        on_message: MessageHandler,
        *,
        on_connect: ConnectHandler | None = None,
        backoff: BackoffPolicy | None = None,
        timing: PullTiming | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        dedup_capacity: int = 1000,
    ) -> None:
        self._fetch_config = fetch_config
        self._on_connect = on_connect
        self._backoff = backoff or BackoffPolicy()
        self._timing = timing or PullTiming()
        self._clock = clock
        self._rng = rng
        self._dispatcher = PullDispatcher(
            on_message,
            on_mid=lambda mid: self._set_status(last_mid=mid),
            server_restart_delay=self._timing.server_restart_delay,
            dedup_capacity=dedup_capacity,
        )
        self._config: PullConfig | None = None
        self._config_timestamp = 0
        self._failures = 0
        self._status = PullStatus()

    @property
    def status(self) -> PullStatus:
        return self._status

    @property
    def failures(self) -> int:
        """Consecutive failed attempts (the back-off position)."""
        return self._failures

    async def run(self) -> None:
        """Connect and deliver messages until cancelled."""
        try:
            while True:
                await self._cycle()
        finally:
            self._set_status(connected=False)

    async def _cycle(self) -> None:
        if self._config is None:
            try:
                self._config = await self._load_config()
            except Exception as exc:  # any fetch failure: REST error, network, bad answer
                self._record_error(f"fetching the push config failed: {_describe(exc)}")
                await self._wait(self._next_failure_delay(None))
                return
        outcome = await self._connect_once(self._config)
        if outcome.stable:
            self._failures = 0
        if outcome.refetch:
            self._config = None
        elif outcome.config is not None:
            self._config = outcome.config
        if outcome.failure:
            self._record_error(outcome.reason)
            delay = self._next_failure_delay(outcome.delay)
        else:
            log.info("push: %s", outcome.reason)
            delay = random_between(outcome.delay, self._rng) if outcome.delay else 0.0
        await self._wait(delay)

    def _next_failure_delay(self, special: tuple[float, float] | None) -> float:
        delay = self._backoff.delay(self._failures)
        self._failures += 1
        if special is not None:
            delay = max(delay, random_between(special, self._rng))
        return delay

    async def _wait(self, delay: float) -> None:
        if delay > 0:
            log.debug("push: next attempt in %.1f s", delay)
            await asyncio.sleep(delay)

    async def _load_config(self) -> PullConfig:
        answer = self._fetch_config()
        if inspect.isawaitable(answer):
            answer = await answer
        if not isinstance(answer, Mapping):
            raise PullConfigError(f"the config answer is a {type(answer).__name__}, not an object")
        config = PullConfig.from_answer(answer)
        self._set_status(config_fetches=self._status.config_fetches + 1)
        if self._status.config_fetches > 1 and config.config_timestamp != self._config_timestamp:
            log.info(
                "push: the server config changed (config_timestamp %s)", config.config_timestamp
            )
        self._config_timestamp = config.config_timestamp
        self._dispatcher.check_revision(config.revision_web, "config")
        self._set_status(server_version=config.version)
        return config

    async def _connect_once(self, config: PullConfig) -> Outcome:
        url = config.connection_url(self._dispatcher.last_mid)
        where = urlsplit(url)._replace(query="").geturl()  # never log the channel ids
        try:
            async with connect(
                url,
                open_timeout=self._timing.open_timeout,
                ping_interval=self._timing.ping_interval,
                ping_timeout=self._timing.ping_interval,
                max_size=self._timing.max_frame,
                compression=None,
            ) as connection:
                return await self._session(connection, config, where)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 400:
                return Outcome(
                    f"push server refused the channel ids (HTTP 400) at {where}",
                    refetch=True,
                    delay=self._timing.wrong_channel_delay,
                )
            return Outcome(f"push server answered HTTP {status} at {where}")
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            return Outcome(f"cannot connect to the push server {where}: {_describe(exc)}")

    async def _session(
        self, connection: ClientConnection, config: PullConfig, where: str
    ) -> Outcome:
        loop = asyncio.get_running_loop()
        opened = loop.time()
        self._set_status(connected=True, connections=self._status.connections + 1)
        log.info("push: connected to %s (server v%d)", where, config.version)
        outcome: Outcome
        try:
            if self._on_connect is not None:
                await call_safely(self._on_connect(), "on_connect")
            action = await self._receive(connection, config)
            outcome = action
            await connection.close(action.code, action.reason[:120])
        except ConnectionClosed as exc:
            outcome = self._closed_outcome(exc)
        finally:
            self._set_status(connected=False)
        lasted = loop.time() - opened
        return replace(outcome, stable=lasted >= self._timing.stable_after)

    def _closed_outcome(self, exc: ConnectionClosed) -> Outcome:
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        reason = exc.rcvd.reason if exc.rcvd is not None else "no close frame"
        if code == WRONG_CHANNEL_ID:
            return Outcome(
                f"push server closed with 4010 (wrong channel id: {reason})",
                refetch=True,
                delay=self._timing.wrong_channel_delay,
            )
        return Outcome(f"push connection closed (code {code}: {reason or '-'})")

    async def _receive(self, connection: ClientConnection, config: PullConfig) -> ActionOutcome:
        loop = asyncio.get_running_loop()
        interval = self._timing.config_check_interval
        next_check = loop.time() + interval
        last_ping = loop.time()
        while True:
            deadline = next_check
            if config.json_rpc:
                deadline = min(deadline, last_ping + self._timing.jsonrpc_ping_timeout)
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    frame = await connection.recv()
            except TimeoutError:
                now = loop.time()
                if config.json_rpc and now - last_ping >= self._timing.jsonrpc_ping_timeout:
                    return ActionOutcome("no ping from the JSON-RPC server", code=STUCK)
                if now >= next_check:
                    next_check = now + interval
                    stale = config.stale_reason(self._clock(), self._config_timestamp)
                    if stale is not None:
                        return ActionOutcome(
                            f"config is stale ({stale}); fetching it again",
                            code=CONFIG_EXPIRED,
                            refetch=True,
                            failure=False,
                        )
                continue
            if isinstance(frame, bytes):
                log.warning("push: ignoring a %d-byte binary frame (text mode)", len(frame))
                continue
            if config.json_rpc and frame == JSON_RPC_PING:
                last_ping = loop.time()
                await connection.send(JSON_RPC_PONG)
                continue
            records = parse_jsonrpc_frame(frame) if config.json_rpc else parse_text_frame(frame)
            action = await self._dispatcher.dispatch(records, connection, config)
            if action is not None:
                return action

    def _record_error(self, error: str) -> None:
        log.warning("push: %s", error)
        self._set_status(last_error=error)

    def _set_status(self, **changes: Any) -> None:
        self._status = replace(self._status, **changes)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
