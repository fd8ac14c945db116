"""A loopback Bitrix24 push server (ps2, protocol v4; optional v5 JSON-RPC) plus the portal's
channel bookkeeping, for tests, the demo and benchmarks.

Interface (what the REST half of the portal emulator codes against)::

    push = PushServer(PushSettings(channel_ttl=43205, buffer_delay=(0.25, 0.4)))
    await push.start("127.0.0.1", 0)        # sub (WebSocket) port + a pub (HTTP) port
    push.application_config(client_id, user_id)   # -> ``result`` of pull.application.config.get
    await push.publish_application_event(client_id, user_ids, {module_id, command, params})
                                            # pull.application.event.add (None = shared channel)
    await push.publish(channel_ids, body)   # raw publish, like POST /bitrix/pub/?CHANNEL_ID=…
    await push.stop()

Faithful to bitrix24-notes.md §1–§2: signed channel ids (HMAC-SHA1) with HTTP 400 on a bad
signature; NGINX text framing with several records per frame after a 250–400 ms buffering
delay (``buffer_delay=(0, 0)`` for benchmarks); protobuf frames on ``binaryMode=true``; 26-digit
mids and ``mid`` replay of messages published with an expiry; channel TTL and the
``channel_expire`` notice to the old channel when the portal renews it; WebSocket pings.

Emulator strictness beyond ps2: a channel the portal has replaced is *revoked* — a connection
holding only revoked ids is closed with 4010 (ps2 would accept it and the client would hear
nothing). Fault controls: :meth:`drop_connections`, :meth:`close_connections`,
:meth:`restart`, :meth:`renew_channels`, :meth:`send_config_expire`,
:meth:`send_server_restart`, :meth:`send_raw_frame`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from kassa_appliance.emulator.push_channels import (
    Channel,
    ChannelIdError,
    bare_channel_hex,
    iso_time,
    new_channel_hex,
    verify_channel_id,
)
from kassa_appliance.emulator.push_framing import (
    MidCounter,
    StoredMessage,
    jsonrpc_frame,
    protobuf_frame,
    text_frame,
)
from kassa_appliance.emulator.push_http import PublishHttpServer

log = logging.getLogger(__name__)

API_REVISION_WEB = 19
API_REVISION_MOBILE = 3
SHARED_USER = 0
WRONG_CHANNEL_ID = 4010
SERVER_DIE = 1001
_MID_RE = re.compile(r"^[0-9]{26}$")

Mode = Literal["text", "protobuf", "jsonrpc"]


@dataclass(frozen=True)
class PushSettings:
    signature_key: bytes = b"kassa-emulator-push-signature-key"
    version: int = 4
    """4: text (or protobuf on ``binaryMode=true``); 5: JSON-RPC with a JWT."""
    channel_ttl: float = 43205.0
    """CPullChannel::CHANNEL_TTL (12 h + 5 s); compress it to test expiry."""
    config_ttl: float = 86400.0
    """``exp`` of the config answer, seconds after it was issued."""
    buffer_delay: tuple[float, float] = (0.25, 0.4)
    """Random delay before a connection's buffered records go out as one frame."""
    ping_interval: float | None = 120.0
    """WebSocket ping frames (v4); ``None`` disables them."""
    jsonrpc_ping_interval: float = 10.0
    """v5: the text ``ping`` a client must answer with ``pong``."""
    hostname: str = "kassa-emulator.bitrix24.local"
    sub_route: str = "/bitrix/subws/"
    pub_route: str = "/bitrix/pub/"
    max_payload: int = 1_048_576
    store_limit: int = 10_000
    """Stored (replayable) messages kept at most, oldest dropped first."""
    mode: Literal["personal", "shared"] = "personal"
    client_id: str = "emulator-push-client-id"
    """Only used in ``shared`` mode, where the URL must carry ``clientId``."""


@dataclass
class PushStats:
    connections: int = 0
    frames_sent: int = 0
    records_sent: int = 0
    rejected_400: int = 0
    closed_4010: int = 0
    acks: list[str] = field(default_factory=list)
    """v5 ``mack:<mid>`` acknowledgements received."""


