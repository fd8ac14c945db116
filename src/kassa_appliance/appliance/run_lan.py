"""Runs the LAN API (Web Requests and KKMServer compatible) in the daemon, when configured.

With a Bitrix24 link and the reply-delivery worker (``context.shared["delivery"]``), LAN
jobs carry the ``outbox`` reply target and the :class:`OutboxSender` is registered, so
each one is mirrored into KASSAJOB; without either, LAN jobs are simply not mirrored.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from kassa_appliance.appliance.channel_context import ChannelContext
from kassa_appliance.channels.lan.outbox import OutboxSender
from kassa_appliance.channels.lan.server import LanServer

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def run_lan(context: ChannelContext) -> AsyncIterator[None]:
    """Nothing runs unless ``lan.enabled``."""
    config = context.config.lan
    if not config.enabled:
        yield
        return
    delivery = context.shared.get("delivery")
    mirror = False
    if context.link is not None and delivery is not None:
        delivery.register_sender(OutboxSender(context.link.rest, context.config.kassa.id))
        mirror = True
    elif context.link is not None:
        log.info("LAN API: no reply delivery running; LAN jobs are not mirrored to Bitrix24")
    server = LanServer(
        config,
        context.engine,
        context.data_dir,
        kassa=context.config.kassa.id,
        usb_path=context.config.register.usb_path,
        mirror=mirror,
    )
    await server.start()
    context.add_status_section("lan", server.status)
    try:
        yield
    finally:
        await server.stop()
