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

from kassa_appliance.appliance.channel_context import ChannelContext
from kassa_appliance.channels.maxbot.bot import MaxBot

log = logging.getLogger(__name__)

RESUME_SECONDS = 30.0
"""How often the engine takes up jobs left "creating" and replies left unsent."""
STORE_KEY = "conversation_store"
"""``context.shared`` name of the one conversation store both bots use."""


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
    from kassa_appliance.channels.conversation.service import ConversationService
    from kassa_appliance.channels.conversation.store import ConversationStore

    store = context.shared.get(STORE_KEY)
    if store is None:
        store = context.shared[STORE_KEY] = ConversationStore.open(context.data_dir)
        opened.append(store)
    return ConversationService(
        transport=bot.transport,
        store=store,
        rest=context.link.rest,
        delivery=delivery,
        settings=context.config.maxbot,
    )


async def _resume_now_and_then(service: Any) -> None:
    while True:
        try:
            await service.resume()
        except Exception:
            log.exception("maxbot: resuming the conversations failed; trying again later")
        await asyncio.sleep(RESUME_SECONDS)


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
        tasks.append(asyncio.create_task(_resume_now_and_then(service), name="maxbot-resume"))
    context.add_status_section("maxbot", bot.status)
    context.shared["maxbot"] = bot
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await bot.aclose()
        for store in opened:
            if context.shared.get(STORE_KEY) is store:
                del context.shared[STORE_KEY]
            store.close()
