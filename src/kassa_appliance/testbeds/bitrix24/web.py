"""The emulator's HTTP front: aiohttp's low-level server (``aiohttp.web.Server``) handing each
request to the emulator as a small immutable :class:`Request` and taking a :class:`Response`.

aiohttp does the protocol (keep-alive, ``Connection: close``, chunked bodies, pipelining);
this module adds what the portal's web server does in front of Bitrix24 and what the tests
rely on:

* a body over :attr:`WebServer.max_body_bytes` is read to its end (up to
  :data:`DRAIN_LIMIT`) and answered 413 with ``Connection: close``, as nginx's
  ``client_max_size`` does, so the client sees the answer rather than a reset connection;
* a handler that returns None drops the connection without an answer (fault injection);
* :attr:`Request.peer` is the client's IP address (what the rate limit is keyed by).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import StreamReader, web

log = logging.getLogger(__name__)

MAX_HEAD_LINE_BYTES = 64 * 1024
"""A request line or header line up to this is taken (aiohttp's default is 8 KiB; a REST
call by GET carries its parameters in the query)."""
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Request bodies over this are answered 413, as nginx's ``client_max_body_size`` does in
front of a portal. Bitrix24 documents no REST body limit; 8 MiB is our choice (the
emulator's former hard limit), adjustable per server for tests."""
DRAIN_LIMIT = 64 * 1024 * 1024
"""An oversize body up to this is read (and dropped) before the 413, so the client sees
the answer instead of a reset connection; a larger one just closes the connection."""
TOO_LARGE_BODY = b"<html><head><title>413 Request Entity Too Large</title></head></html>"
SHUTDOWN_SECONDS = 1.0
"""How long :meth:`WebServer.stop` lets running handlers finish before cancelling them."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    """The path as sent (still percent-encoded), without the query."""
    query: str
    """The raw query string (PHP-style parsing is the caller's)."""
    headers: dict[str, str]
    """Header names lower-cased; a repeated header keeps its last value."""
    body: bytes
    peer: str = ""
    """The client's IP address (what the portal's rate limit is keyed by)."""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any) -> Response:
        return cls(status, json.dumps(payload, ensure_ascii=False).encode())


Handler = Callable[[Request], Awaitable[Response | None]]


class BodyTooLarge(Exception):
    """The body passed :data:`DRAIN_LIMIT`: not worth reading, drop the connection."""


async def read_limited(content: StreamReader, limit: int) -> tuple[bytes | None, int]:
    """Read a request body to its end: ``(body, size)``, body None when ``size > limit``
    (the rest is read and dropped). Raises :class:`BodyTooLarge` past :data:`DRAIN_LIMIT`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > DRAIN_LIMIT:
            raise BodyTooLarge(size)
        if size <= limit:
            chunks.append(chunk)
        else:
            chunks.clear()
    return (b"".join(chunks) if size <= limit else None), size


def drop(request: web.BaseRequest) -> web.StreamResponse:
    """Close the connection without an answer; aiohttp's write of the returned placeholder
    then fails quietly (the client sees a reset connection)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response()


def too_large() -> web.Response:
    response = web.Response(status=413, body=TOO_LARGE_BODY, content_type="text/html")
    response.force_close()
    return response


class WebServer:
    def __init__(self, handler: Handler, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._handler = handler
        self.max_body_bytes = max_body_bytes
        self._runner: web.ServerRunner | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (pass 0 for an ephemeral one)."""
        server = web.Server(
            self._serve,
            access_log=None,
            max_line_size=MAX_HEAD_LINE_BYTES,
            max_field_size=MAX_HEAD_LINE_BYTES,
        )
        runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_SECONDS)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        return int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _serve(self, raw: web.BaseRequest) -> web.StreamResponse:
        try:
            body, _size = await read_limited(raw.content, self.max_body_bytes)
        except BodyTooLarge:
            return drop(raw)
        if body is None:
            return too_large()
        request = Request(
            method=raw.method.upper(),
            path=raw.rel_url.raw_path,
            query=raw.rel_url.raw_query_string,
            headers={name.lower(): value for name, value in raw.headers.items()},
            body=body,
            peer=raw.remote or "",
        )
        response = await self._handler(request)
        if response is None:  # fault: drop the connection unanswered
            return drop(raw)
        headers = {"Content-Type": response.content_type, **response.headers}
        return web.Response(status=response.status, body=response.body, headers=headers)
