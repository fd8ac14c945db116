"""The MAX Bot API emulator as a server: an aiohttp application (:func:`make_app`) and
:class:`MaxApiEmulator`, which serves it on loopback from a background thread with its own
event loop (for the tests, the bench and ``kassa-appliance max-emulator``)."""

from __future__ import annotations

import socket
import ssl

from aiohttp import web

from kassa_appliance.testbeds.maxapi.api import BotApi
from kassa_appliance.testbeds.maxapi.controls import Controls
from kassa_appliance.testbeds.maxapi.state import MaxState
from kassa_appliance.testbeds.threaded_site import SHUTDOWN_SECONDS, ThreadedSite

MAX_BODY_BYTES = 8 * 1024 * 1024
"""Request bodies above this get 413 (an upload of the QR image is a few KB)."""


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
        self._site = ThreadedSite(self._socket, "max-emulator", tls=tls)

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"{'https' if self._tls else 'http'}://{host!s}:{port}"

    def start(self) -> MaxApiEmulator:
        self._site.start(self._make_runner)
        return self

    def _make_runner(self) -> web.BaseRunner:
        self.state = MaxState(self._token)
        return web.AppRunner(
            make_app(self.state), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
        )

    def stop(self) -> None:
        if not self._site.running:
            return
        self._site.stop()
        self._socket.close()

    def __enter__(self) -> MaxApiEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
