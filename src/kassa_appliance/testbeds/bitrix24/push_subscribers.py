"""The push server's subscriber side: admitting WebSocket connections and sending them frames.

:class:`SubscriberHub` owns the connected clients: the handshake check (signed ``CHANNEL_ID``
or a v5 JWT, HTTP 400 on a bad one, ``clientId`` in shared mode, the framing a client asked
for and its ``mid`` to resume from), the 4010 close of a connection holding only revoked
channels, ``mid`` replay from the
:class:`~kassa_appliance.testbeds.bitrix24.push_history.MessageHistory`,
per-connection buffering of records into one frame after the random ``buffer_delay``, v5
text pings and ``mack`` acks, channel stats for the ``/pub/`` GET, and the fault controls that
act on every connection (close, drop, send a raw frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from kassa_appliance.testbeds.bitrix24.push_channels import (
    ChannelIdError,
    bare_channel_hex,
    verify_channel_id,
)
from kassa_appliance.testbeds.bitrix24.push_framing import (
    StoredMessage,
    jsonrpc_frame,
    protobuf_frame,
    text_frame,
)
from kassa_appliance.testbeds.bitrix24.push_history import MessageHistory
from kassa_appliance.testbeds.bitrix24.push_settings import PushSettings, PushStats
from kassa_appliance.testbeds.bitrix24.push_tokens import verify_jwt

# The server's logger: these records belong to (and are filtered as) the push emulator.
log = logging.getLogger("kassa_appliance.testbeds.bitrix24.push")

WRONG_CHANNEL_ID = 4010
_MID_RE = re.compile(r"^[0-9]{26}$")

Mode = Literal["text", "protobuf", "jsonrpc"]


@dataclass
class Subscriber:
    connection: ServerConnection
    channels: frozenset[str]
    mode: Mode
    pending: list[StoredMessage] = field(default_factory=list)
    flush_task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class Admission:
    channels: frozenset[str]
    mode: Mode
    mid: str | None
    revoked_only: bool


class SubscriberHub:
    """Connected subscribers of one push server.

    ``revoked`` is the server's set of replaced channel ids (read, never written here).
    """

    def __init__(
        self,
        settings: PushSettings,
        stats: PushStats,
        *,
        history: MessageHistory,
        revoked: set[str],
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self._settings = settings
        self._stats = stats
        self._history = history
        self._revoked = revoked
        self._clock = clock
        self._rng = rng
        self._subscribers: dict[object, Subscriber] = {}
        self._admissions: dict[object, Admission] = {}

    # ---- connection handling -----------------------------------------------------------

    def admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """The handshake check (``process_request``): a response refuses the connection."""
        url = urlsplit(request.path)
        if url.path != self._settings.sub_route:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        try:
            channels = self._requested_channels(query)
        except ChannelIdError as exc:
            self._stats.rejected_400 += 1
            log.info("push emulator: refusing a subscriber: %s", exc)
            return connection.respond(HTTPStatus.BAD_REQUEST, f"{exc}\n")
        mode: Mode = "text"
        wire = self._settings.wire_version or self._settings.version
        if wire >= 5:
            mode = "jsonrpc"
        elif query.get("binaryMode") == "true":
            mode = "protobuf"
        mid = query.get("mid")
        self._admissions[connection.id] = Admission(
            channels=channels,
            mode=mode,
            mid=mid if mid and _MID_RE.match(mid) else None,
            revoked_only=channels <= self._revoked,
        )
        return None

    def _requested_channels(self, query: dict[str, str]) -> frozenset[str]:
        settings = self._settings
        if settings.version >= 5:
            token = query.get("token", "")
            if not token:
                raise ChannelIdError("token is missing")
            return verify_jwt(settings.signature_key, token, self._clock)
        if settings.mode == "shared" and query.get("clientId") != settings.client_id:
            raise ChannelIdError("clientId is missing or wrong")
        raw = query.get("CHANNEL_ID", "")
        ids = [part for part in raw.split("/") if part]
        if not ids:
            raise ChannelIdError("CHANNEL_ID is missing")
        key = settings.signature_key
        return frozenset(verify_channel_id(key, channel_id) for channel_id in ids)

    async def handle(self, connection: ServerConnection) -> None:
        """One admitted connection, from replay to close (the ``serve`` handler)."""
        admission = self._admissions.pop(connection.id)
        self._stats.connections += 1
        if admission.revoked_only:
            self._stats.closed_4010 += 1
            await connection.close(WRONG_CHANNEL_ID, "Wrong Channel Id.")
            return
        subscriber = Subscriber(connection, admission.channels, admission.mode)
        self._subscribers[connection.id] = subscriber
        pinger: asyncio.Task[None] | None = None
        try:
            if admission.mid is not None:
                replay = self._history.replay(admission.mid, admission.channels)
                await self._send(subscriber, replay)
            if admission.mode == "jsonrpc":
                pinger = asyncio.create_task(self._jsonrpc_pings(connection))
            async for incoming in connection:
                if isinstance(incoming, str) and incoming.startswith("mack:"):
                    self._stats.acks.append(incoming[5:])
        except ConnectionClosed:
            pass
        finally:
            self._subscribers.pop(connection.id, None)
            if pinger is not None:
                pinger.cancel()
            if subscriber.flush_task is not None:
                subscriber.flush_task.cancel()

    async def _jsonrpc_pings(self, connection: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await connection.send("ping")
                await asyncio.sleep(self._settings.jsonrpc_ping_interval)

    # ---- sending -----------------------------------------------------------------------

    def deliver(self, message: StoredMessage) -> None:
        """Queue ``message`` for every subscriber of one of its channels."""
        for subscriber in list(self._subscribers.values()):
            if subscriber.channels & message.channels:
                self._enqueue(subscriber, message)

    def _enqueue(self, subscriber: Subscriber, message: StoredMessage) -> None:
        subscriber.pending.append(message)
        if subscriber.flush_task is None:
            low, high = self._settings.buffer_delay
            delay = self._rng.uniform(low, high) if high > 0 else 0.0
            subscriber.flush_task = asyncio.get_running_loop().create_task(
                self._flush_later(subscriber, delay)
            )

    async def _flush_later(self, subscriber: Subscriber, delay: float) -> None:
        await asyncio.sleep(delay)
        subscriber.flush_task = None
        await self._send(subscriber, subscriber.pending)
        subscriber.pending = []

    async def _send(self, subscriber: Subscriber, messages: list[StoredMessage]) -> None:
        if not messages:
            return
        frame: str | bytes
        if subscriber.mode == "protobuf":
            frame = protobuf_frame(messages)
        elif subscriber.mode == "jsonrpc":
            frame = jsonrpc_frame(messages)
        else:
            frame = text_frame(messages)
        with contextlib.suppress(ConnectionClosed):
            await subscriber.connection.send(frame)
            self._stats.frames_sent += 1
            self._stats.records_sent += len(messages)

    # ---- inspection and fault controls -------------------------------------------------

    @property
    def count(self) -> int:
        return len(self._subscribers)

    def channel_stats(self, channel_ids: list[str]) -> list[dict[str, object]]:
        infos: list[dict[str, object]] = []
        for channel_id in channel_ids:
            hex_id = bare_channel_hex(channel_id)
            count = sum(1 for s in self._subscribers.values() if hex_id in s.channels)
            infos.append({"channel": hex_id, "subscribers": count})
        return infos

    def connected_channels(self) -> list[str]:
        return sorted({hex_id for s in self._subscribers.values() for hex_id in s.channels})

    async def close_all(self, code: int, reason: str = "") -> None:
        subscribers = list(self._subscribers.values())
        if code == WRONG_CHANNEL_ID:
            self._stats.closed_4010 += len(subscribers)
        await asyncio.gather(
            *(s.connection.close(code, reason) for s in subscribers), return_exceptions=True
        )

    def drop_all(self) -> None:
        for subscriber in list(self._subscribers.values()):
            transport = subscriber.connection.transport
            if transport is not None:
                transport.abort()

    async def send_raw_frame(self, frame: str | bytes) -> None:
        await asyncio.gather(
            *(s.connection.send(frame) for s in self._subscribers.values()),
            return_exceptions=True,
        )
