"""What the two chat-bot runners (``run_b24bot``, ``run_maxbot``) share around the
conversation engine: the one :class:`ConversationStore` both bots use, and the loop that
has the engine take up what a restart left behind.

The store lives in ``context.shared[STORE_KEY]``: the bot that starts first opens it, the
other takes it from there, and the one that opened it closes it when it stops.
"""

from __future__ import annotations

import asyncio
import logging

from kassa_appliance.appliance.channel_context import ChannelContext
from kassa_appliance.channels.conversation.service import ConversationService
from kassa_appliance.channels.conversation.store import ConversationStore

log = logging.getLogger(__name__)

STORE_KEY = "conversation_store"
"""``context.shared`` name of the one conversation store both bots use."""


def take_conversation_store(context: ChannelContext) -> tuple[ConversationStore, bool]:
    """The shared store, and whether this call opened it (then the caller closes it with
    :func:`release_conversation_store` when its bot stops)."""
    shared = context.shared.get(STORE_KEY)
    if isinstance(shared, ConversationStore):
        return shared, False
    store = context.shared[STORE_KEY] = ConversationStore.open(context.data_dir)
    return store, True


def release_conversation_store(context: ChannelContext, store: ConversationStore) -> None:
    """Close a store :func:`take_conversation_store` opened, and unshare it."""
    if context.shared.get(STORE_KEY) is store:
        del context.shared[STORE_KEY]
    store.close()


async def keep_resuming(service: ConversationService, who: str, interval: float) -> None:
    """Every ``interval`` seconds, the engine takes up jobs left "creating" and replies left
    unsent (besides the passes each update triggers); a failed pass is logged and retried."""
    while True:
        try:
            await service.resume()
        except Exception:  # the next pass tries again
            log.exception("%s: resuming the conversations failed; trying again later", who)
        await asyncio.sleep(interval)
