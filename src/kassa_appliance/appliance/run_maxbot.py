"""Runs the MAX bot this appliance hosts inside the daemon, when configured.

With ``maxbot.enabled`` (and its token): the bot (channels/maxbot/bot.py) long-polls the
MAX Bot API; every update goes to the conversation engine (``ConversationService.handle``,
docs/chat-bots.md "For bot authors"), which needs the Bitrix24 link (receipts go to the
KASSAJOB outbox) and reply delivery; the ``maxchat`` reply sender is registered with the
delivery worker (``context.shared["delivery"]``). Without a link or delivery the bot still
polls (and says why it does not answer). Its state shows under ``maxbot`` in
``status.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from kassa_appliance.aio import stop_tasks
from kassa_appliance.appliance.bot_conversations import (
    keep_resuming,
    release_conversation_store,
    take_conversation_store,
)
from kassa_appliance.appliance.channel_context import ChannelContext
from kassa_appliance.channels.conversation.service import ConversationService
from kassa_appliance.channels.maxbot.bot import MaxBot

log = logging.getLogger(__name__)

RESUME_SECONDS = 30.0
"""How often the engine takes up jobs left "creating" and replies left unsent."""


def conversation_service(context: ChannelContext, bot: MaxBot, opened: list[Any]) -> Any | None:
    """The conversation engine for this bot, or None (and why, in the log); a store this
    call opened is appended to ``opened`` (closed when the bot stops)."""
    delivery = context.shared.get("delivery")
    if context.link is None:
        log.warning("maxbot: no Bitrix24 portal is configured; messages are not answered")
        return None
    if delivery is None:
        log.warning("maxbot: reply delivery is not running; messages are not answered")
        return None
    store, opened_here = take_conversation_store(context)
    if opened_here:
        opened.append(store)
    return ConversationService(
        transport=bot.transport,
        store=store,
        rest=context.link.rest,
        delivery=delivery,
        settings=context.config.maxbot,
    )


@contextlib.asynccontextmanager
async def run_maxbot(context: ChannelContext) -> AsyncIterator[None]:
    """Nothing runs unless ``maxbot.enabled``."""
    config = context.config.maxbot
    if not config.enabled or config.token is None:
        yield
        return
    bot = MaxBot(config, context.data_dir)
    delivery = context.shared.get("delivery")
    if delivery is None:
        log.warning("maxbot: reply delivery is not running; receipts will not reach the chat")
    else:
        delivery.register_sender(bot.sender)
    opened: list[Any] = []
    service = conversation_service(context, bot, opened)
    tasks = [asyncio.create_task(bot.run(), name="maxbot")]
    if service is not None:
        bot.handle = service.handle
        tasks.append(
            asyncio.create_task(
                keep_resuming(service, "maxbot", RESUME_SECONDS), name="maxbot-resume"
            )
        )
    context.add_status_section("maxbot", bot.status)
    context.shared["maxbot"] = bot
    try:
        yield
    finally:
        await stop_tasks(tasks)
        await bot.aclose()
        for store in opened:
            release_conversation_store(context, store)
