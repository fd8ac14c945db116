"""The LAN API server: aiohttp.web inside the daemon's event loop.

One aiohttp application serves Atol Web Requests (:mod:`.wr_api`) and KKMServer
(:mod:`.kkm_api`) on ``lan.port`` (and ``lan.kkm-port`` when set), over TLS when
``lan.tls-cert``/``lan.tls-key`` are given. Bodies are capped at
:data:`~kassa_appliance.inputs.MAX_TASK_BYTES` (413 beyond), every request passes the
access rules of :mod:`.security`, and the dispatcher of :mod:`.queue` runs beside it.
A port that cannot be opened is logged and shown in ``status``; the daemon stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from kassa_appliance.channels.lan.bodies import LanContext
from kassa_appliance.channels.lan.kkm_api import KkmApi
from kassa_appliance.channels.lan.queue import LanQueue
from kassa_appliance.channels.lan.security import Access, access_middleware, error_middleware
from kassa_appliance.channels.lan.settings import LanConfig
from kassa_appliance.channels.lan.state import LanState
from kassa_appliance.channels.lan.store import FILE_NAME, LanStore
from kassa_appliance.channels.lan.wr_api import WebRequestsApi
from kassa_appliance.fiscal.engine import Engine
from kassa_appliance.inputs import MAX_TASK_BYTES

log = logging.getLogger(__name__)


def tls_context(config: LanConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


class LanServer:
    def __init__(
        self,
        config: LanConfig,
        engine: Engine,
        data_dir: Path,
        *,
        kassa: str,
        usb_path: str,
        mirror: bool,
    ) -> None:
        self.config = config
        self.store = LanStore(data_dir / FILE_NAME)
        self.queue = LanQueue(engine, self.store, mirror=mirror)
        self.state = LanState.load(data_dir, default_name=f"Касса {kassa}")
        self.context = LanContext(self.queue, self.state, kassa, usb_path)
        self.access = Access(config)
        self.mirror = mirror
        self.listening: list[str] = []
        self.problems: list[str] = []
        self._runner: web.AppRunner | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._stopped = False

    def application(self) -> web.Application:
        app = web.Application(
            client_max_size=MAX_TASK_BYTES,
            middlewares=[error_middleware, access_middleware(self.access)],
        )
        app.add_routes(WebRequestsApi(self.context).routes())
        app.add_routes(KkmApi(self.context).routes())
        return app

    async def start(self) -> None:
        self._dispatcher = asyncio.create_task(self.queue.run(), name="lan-dispatcher")
        self._runner = web.AppRunner(
            self.application(), access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        try:
            tls = tls_context(self.config)
        except (OSError, ssl.SSLError) as error:
            self.problems.append(f"TLS certificate or key cannot be loaded: {error}")
            log.error("LAN API not started: %s", self.problems[-1])
            return
        scheme = "https" if tls else "http"
        ports = [self.config.port] + ([self.config.kkm_port] if self.config.kkm_port else [])
        for port in ports:
            site = web.TCPSite(self._runner, self.config.bind, port, ssl_context=tls)
            try:
                await site.start()
            except OSError as error:
                self.problems.append(f"cannot listen on {self.config.bind}:{port}: {error}")
                log.error("LAN API: %s", self.problems[-1])
                continue
            self.listening.append(f"{scheme}://{self.config.bind}:{port}")
        if self.listening:
            log.info("LAN API listening on %s", ", ".join(self.listening))
        if self.config.trusted_clients:
            log.warning(
                "LAN API: clients %s may call WITHOUT credentials (lan.trusted-clients)",
                ", ".join(self.config.trusted_clients),
            )

    async def stop(self) -> None:
        self._stopped = True
        self.queue.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._dispatcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        self.store.close()

    def status(self) -> dict[str, Any]:
        """The ``lan`` section of ``status.json`` (read after the engine's journal is closed
        too, when the daemon writes its last status: then it reads nothing)."""
        if self._stopped:
            return {"listening": [], "stopped": True}
        block = self.queue.block()
        section: dict[str, Any] = {
            "listening": list(self.listening),
            "problems": list(self.problems),
            "auth": "basic" if self.config.secured_by_password else "none",
            "device_active": self.state.active,
            "pending_requests": self.queue.pending_requests,
            "blocked": block.client_id if block.is_blocked else None,
            "failed_logins": self.access.failed_logins,
            "locked_out_addresses": self.access.throttle.locked_addresses(),
            "mirrored_to_bitrix24": self.mirror,
        }
        if self.config.trusted_clients:
            section["warning"] = "trusted clients may call without credentials: " + ", ".join(
                self.config.trusted_clients
            )
            section["trusted_calls"] = self.access.trusted_calls
        return section
