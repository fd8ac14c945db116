"""Runs reply delivery (channels/delivery) inside the daemon.

Always started, with or without a Bitrix24 link: the deliveries of jobs printed here (LAN,
relay) need no portal; only the outcomes of jobs handed to the Bitrix24 outbox and printed
by another kassa are read through the link's REST client (and its one budget).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from kassa_appliance.appliance.channel_context import ChannelContext
from kassa_appliance.channels.delivery.worker import DeliveryWorker

STATUS_SECTION = "delivery"


@contextlib.asynccontextmanager
async def run_delivery(context: ChannelContext) -> AsyncIterator[None]:
    def status_changed() -> None:
        # Adding the section again makes the status file write the latest status now
        # (throttled by the writer): the ledger changes while the engine is idle too.
        context.add_status_section(STATUS_SECTION, worker.status)

    worker = DeliveryWorker(
        context.engine.journal.path,
        kassa_id=context.config.kassa.id,
        rest=None if context.link is None else context.link.rest,
        on_change=status_changed,
    )
    context.engine.add_listener(worker.on_engine_change)
    context.shared["delivery"] = worker
    context.add_status_section(STATUS_SECTION, worker.status)
    worker.start()
    try:
        yield
    finally:
        await worker.stop()
