"""Creating the bot once, and finding it again.

The appliance configured as bot host registers the bot for the Kassa app in fetch mode (no
handler URL: the appliance sits behind NAT). Idempotent across restarts and replacements:

1. the bot id saved in ``b24bot.json`` is checked with ``Bot.get``;
2. else the app's bots are searched by ``code`` (``Bot.list``);
3. only then ``Bot.register`` (itself idempotent per code, bot-register.md).

The hidden ``kassa`` command the buttons carry is registered right after (idempotent too,
command-register.md). The bot id and command id are saved before anything else runs.
"""

from __future__ import annotations

import logging
from typing import Any

from kassa_appliance.bitrix.errors import AccessDenied, NotFound
from kassa_appliance.channels.b24bot.api import BotApi
from kassa_appliance.channels.b24bot.settings import B24BotConfig
from kassa_appliance.channels.b24bot.state import BotState, BotStateFile

log = logging.getLogger(__name__)


async def ensure_bot(
    api: BotApi, config: B24BotConfig, state: BotState, store: BotStateFile
) -> BotState:
    """The registered bot (``state`` updated and saved); ``api.bot_id`` is set."""
    bot: dict[str, Any] | None = None
    if state.bot_id is not None and state.code == config.code:
        try:
            bot = await api.get_bot(state.bot_id)
        except (NotFound, AccessDenied) as error:
            log.warning("bot %d is gone (%s); looking it up by code", state.bot_id, error.code)
    if bot is None:
        bot = await api.find_bot(config.code)
        if bot is not None:
            log.info("found the Kassa app's bot %s (id %s)", config.code, bot.get("id"))
    if bot is None:
        bot = await api.register(
            {
                "code": config.code,
                "type": config.bot_type,
                "eventMode": "fetch",
                "properties": {"name": config.name, "workPosition": "Касса"},
            }
        )
        log.info("registered the chat bot %s (id %s)", config.code, bot.get("id"))
    if bot.get("type") not in (None, config.bot_type):
        log.warning(
            "the bot %s is of type %s, not %s as configured; unregister it in Bitrix24 to change",
            config.code,
            bot.get("type"),
            config.bot_type,
        )
    if bot.get("eventMode") not in (None, "fetch"):
        api.bot_id = int(bot["id"])
        await api.update({"eventMode": "fetch"})  # someone switched it to webhook mode
    new_bot = state.bot_id != int(bot["id"])
    state.bot_id = int(bot["id"])
    state.code = config.code
    api.bot_id = state.bot_id
    if new_bot:
        state.offset = None
        state.command_id = None
    store.save(state)
    if state.command_id is None:
        state.command_id = await api.register_command()
        store.save(state)
    return state
