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

This module owns the server itself — lifecycle, the portal side (channels, their renewal and
the config answer) and publishing. Connections are
:mod:`~kassa_appliance.testbeds.bitrix24.push_subscribers`, the replay store
:mod:`~kassa_appliance.testbeds.bitrix24.push_history`, the v5 JWT
:mod:`~kassa_appliance.testbeds.bitrix24.push_tokens`, settings and counters
:mod:`~kassa_appliance.testbeds.bitrix24.push_settings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from websockets.asyncio.server import Server, serve

from kassa_appliance.testbeds.bitrix24.push_channels import (
    Channel,
    bare_channel_hex,
    iso_time,
    new_channel_hex,
)
from kassa_appliance.testbeds.bitrix24.push_framing import MidCounter, StoredMessage
from kassa_appliance.testbeds.bitrix24.push_history import MessageHistory
from kassa_appliance.testbeds.bitrix24.push_http import PublishHttpServer
from kassa_appliance.testbeds.bitrix24.push_settings import PushSettings as PushSettings
from kassa_appliance.testbeds.bitrix24.push_settings import PushStats as PushStats
from kassa_appliance.testbeds.bitrix24.push_subscribers import WRONG_CHANNEL_ID as WRONG_CHANNEL_ID
from kassa_appliance.testbeds.bitrix24.push_subscribers import Mode as Mode
from kassa_appliance.testbeds.bitrix24.push_subscribers import SubscriberHub
from kassa_appliance.testbeds.bitrix24.push_tokens import make_jwt

API_REVISION_WEB = 19
API_REVISION_MOBILE = 3
SHARED_USER = 0
SERVER_DIE = 1001


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
        self._history = MessageHistory(self.settings.store_limit, clock)
        self._hub = SubscriberHub(
            self.settings,
            self.stats,
            history=self._history,
            revoked=self._revoked,
            clock=clock,
            rng=self._rng,
        )
        self._server: Server | None = None
        self._pub = PublishHttpServer(
            self.settings.pub_route,
            self._publish_raw,
            self._hub.channel_stats,
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
            self._hub.handle,
            self._host,
            port,
            process_request=self._hub.admit,
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
            result["jwt"] = make_jwt(
                self.settings.signature_key,
                self.settings.hostname,
                user_id,
                [private.private_hex, shared.private_hex],
                now,
            )
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
            self._history.add(message)
        self._hub.deliver(message)
        return message.mid

    # ---- fault controls ----------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return self._hub.count

    async def close_connections(self, code: int, reason: str = "") -> None:
        """Close every subscriber with ``code`` (e.g. 4010 Wrong Channel Id)."""
        await self._hub.close_all(code, reason)

    async def drop_connections(self) -> None:
        """Cut every subscriber's TCP connection without a close frame (client sees 1006)."""
        self._hub.drop_all()

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
        self._send_system(self._hub.connected_channels(), "config_expire", {})

    async def send_server_restart(self) -> None:
        self._send_system(self._hub.connected_channels(), "server_restart", {})

    async def send_raw_frame(self, frame: str | bytes) -> None:
        """Send one arbitrary frame to every subscriber (malformed-input tests)."""
        await self._hub.send_raw_frame(frame)
