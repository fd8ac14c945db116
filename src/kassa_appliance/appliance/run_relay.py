"""Runs the cloud relay connection (NATS JetStream) inside the daemon, when configured.

The consumer takes this kassa's checks into the journal; results go back through the
reply-delivery worker, which every daemon runs (senders ``relay`` and ``cashbox`` are
registered with it): exactly once, resumed after a crash, one mechanism for every channel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from kassa_appliance.aio import stop_tasks
from kassa_appliance.appliance.channel_context import ChannelContext
from kassa_appliance.channels.relay.consumer import RelayConsumer
from kassa_appliance.channels.relay.senders import CashboxSender, RelaySender


@contextlib.asynccontextmanager
async def run_relay(context: ChannelContext) -> AsyncIterator[None]:
    """Nothing runs unless ``relay.enabled``."""
    settings = context.config.relay
    if not settings.enabled:
        yield
        return
    engine = context.engine
    delivery = context.shared.get("delivery")
    rest = context.link.rest if context.link is not None else None
    kassa = settings.kassa or context.config.kassa.id
    consumer = RelayConsumer(
        settings,
        kassa,
        engine.journal,
        engine.wake,
        needs_report=False,
        cashbox_target=rest is not None,
    )
    if delivery is None:  # the daemon always runs it (appliance/channels.py)
        raise RuntimeError("the relay channel needs the reply-delivery worker")
    delivery.register_sender(RelaySender(lambda: consumer.results))
    if rest is not None:
        delivery.register_sender(CashboxSender(rest))
    consumer.on_submitted = lambda _job_id: delivery.wake()
    tasks = [asyncio.create_task(consumer.run(), name="relay-consumer")]

    def snapshot() -> dict[str, object]:
        status = consumer.snapshot()
        status["results"] = "delivery worker"
        return status

    context.add_status_section("relay", snapshot)
    try:
        yield
    finally:
        await stop_tasks(tasks, ignore_errors=True)
        await consumer.close()
