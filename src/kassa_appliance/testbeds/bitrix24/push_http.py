"""The push server's trusted publish endpoint (ps2 ``routes.pub``), on its own port.

The real server runs separate *pub* processes (port 901x) and *sub* processes (801x); a
WebSocket library's HTTP parser only takes GET, so this tiny HTTP/1.1 server carries:

* ``POST <pub>?CHANNEL_ID=<id>[/<id>…]`` — the raw body is the message; header
  ``Message-Expiry: <s>`` (0/absent: broadcast only, never replayed). 200 empty, 400 on a
  bad/missing CHANNEL_ID, 413 on a body over the payload limit;
* ``GET <pub>?CHANNEL_ID=…`` — channel stats ``{"infos":[{"channel":…,"subscribers":n}]}``.

No signature is checked here (ps2 ``skipSign``); bare, ``priv:pub`` and signed ids are taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

PublishHandler = Callable[[list[str], str, int], Awaitable[None]]
StatsHandler = Callable[[list[str]], list[dict[str, object]]]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_REASONS |= {413: "Payload Too Large", 500: "Internal Server Error"}


class PublishHttpServer:
    def __init__(
        self,
        route: str,
        on_publish: PublishHandler,
        on_stats: StatsHandler,
        *,
        max_payload: int,
    ) -> None:
        self._route = route
        self._on_publish = on_publish
        self._on_stats = on_stats
        self._max_payload = max_payload
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        port_used: int = self._server.sockets[0].getsockname()[1]
        return port_used

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await self._answer(reader)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            status, body = 400, f"bad request: {exc}\n".encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Length: {len(body)}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + body)
            await writer.drain()
        writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        request_line = (await reader.readline()).decode("latin-1").strip()
        parts = request_line.split(" ")
        if len(parts) != 3:
            return 400, b"malformed request line\n"
        method, target, _version = parts
        headers: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or "0")
        if length > self._max_payload:
            return 413, b"payload too large\n"
        payload = await reader.readexactly(length) if length else b""
        url = urlsplit(target)
        if url.path != self._route:
            return 404, b"not found\n"
        channel_list = parse_qs(url.query).get("CHANNEL_ID", [""])[0]
        channel_ids = [part for part in channel_list.split("/") if part]
        if not channel_ids:
            return 400, b"CHANNEL_ID is missing\n"
        if method == "GET":
            return 200, json.dumps({"infos": self._on_stats(channel_ids)}).encode()
        if method != "POST":
            return 405, b"only GET and POST\n"
        expiry = int(headers.get("message-expiry", "0") or "0")
        try:
            await self._on_publish(channel_ids, payload.decode("utf-8"), expiry)
        except ValueError as exc:
            return 400, f"{exc}\n".encode()
        return 200, b""
