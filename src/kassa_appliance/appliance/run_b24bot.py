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

from kassa_appliance.aio import stop_tasks
from kassa_appliance.appliance.bot_conversations import (
    keep_resuming,
    release_conversation_store,
    take_conversation_store,
)
from kassa_appliance.appliance.channel_context import ChannelContext
from kassa_appliance.channels.b24bot.host import BotHost
from kassa_appliance.channels.conversation.service import ConversationService
from kassa_appliance.channels.conversation.store import ConversationStore

log = logging.getLogger(__name__)


RESUME_INTERVAL = 5.0
"""Seconds between the conversation engine's resume passes (jobs left "creating", replies
left unsent), besides the ones each update triggers."""


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
        conversations, opened = take_conversation_store(context)
        store = conversations if opened else None
        service = ConversationService(
            transport=host.transport,
            store=conversations,
            rest=context.link.rest,
            delivery=delivery,
            settings=config,
        )
        host.handle = service.handle
        tasks.append(
            asyncio.create_task(
                keep_resuming(service, "b24bot", RESUME_INTERVAL), name="b24bot-resume"
            )
        )
    context.add_status_section("b24bot", host.status)
    context.shared["b24bot"] = host
    try:
        yield
    finally:
        await stop_tasks(tasks)
        if store is not None:  # opened here: closed here
            release_conversation_store(context, store)
