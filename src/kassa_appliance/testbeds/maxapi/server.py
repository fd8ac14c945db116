"""The MAX Bot API emulator as a server: an aiohttp application (:func:`make_app`) and
:class:`MaxApiEmulator`, which serves it on loopback from a background thread with its own
event loop (for the tests, the bench and ``kassa-appliance max-emulator``)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading

from aiohttp import web

from kassa_appliance.testbeds.maxapi.api import BotApi
from kassa_appliance.testbeds.maxapi.controls import Controls
from kassa_appliance.testbeds.maxapi.state import MaxState

MAX_BODY_BYTES = 8 * 1024 * 1024
"""Request bodies above this get 413 (an upload of the QR image is a few KB)."""
_SHUTDOWN_SECONDS = 1.0


def make_app(state: MaxState) -> web.Application:
    api = BotApi(state)
    app = web.Application(middlewares=[api.middleware], client_max_size=MAX_BODY_BYTES)
    app.add_routes(api.routes())
    app.add_routes(Controls(state).routes())
    return app


class MaxApiEmulator:
    """``port=0`` picks a free port (see :attr:`url`); the socket is bound at once. With
    ``tls`` it serves https (the tests check that the bot verifies certificates)."""

    def __init__(
        self,
        token: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._socket = socket.create_server((host, port))
        self._token = token
        self._tls = tls
        self.state: MaxState | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"{'https' if self._tls else 'http'}://{host!s}:{port}"

    def start(self) -> MaxApiEmulator:
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="max-emulator", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=10)
        return self

    async def _serve(self) -> None:
        self.state = MaxState(self._token)
        runner = web.AppRunner(
            make_app(self.state), access_log=None, shutdown_timeout=_SHUTDOWN_SECONDS
        )
        await runner.setup()
        await web.SockSite(runner, self._socket, ssl_context=self._tls).start()
        self._runner = runner

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        loop = self._loop
        asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        loop.close()
        self._loop = None
        self._socket.close()

    def __enter__(self) -> MaxApiEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
