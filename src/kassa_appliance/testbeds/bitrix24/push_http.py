"""The push server's trusted publish endpoint (ps2 ``routes.pub``), on its own port.

The real server runs separate *pub* processes (port 901x) and *sub* processes (801x); a
WebSocket library's HTTP parser only takes GET, so this endpoint is its own aiohttp server:

* ``POST <pub>?CHANNEL_ID=<id>[/<id>…]`` — the raw body is the message; header
  ``Message-Expiry: <s>`` (0/absent: broadcast only, never replayed). 200 empty, 400 on a
  bad/missing CHANNEL_ID, 413 on a body over the payload limit;
* ``GET <pub>?CHANNEL_ID=…`` — channel stats ``{"infos":[{"channel":…,"subscribers":n}]}``.

No signature is checked here (ps2 ``skipSign``); bare, ``priv:pub`` and signed ids are taken.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from kassa_appliance.testbeds.bitrix24.web import SHUTDOWN_SECONDS, BodyTooLarge, read_limited

log = logging.getLogger(__name__)

PublishHandler = Callable[[list[str], str, int], Awaitable[None]]
StatsHandler = Callable[[list[str]], list[dict[str, object]]]


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
        self._runner: web.ServerRunner | None = None

    async def start(self, host: str, port: int) -> int:
        runner = web.ServerRunner(
            web.Server(self._serve, access_log=None), shutdown_timeout=SHUTDOWN_SECONDS
        )
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        return int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        status, body = await self._answer(request)
        response = web.Response(status=status, body=body, content_type="text/plain")
        response.force_close()
        return response

    async def _answer(self, request: web.BaseRequest) -> tuple[int, bytes]:
        if (request.content_length or 0) > self._max_payload:
            return 413, b"payload too large\n"
        try:
            payload, _size = await read_limited(request.content, self._max_payload)
        except BodyTooLarge:
            payload = None
        if payload is None:
            return 413, b"payload too large\n"
        if request.rel_url.path != self._route:
            return 404, b"not found\n"
        channel_list = request.rel_url.query.get("CHANNEL_ID", "")
        channel_ids = [part for part in channel_list.split("/") if part]
        if not channel_ids:
            return 400, b"CHANNEL_ID is missing\n"
        if request.method == "GET":
            return 200, json.dumps({"infos": self._on_stats(channel_ids)}).encode()
        if request.method != "POST":
            return 405, b"only GET and POST\n"
        try:
            expiry = int(request.headers.get("Message-Expiry", "0") or "0")
            await self._on_publish(channel_ids, payload.decode("utf-8"), expiry)
        except ValueError as exc:
            return 400, f"{exc}\n".encode()
        return 200, b""
