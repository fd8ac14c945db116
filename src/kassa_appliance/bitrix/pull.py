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
  v5 JSON-RPC (text ``ping``→``pong``, ``mack:<mid>`` acks, 3005 when pings stop); a v5
  config whose server sends v4 text frames (or never a JSON-RPC ping) falls back to v4
  framing with one warning;
* the config is checked every 60 s (``config_timestamp``, ``exp``, channel ``end``s);
  ``channel_expire``, ``config_expire`` and ``server_restart`` (after the random 10–120 s
  the REST docs require) and a stale config lead to a new connection that is opened
  *next to* the old one, which stays in use until then (:mod:`.pull_handover`);
* HTTP 400 at connect or close code 4010 means "wrong channel id": fetch the config again;
* reconnect back-off per :class:`BackoffPolicy`, reset once a connection stayed up
  ``stable_after`` seconds; ``on_connect`` after every (re)connect; history resume with
  ``mid=<last mid>`` and dedup of the last 1000 mids;
* ``on_message`` runs in its own task, in order, behind a bounded queue, so a slow handler
  never holds up the next frame; a revision other than 19 is logged, not fatal.

Application events (``pull.application.event.add``) arrive with ``module_id`` = MODULE_ID,
lower-cased, default ``"application"``; the doorbell is command ``kassa.job`` with params
``{job, kassa}`` (:func:`doorbell`). ``pull`` system commands never reach ``on_message``;
records (dedup, system commands, acks) are handled in :mod:`.pull_dispatch`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
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
    DeliveryQueue,
    MessageHandler,
    Outcome,
    PullDispatcher,
    call_safely,
)
from kassa_appliance.bitrix.pull_frames import PullMessage, parse_jsonrpc_frame, parse_text_frame
from kassa_appliance.bitrix.pull_handover import Handover
from kassa_appliance.bitrix.pull_types import DOORBELL_COMMAND, PullStatus, PullTiming, doorbell

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

JSON_RPC_PING = "ping"
JSON_RPC_PONG = "pong"
TEXT_RECORD_START = "#!NGINXNMS!#"
HANDOVER_POLL = 0.02  # seconds between looks at a new connection being opened
ConfigFetcher = Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
ConnectHandler = Callable[[], Awaitable[None]]