@dataclass
class _Subscriber:
    connection: ServerConnection
    channels: frozenset[str]
    mode: Mode
    pending: list[StoredMessage] = field(default_factory=list)
    flush_task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class _Admission:
    channels: frozenset[str]
    mode: Mode
    mid: str | None
    revoked_only: bool


class PushServer:
    def __init__(
        self,
        settings: PushSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings or PushSettings()
        self.stats = PushStats()
        self._clock = clock
        self._rng = rng or random.Random()
        self._mids = MidCounter(clock())
        self._config_timestamp = int(clock())
        self._channels: dict[tuple[str, int], Channel] = {}
        self._revoked: set[str] = set()
        self._store: list[StoredMessage] = []
        self._subscribers: dict[object, _Subscriber] = {}
        self._admissions: dict[object, _Admission] = {}
        self._server: Server | None = None
        self._pub = PublishHttpServer(
            self.settings.pub_route,
            self._publish_raw,
            self._channel_stats,
            max_payload=self.settings.max_payload,
        )
        self._host = "127.0.0.1"
        self.port = 0
        self.pub_port = 0

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0, pub_port: int = 0) -> None:
        self._host = host
        await self._listen(port)
        self.pub_port = await self._pub.start(host, pub_port)

    async def stop(self) -> None:
        await self._close_listener(code=SERVER_DIE, reason="server stopped")
        await self._pub.stop()

    @property
    def websocket_url(self) -> str:
        return f"ws://{self._host}:{self.port}{self.settings.sub_route}"

    @property
    def publish_url(self) -> str:
        return f"http://{self._host}:{self.pub_port}{self.settings.pub_route}"

    async def _listen(self, port: int) -> None:
        self._server = await serve(
            self._handle,
            self._host,
            port,
            process_request=self._admit,
            ping_interval=self.settings.ping_interval,
            ping_timeout=self.settings.ping_interval,
            max_size=self.settings.max_payload,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self, *, code: int, reason: str) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close(close_connections=False)
        await self.close_connections(code, reason)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)

    # ---- the portal side: channels and the config answer ------------------------------

    def channel_config(self, user_id: int, *, client_id: str = "app") -> dict[str, Any]:
        """The ``result`` of ``pull.application.config.get`` for one user of one app.

        Channels older than the TTL are renewed here, like ``CPullChannel::Get`` with
        REOPEN=Y: the old channel gets ``channel_expire`` and is revoked.
        """
        now = self._clock()
        key = self.settings.signature_key
        shared = self._current_channel(client_id, SHARED_USER)
        channels: dict[str, dict[str, str]] = {"shared": shared.describe(key)}
        result: dict[str, Any] = {
            "server": self._server_section(),
            "api": {"revision_web": API_REVISION_WEB, "revision_mobile": API_REVISION_MOBILE},
            "channels": channels,
            "exp": int(now + self.settings.config_ttl),
        }
        private = self._current_channel(client_id, user_id)
        if self.settings.version >= 5:
            result["jwt"] = self._jwt(user_id, [private.private_hex, shared.private_hex], now)
        else:
            channels["private"] = private.describe(key)
        if private.public_hex is not None:
            result["publicChannels"] = {
                str(user_id): {
                    "user_id": user_id,
                    "public_id": private.public_hex,
                    "signature": private.describe(key)["public_id"].split(".")[1],
                    "start": iso_time(private.start),
                    "end": iso_time(private.end),
                }
            }
        if self.settings.mode == "shared":
            result["clientId"] = self.settings.client_id
        return result

    def _server_section(self) -> dict[str, Any]:
        ws = self.websocket_url
        poll = ws.replace("ws://", "http://").replace(self.settings.sub_route, "/bitrix/sub/")
        return {
            "version": self.settings.version,
            "server_enabled": True,
            "mode": self.settings.mode,
            "hostname": self.settings.hostname,
            "long_polling": poll,
            "long_pooling_secure": poll,
            "websocket_enabled": True,
            "websocket": ws,
            "websocket_secure": ws,
            "publish_enabled": False,
            "publish": f"http://{self._host}:{self.pub_port}/bitrix/rest/",
            "publish_secure": f"http://{self._host}:{self.pub_port}/bitrix/rest/",
            "config_timestamp": self._config_timestamp,
        }

    def _current_channel(self, client_id: str, user_id: int) -> Channel:
        now = self._clock()
        owner = (client_id, user_id)
        channel = self._channels.get(owner)
        if channel is not None and channel.end > now:
            return channel
        fresh = Channel(
            private_hex=new_channel_hex(),
            # v≤3 private ids are "<private>.<sig>"; v4 adds ":<public>" (notes §1.2).
            public_hex=None
            if user_id == SHARED_USER or self.settings.version <= 3
            else new_channel_hex(),
            start=float(int(now)),
            end=float(int(now + self.settings.channel_ttl)),  # as advertised: whole seconds
            type="shared" if user_id == SHARED_USER else "private",
        )
        self._channels[owner] = fresh
        if channel is not None:
            self._expire(channel, fresh)
        return fresh

    def _expire(self, old: Channel, fresh: Channel) -> None:
        key = self.settings.signature_key
        params: dict[str, Any] = {
            "action": "reconnect" if old.type == "shared" else "get_config",
            "channel": {"id": old.signed_id(key), "type": old.type},
        }
        if old.type == "shared":
            params["new_channel"] = fresh.describe(key)
        self._send_system([old.private_hex], "channel_expire", params)
        self._revoked.add(old.private_hex)

    def renew_channels(self, *, client_id: str | None = None) -> None:
        """Fault control: expire every current channel now (the next config call renews;
        the old channels are told ``channel_expire`` at once)."""
        for (owner_client, user_id), channel in list(self._channels.items()):
            if client_id is None or owner_client == client_id:
                expired = Channel(
                    channel.private_hex, channel.public_hex, channel.start, 0.0, channel.type
                )
                self._channels[(owner_client, user_id)] = expired
                self._current_channel(owner_client, user_id)

    def _jwt(self, user_id: int, channels: list[str], now: float) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {
            "iss": self.settings.hostname,
            "iat": int(now),
            "exp": int(now + 12 * 3600),
            "sub": str(user_id),
            "chan": channels,
        }
        body = b64(json.dumps(claims).encode())
        signature = hmac.new(
            self.settings.signature_key, f"{header}.{body}".encode(), hashlib.sha256
        ).digest()
        return f"{header}.{body}.{b64(signature)}"

    def _verify_jwt(self, token: str) -> frozenset[str]:
        parts = token.split(".")
        if len(parts) != 3:
            raise ChannelIdError("token is not a JWT")
        expected = hmac.new(
            self.settings.signature_key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256
        ).digest()
        signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        if not hmac.compare_digest(expected, signature):
            raise ChannelIdError("token signature is wrong")
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        if int(claims.get("exp", 0)) < self._clock():
            raise ChannelIdError("token has expired")
        return frozenset(str(channel) for channel in claims.get("chan", []))

    # ---- publishing ------------------------------------------------------------------

    async def publish(
        self, channel_ids: Iterable[str], message: dict[str, Any] | str, *, expiry: int = 86400
    ) -> str:
        """Publish one body to channels (signed, ``priv:pub`` or bare ids); returns its mid.

        A ``str`` body is sent verbatim, so tests can publish malformed payloads."""
        body = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
        return self._deliver([bare_channel_hex(cid) for cid in channel_ids], body, expiry)

    async def publish_app_event(
        self,
        command: str,
        params: dict[str, Any] | list[Any],
        *,
        module_id: str = "application",
        user_ids: Iterable[int] | None = None,
        client_id: str = "app",
        expiry: int = 86400,
    ) -> str:
        """What ``pull.application.event.add`` does after validating its input."""
        users = [SHARED_USER] if user_ids is None else list(user_ids)
        channels = [self._current_channel(client_id, user).private_hex for user in users]
        body = {
            "module_id": module_id.lower(),
            "command": command,
            "params": params,
            "extra": self._extra(),
        }
        return self._deliver(channels, json.dumps(body, ensure_ascii=False), expiry)

    # The ``PushBackend`` protocol of the REST half (emulator/rest.py).

    def application_config(self, client_id: str, user_id: int) -> dict[str, Any]:
        return self.channel_config(user_id, client_id=client_id)

    async def publish_application_event(
        self, client_id: str, user_ids: Sequence[int] | None, message: dict[str, Any]
    ) -> None:
        params = message.get("params")
        await self.publish_app_event(
            str(message["command"]),
            params if isinstance(params, dict | list) else {},
            module_id=str(message.get("module_id") or "application"),
            user_ids=user_ids,
            client_id=client_id,
        )

    def _extra(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "server_time": datetime.fromtimestamp(now).astimezone().isoformat(timespec="seconds"),
            "server_time_unix": round(now, 2),
            "server_name": self.settings.hostname,
            "revision_web": API_REVISION_WEB,
            "revision_mobile": API_REVISION_MOBILE,
        }

    async def _publish_raw(self, channel_ids: list[str], body: str, expiry: int) -> None:
        self._deliver([bare_channel_hex(cid) for cid in channel_ids], body, expiry)

    def _send_system(self, channels: list[str], command: str, params: dict[str, Any]) -> None:
        body = {"module_id": "pull", "command": command, "params": params, "extra": self._extra()}
        self._deliver(channels, json.dumps(body), expiry=0)

    def _deliver(self, channels: list[str], body: str, expiry: int) -> str:
        message = StoredMessage(
            mid=self._mids.next(),
            channels=frozenset(channels),
            body=body,
            created=self._clock(),
            expiry=max(0, expiry),
        )
        if message.expiry > 0:
            self._store.append(message)
            self._prune()
        for subscriber in list(self._subscribers.values()):
            if subscriber.channels & message.channels:
                self._enqueue(subscriber, message)
        return message.mid

    def _prune(self) -> None:
        now = self._clock()
        self._store = [m for m in self._store if m.created + m.expiry > now]
        del self._store[: max(0, len(self._store) - self.settings.store_limit)]

    def _enqueue(self, subscriber: _Subscriber, message: StoredMessage) -> None:
        subscriber.pending.append(message)
        if subscriber.flush_task is None:
            low, high = self.settings.buffer_delay
            delay = self._rng.uniform(low, high) if high > 0 else 0.0
            subscriber.flush_task = asyncio.get_running_loop().create_task(
                self._flush_later(subscriber, delay)
            )

    async def _flush_later(self, subscriber: _Subscriber, delay: float) -> None:
        await asyncio.sleep(delay)
        subscriber.flush_task = None
        await self._send(subscriber, subscriber.pending)
        subscriber.pending = []

    async def _send(self, subscriber: _Subscriber, messages: list[StoredMessage]) -> None:
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
            self.stats.frames_sent += 1
            self.stats.records_sent += len(messages)

    def _channel_stats(self, channel_ids: list[str]) -> list[dict[str, object]]:
        infos: list[dict[str, object]] = []
        for channel_id in channel_ids:
            hex_id = bare_channel_hex(channel_id)
            count = sum(1 for s in self._subscribers.values() if hex_id in s.channels)
            infos.append({"channel": hex_id, "subscribers": count})
        return infos

    # ---- the subscriber side -----------------------------------------------------------

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path != self.settings.sub_route:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        try:
            channels = self._requested_channels(query)
        except ChannelIdError as exc:
            self.stats.rejected_400 += 1
            log.info("push emulator: refusing a subscriber: %s", exc)
            return connection.respond(HTTPStatus.BAD_REQUEST, f"{exc}\n")
        mode: Mode = "text"
        if self.settings.version >= 5:
            mode = "jsonrpc"
        elif query.get("binaryMode") == "true":
            mode = "protobuf"
        mid = query.get("mid")
        self._admissions[connection.id] = _Admission(
            channels=channels,
            mode=mode,
            mid=mid if mid and _MID_RE.match(mid) else None,
            revoked_only=channels <= self._revoked,
        )
        return None

    def _requested_channels(self, query: dict[str, str]) -> frozenset[str]:
        if self.settings.version >= 5:
            token = query.get("token", "")
            if not token:
                raise ChannelIdError("token is missing")
            return self._verify_jwt(token)
        if self.settings.mode == "shared" and query.get("clientId") != self.settings.client_id:
            raise ChannelIdError("clientId is missing or wrong")
        raw = query.get("CHANNEL_ID", "")
        ids = [part for part in raw.split("/") if part]
        if not ids:
            raise ChannelIdError("CHANNEL_ID is missing")
        key = self.settings.signature_key
        return frozenset(verify_channel_id(key, channel_id) for channel_id in ids)

    async def _handle(self, connection: ServerConnection) -> None:
        admission = self._admissions.pop(connection.id)
        self.stats.connections += 1
        if admission.revoked_only:
            self.stats.closed_4010 += 1
            await connection.close(WRONG_CHANNEL_ID, "Wrong Channel Id.")
            return
        subscriber = _Subscriber(connection, admission.channels, admission.mode)
        self._subscribers[connection.id] = subscriber
        pinger: asyncio.Task[None] | None = None
        try:
            if admission.mid is not None:
                await self._send(subscriber, self._replay(admission))
            if admission.mode == "jsonrpc":
                pinger = asyncio.create_task(self._jsonrpc_pings(connection))
            async for incoming in connection:
                if isinstance(incoming, str) and incoming.startswith("mack:"):
                    self.stats.acks.append(incoming[5:])
        except ConnectionClosed:
            pass
        finally:
            self._subscribers.pop(connection.id, None)
            if pinger is not None:
                pinger.cancel()
            if subscriber.flush_task is not None:
                subscriber.flush_task.cancel()

    def _replay(self, admission: _Admission) -> list[StoredMessage]:
        assert admission.mid is not None
        now = self._clock()
        return [
            message
            for message in self._store
            if message.mid > admission.mid
            and message.channels & admission.channels
            and message.created + message.expiry > now
        ]

    async def _jsonrpc_pings(self, connection: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await connection.send("ping")
                await asyncio.sleep(self.settings.jsonrpc_ping_interval)

    # ---- fault controls ----------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return len(self._subscribers)

    async def close_connections(self, code: int, reason: str = "") -> None:
        """Close every subscriber with ``code`` (e.g. 4010 Wrong Channel Id)."""
        subscribers = list(self._subscribers.values())
        if code == WRONG_CHANNEL_ID:
            self.stats.closed_4010 += len(subscribers)
        await asyncio.gather(
            *(s.connection.close(code, reason) for s in subscribers), return_exceptions=True
        )

    async def drop_connections(self) -> None:
        """Cut every subscriber's TCP connection without a close frame (client sees 1006)."""
        for subscriber in list(self._subscribers.values()):
            transport = subscriber.connection.transport
            if transport is not None:
                transport.abort()

    async def restart(self, down_for: float = 0.5) -> None:
        """Close everyone with 1001, refuse connections for ``down_for`` s, listen again on
        the same port. Stored messages survive (ps2 keeps them in Redis)."""
        port = self.port
        await self._close_listener(code=SERVER_DIE, reason="server restart")
        await asyncio.sleep(down_for)
        await self._listen(port)

    async def send_config_expire(self) -> None:
        """Bump ``config_timestamp`` and tell every connected client ``config_expire``."""
        self._config_timestamp += 1
        self._send_system(self._connected_channels(), "config_expire", {})

    async def send_server_restart(self) -> None:
        self._send_system(self._connected_channels(), "server_restart", {})

    async def send_raw_frame(self, frame: str | bytes) -> None:
        """Send one arbitrary frame to every subscriber (malformed-input tests)."""
        await asyncio.gather(
            *(s.connection.send(frame) for s in self._subscribers.values()),
            return_exceptions=True,
        )

    def _connected_channels(self) -> list[str]:
        return sorted({hex_id for s in self._subscribers.values() for hex_id in s.channels})
