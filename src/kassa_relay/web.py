"""The relay's HTTP surface (aiohttp.web): routes, the body limit, and one answer for every
request — nothing that goes wrong inside a handler reaches the client as a traceback, and
nothing of a request body is ever logged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

from kassa_relay import web_atol, web_b24
from kassa_relay.callbacks import CallbackWorker
from kassa_relay.service import RELAY, Relay

log = logging.getLogger("kassa_relay")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def answer_everything(request: web.Request, handler: Handler) -> web.StreamResponse:
    relay = request.app[RELAY]
    relay.count("requests")
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        relay.count("too_large")
        limit = relay.limits.max_body_bytes
        return web.json_response(
            {
                "ERRORS": [
                    f"request: the body is larger than {limit:,} bytes; expected at most that"
                ]
            },
            status=413,
        )
    except web.HTTPException as error:
        if error.status >= 400:
            relay.count("http_error")
            return web.json_response(
                {"ERRORS": [f"{error.status} {error.reason}: no such endpoint or method"]},
                status=error.status,
            )
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        relay.count("internal_error")
        log.exception("internal error on %s %s", request.method, request.path)
        return web.json_response(
            {"ERRORS": ["the relay could not handle this request; nothing was printed"]},
            status=500,
        )


async def health(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    ok = relay.bus.connected
    return web.json_response({"ok": ok, "counters": relay.counters}, status=200 if ok else 503)


def build_app(relay: Relay, *, callbacks: bool = True) -> web.Application:
    app = web.Application(
        middlewares=[answer_everything], client_max_size=relay.limits.max_body_bytes
    )
    app[RELAY] = relay
    app.on_response_prepare.append(_server_header)
    app.router.add_post("/b24/{tenant}/print", web_b24.print_check)
    app.router.add_post("/b24/{tenant}/check", web_b24.check_status)
    app.router.add_route("*", "/possystem/v5/getToken", web_atol.get_token)
    app.router.add_post("/possystem/v5/{group}/{operation}", web_atol.operation)
    app.router.add_get("/possystem/v5/{group}/report/{uuid}", web_atol.report_status)
    app.router.add_get("/healthz", health)
    if callbacks:
        app.cleanup_ctx.append(_callbacks)
    return app


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = "kassa-relay"  # no library versions for scanners


async def _callbacks(app: web.Application):  # type: ignore[no-untyped-def]
    worker = CallbackWorker(app[RELAY])
    task = asyncio.create_task(worker.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def server_tls(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


async def serve(
    relay: Relay,
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    stop: asyncio.Event,
) -> None:
    runner = web.AppRunner(build_app(relay), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls, backlog=1024)
    await site.start()
    log.info("kassa-relay listening on %s:%s (%s)", host, port, "TLS" if tls else "plain HTTP")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