class PullClient:
    def __init__(
        self,
        fetch_config: ConfigFetcher,
        on_message: MessageHandler,
        *,
        on_connect: ConnectHandler | None = None,
        on_overflow: Callable[[], None] | None = None,
        backoff: BackoffPolicy | None = None,
        timing: PullTiming | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        dedup_capacity: int = 1000,
        delivery_capacity: int = 1000,
    ) -> None:
        """``on_message`` runs in its own task, in order (a slow handler never holds up the
        connection); past ``delivery_capacity`` waiting messages the oldest are dropped
        and ``on_overflow`` is called."""
        self._fetch_config = fetch_config
        self._on_connect = on_connect
        self._backoff = backoff or BackoffPolicy()
        self._timing = timing or PullTiming()
        self._clock = clock
        self._rng = rng
        self._deliveries = DeliveryQueue(
            on_message, capacity=delivery_capacity, on_overflow=on_overflow
        )
        self._dispatcher = PullDispatcher(
            self._deliveries.put,
            on_mid=lambda mid: self._set_status(last_mid=mid),
            server_restart_delay=self._timing.server_restart_delay,
            dedup_capacity=dedup_capacity,
        )
        self._config: PullConfig | None = None
        self._config_timestamp = 0
        self._failures = 0
        self._status = PullStatus()
        self._handover: Handover | None = None
        self._handing_over = False
        self._handover_code = CONFIG_EXPIRED
        self._v4_fallback = False  # config said v5, server spoke v4: read text frames

    @property
    def status(self) -> PullStatus:
        return self._status

    @property
    def failures(self) -> int:
        """Consecutive failed attempts (the back-off position)."""
        return self._failures

    async def run(self) -> None:
        """Connect and deliver messages until cancelled."""
        deliverer = asyncio.create_task(self._deliveries.run(), name="push-deliveries")
        try:
            while True:
                await self._cycle()
        finally:
            self._set_status(connected=False)
            deliverer.cancel()
            if self._handover is not None:
                await self._handover.cancel()
                self._handover = None

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

    async def _open(self, config: PullConfig) -> ClientConnection:
        return await connect(
            config.connection_url(self._dispatcher.last_mid),
            open_timeout=self._timing.open_timeout,
            ping_interval=self._timing.ping_interval,
            ping_timeout=self._timing.ping_interval,
            max_size=self._timing.max_frame,
            compression=None,
        )

    async def _connect_once(self, config: PullConfig) -> Outcome:
        where = _where(config)
        try:
            connection = await self._open(config)
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
        while True:  # one connection after the other, handed over without a gap
            session = await self._session(connection, config)
            if isinstance(session, Outcome):
                return session
            connection, config = session

    async def _session(
        self, connection: ClientConnection, config: PullConfig
    ) -> Outcome | tuple[ClientConnection, PullConfig]:
        """Serve one connection; returns how it ended, or the connection that took over."""
        loop = asyncio.get_running_loop()
        opened = loop.time()
        self._set_status(connected=True, connections=self._status.connections + 1)
        log.info("push: connected to %s (server v%d)", _where(config), config.version)
        outcome: Outcome
        try:
            if self._on_connect is not None:
                await call_safely(self._on_connect(), "on_connect")
            action = await self._receive(connection, config)
            if isinstance(action, tuple):
                self._config = action[1]
                await connection.close(self._handover_code, "replaced by a new connection")
                return action
            outcome = action
            await connection.close(action.code, action.reason[:120])
        except ConnectionClosed as exc:
            outcome = await self._closed_outcome(exc, loop.time())
        finally:
            if not self._handing_over:
                self._set_status(connected=False)
            self._handing_over = False
        lasted = loop.time() - opened
        return replace(outcome, stable=lasted >= self._timing.stable_after)

    async def _closed_outcome(self, exc: ConnectionClosed, now: float) -> Outcome:
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        reason = exc.rcvd.reason if exc.rcvd is not None else "no close frame"
        handover, self._handover = self._handover, None
        if handover is not None:  # the server dropped us first: keep the jitter
            await handover.cancel()
            wait = max(0.0, handover.at - now)
            return replace(
                handover.action,
                reason=f"{handover.action.reason} (connection closed, code {code}, first)",
                delay=(wait, wait),
            )
        if code == WRONG_CHANNEL_ID:
            return Outcome(
                f"push server closed with 4010 (wrong channel id: {reason})",
                refetch=True,
                delay=self._timing.wrong_channel_delay,
            )
        return Outcome(f"push connection closed (code {code}: {reason or '-'})")

    def _plan_handover(self, action: ActionOutcome, now: float) -> None:
        if self._handover is not None:  # one is planned: a refetch wins over a new channel
            if action.refetch and not self._handover.action.refetch:
                self._handover.action = action
            return
        wait = random_between(action.delay, self._rng) if action.delay else 0.0
        log.info("push: %s; the new connection opens in %.1f s", action.reason, wait)
        self._handover = Handover(action, now + wait)

    async def _receive(
        self, connection: ClientConnection, config: PullConfig
    ) -> ActionOutcome | tuple[ClientConnection, PullConfig]:
        loop = asyncio.get_running_loop()
        interval = self._timing.config_check_interval
        next_check = loop.time() + interval
        last_ping = loop.time()
        json_rpc = config.json_rpc and not self._v4_fallback
        pinged = False
        while True:
            handover = self._handover
            if handover is not None and handover.ready:
                taken = handover.result(self._backoff.delay, loop.time())
                if taken is not None:
                    self._handover, self._handing_over = None, True
                    self._handover_code = handover.action.code
                    return taken
            elif handover is not None and handover.task is None and loop.time() >= handover.at:
                handover.start(config, self._load_config, self._open)
            deadline = next_check
            if json_rpc:
                deadline = min(deadline, last_ping + self._timing.jsonrpc_ping_timeout)
            if handover is not None:  # look again soon while the new connection opens
                deadline = min(deadline, handover.at if handover.task is None else loop.time())
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                async with asyncio.timeout(max(HANDOVER_POLL, deadline - loop.time())):
                    frame = await connection.recv()
            except TimeoutError:
                now = loop.time()
                if json_rpc and now - last_ping >= self._timing.jsonrpc_ping_timeout:
                    if pinged:
                        return ActionOutcome("no ping from the JSON-RPC server", code=STUCK)
                    json_rpc = self._fall_back_to_v4("it sent no JSON-RPC ping")
                if now >= next_check:
                    next_check = now + interval
                    stale = config.stale_reason(self._clock(), self._config_timestamp)
                    if stale is not None:
                        self._plan_handover(
                            ActionOutcome(
                                f"config is stale ({stale})",
                                code=CONFIG_EXPIRED,
                                refetch=True,
                                failure=False,
                            ),
                            now,
                        )
                continue
            if isinstance(frame, bytes):
                log.warning("push: ignoring a %d-byte binary frame (text mode)", len(frame))
                continue
            if json_rpc and frame == JSON_RPC_PING:
                last_ping, pinged = loop.time(), True
                await connection.send(JSON_RPC_PONG)
                continue
            if json_rpc and frame.startswith(TEXT_RECORD_START):
                json_rpc = self._fall_back_to_v4("it sends v4 text frames")
            records = parse_jsonrpc_frame(frame) if json_rpc else parse_text_frame(frame)
            action = await self._dispatcher.dispatch(records, connection, config, ack=json_rpc)
            if action is not None and not action.failure:
                self._plan_handover(action, loop.time())
            elif action is not None:
                if self._handover is not None:
                    await self._handover.cancel()
                    self._handover = None
                return action

    def _fall_back_to_v4(self, why: str) -> bool:
        """The config says v5 but the server speaks v4: read v4 text frames from now on."""
        if not self._v4_fallback:
            log.warning(
                "push: the config says server version 5 (JSON-RPC) but %s; "
                "falling back to v4 text framing",
                why,
            )
        self._v4_fallback = True
        return False

    def _record_error(self, error: str) -> None:
        log.warning("push: %s", error)
        self._set_status(last_error=error)

    def _set_status(self, **changes: Any) -> None:
        self._status = replace(self._status, **changes)


def _where(config: PullConfig) -> str:
    """The push server's address without the query (never log the channel ids)."""
    return urlsplit(config.websocket)._replace(query="").geturl()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
