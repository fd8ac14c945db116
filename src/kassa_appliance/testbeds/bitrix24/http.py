"""A small HTTP/1.1 server on asyncio streams (keep-alive, Content-Length bodies).

Enough for httpx and curl talking to the emulator on loopback, and fast: no framework,
one task per connection. A handler may return None to drop the connection without an
answer (fault injection).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Request bodies over this are answered 413, as nginx's ``client_max_body_size`` does in
front of a portal. Bitrix24 documents no REST body limit; 8 MiB is our choice (the
emulator's former hard limit), adjustable per server for tests."""
DRAIN_LIMIT = 64 * 1024 * 1024
"""An oversize body up to this is read (and dropped) before the 413, so the client sees
the answer instead of a reset connection; a larger one just closes the connection."""
TOO_LARGE_BODY = b"<html><head><title>413 Request Entity Too Large</title></head></html>"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    oversize: int = 0
    """Bytes of a body over the limit (not kept); 0 for a normal request."""
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


class HttpServer:
    def __init__(self, handler: Handler, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._handler = handler
        self.max_body_bytes = max_body_bytes
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (pass 0 for an ephemeral one)."""
        self._server = await asyncio.start_server(self._serve, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._connections):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        try:
            while True:
                request = await _read_request(reader, self.max_body_bytes, peer)
                if request is None:
                    return
                if request.oversize:
                    too_large = Response(413, TOO_LARGE_BODY, "text/html")
                    writer.write(_encode(too_large, keep_alive=False))
                    await writer.drain()
                    return
                response = await self._handler(request)
                if response is None:  # fault: drop the connection unanswered
                    transport = writer.transport
                    transport.abort()
                    return
                keep_alive = request.headers.get("connection", "").lower() != "close"
                writer.write(_encode(response, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        except asyncio.CancelledError:  # server shutting down: end quietly
            return
        except Exception:
            log.exception("emulator HTTP handler crashed")
            return
        finally:
            self._connections.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()


async def _read_request(
    reader: asyncio.StreamReader, max_body: int, peer: str = ""
) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise ValueError("request head too large") from None
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError("request head too large")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if length > max_body:
            if length > DRAIN_LIMIT:
                raise ValueError("request body too large")
            left = length
            while left:
                left -= len(await reader.readexactly(min(left, 1024 * 1024)))
            path, _, query = target.partition("?")
            return Request(method.upper(), path, query, headers, b"", oversize=length, peer=peer)
        body = await reader.readexactly(length)
    path, _, query = target.partition("?")
    return Request(method.upper(), path, query, headers, body, peer=peer)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _encode(response: Response, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    lines.extend(f"{name}: {value}" for name, value in response.headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body
