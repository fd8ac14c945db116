"""Runs the Bitrix24 chat bot (imbot.v2) this appliance hosts inside the daemon, when configured.

With ``b24bot.enabled`` and a Bitrix24 link: the bot host (channels/b24bot/host.py) registers
or finds the bot and polls its events through the link's REST client; the ``b24chat`` reply
sender is registered with the delivery worker (``context.shared["delivery"]``); every update
goes to the conversation engine (``ConversationService.handle``). Its state shows under
``b24bot`` in ``status.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from kassa_appliance.appliance.channel_context import ChannelContext
from kassa_appliance.channels.b24bot.host import BotHost
from kassa_appliance.channels.conversation.service import ConversationService
from kassa_appliance.channels.conversation.store import ConversationStore

STORE_KEY = "conversation_store"
"""Where the bots share their one :class:`ConversationStore` (``context.shared``)."""

log = logging.getLogger(__name__)


RESUME_INTERVAL = 5.0
"""Seconds between the conversation engine's resume passes (jobs left "creating", replies
left unsent), besides the ones each update triggers."""


async def keep_resuming(service: ConversationService) -> None:
    while True:
        try:
            await service.resume()
        except Exception as error:  # the next pass tries again
            log.warning("b24bot: resuming conversations failed: %s", error)
        await asyncio.sleep(RESUME_INTERVAL)


@contextlib.asynccontextmanager
async def run_b24bot(context: ChannelContext) -> AsyncIterator[None]:
    """Nothing runs unless ``b24bot.enabled``."""
    config = context.config.b24bot
    if not config.enabled:
        yield
        return
    if context.link is None:
        log.warning("b24bot.enabled is set but no Bitrix24 portal is configured: no chat bot")
        yield
        return
    host = BotHost(context.link.rest, context.data_dir, config)
    tasks = [asyncio.create_task(host.run(), name="b24bot")]
    delivery = context.shared.get("delivery")
    store: ConversationStore | None = None
    if delivery is None:
        log.warning(
            "b24bot: reply delivery is not running; the bot does not take receipts"
            " (nothing would bring the QR code back to the chat)"
        )
    else:
        delivery.register_sender(host.sender)
        # One store for both bots (run_maxbot takes it from here when it starts second).
        shared_store = context.shared.get(STORE_KEY)
        if isinstance(shared_store, ConversationStore):
            store = None
            conversations = shared_store
        else:
            store = conversations = context.shared[STORE_KEY] = ConversationStore.open(
                context.data_dir
            )
        service = ConversationService(
            transport=host.transport,
            store=conversations,
            rest=context.link.rest,
            delivery=delivery,
            settings=config,
        )
        host.handle = service.handle
        tasks.append(asyncio.create_task(keep_resuming(service), name="b24bot-resume"))
    context.add_status_section("b24bot", host.status)
    context.shared["b24bot"] = host
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if store is not None:  # opened here: closed here
            if context.shared.get(STORE_KEY) is store:
                del context.shared[STORE_KEY]
            store.close()
        if store is not None:
            store.close()
