"""Runs the cloud relay connection (NATS JetStream) inside the daemon, when configured.

The consumer takes this kassa's checks into the journal; results go back through the
reply-delivery worker when the daemon runs one (senders ``relay`` and ``cashbox`` are
registered with it), otherwise through the channel's own :class:`ResultPublisher`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from kassa_appliance.appliance.channel_context import ChannelContext
from kassa_appliance.channels.relay.consumer import RelayConsumer
from kassa_appliance.channels.relay.publisher import ResultPublisher
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
    tasks = [asyncio.create_task(consumer.run(), name="relay-consumer")]
    publisher: ResultPublisher | None = None
    if delivery is not None:
        delivery.register_sender(RelaySender(lambda: consumer.results))
        if rest is not None:
            delivery.register_sender(CashboxSender(rest))
        consumer.on_submitted = lambda _job_id: delivery.wake()
    else:
        publisher = ResultPublisher(consumer, engine.journal, rest)
        consumer.on_submitted = publisher.track
        engine.add_listener(publisher.on_engine_change)
        tasks.append(asyncio.create_task(publisher.run(), name="relay-results"))

    def snapshot() -> dict[str, object]:
        status = consumer.snapshot()
        status["results"] = "delivery worker" if publisher is None else publisher.published
        return status

    context.add_status_section("relay", snapshot)
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await consumer.close()
