"""An aiohttp server on its own event loop in a background thread: how the emulators the
tests, the bench and the CLI start in-process serve (``maxapi``, ``webrequests``).

The caller binds the socket (so its port, and the emulator's ``url``, hold before
:meth:`ThreadedSite.start`) and gives a function that builds the aiohttp runner; it is
called on the server's own loop, so state holding asyncio objects belongs to that loop.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Callable

from aiohttp import web

SHUTDOWN_SECONDS = 1.0
"""How long a stopping server waits for requests in flight (the runner's shutdown_timeout)."""
_START_STOP_SECONDS = 10


class ThreadedSite:
    def __init__(
        self, sock: socket.socket, thread_name: str, *, tls: ssl.SSLContext | None = None
    ) -> None:
        self._socket = sock
        self._thread_name = thread_name
        self._tls = tls
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.BaseRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._loop is not None

    def start(self, make_runner: Callable[[], web.BaseRunner]) -> None:
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=loop.run_forever, name=self._thread_name, daemon=True
        )
        self._thread.start()
        serving = asyncio.run_coroutine_threadsafe(self._serve(make_runner), loop)
        serving.result(timeout=_START_STOP_SECONDS)

    async def _serve(self, make_runner: Callable[[], web.BaseRunner]) -> None:
        runner = make_runner()
        await runner.setup()
        await web.SockSite(runner, self._socket, ssl_context=self._tls).start()
        self._runner = runner

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def stop(self) -> None:
        """Stop serving and end the thread and its loop (the socket stays the caller's)."""
        if self._thread is None or self._loop is None:
            return
        loop = self._loop
        asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=_START_STOP_SECONDS)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=_START_STOP_SECONDS)
        self._thread = None
        loop.close()
        self._loop = None
