"""The bot host: registration, the event poller, the transport and the reply sender over one
saved state, with the retries that keep them running while the portal comes and goes.

:meth:`BotHost.run` registers (or finds) the bot — retrying with back-off while the portal
cannot be reached —, then polls until cancelled; a ``BOT_NOT_FOUND`` (someone deleted the
bot in Bitrix24) registers it again and polling resumes from a fresh offset.
"""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import Any

from kassa_appliance.bitrix.errors import BitrixError
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.channels.b24bot.api import BotApi
from kassa_appliance.channels.b24bot.poller import BotLost, EventPoller, Handler
from kassa_appliance.channels.b24bot.registration import ensure_bot
from kassa_appliance.channels.b24bot.sender import B24ChatSender
from kassa_appliance.channels.b24bot.settings import B24BotConfig
from kassa_appliance.channels.b24bot.state import BotStateFile
from kassa_appliance.channels.b24bot.transport import B24ChatTransport
from kassa_appliance.channels.conversation.reply_render import Render
from kassa_appliance.channels.conversation.transport import Incoming

log = logging.getLogger(__name__)

REGISTER_RETRY_MAX = 300.0


async def _ignore(incoming: Incoming) -> None:
    log.info("b24bot: no conversation engine; update %s not handled", incoming.update_id)


class BotHost:
    def __init__(
        self,
        rest: RestClient,
        data_dir: Path,
        config: B24BotConfig,
        *,
        render: Render | None = None,
    ) -> None:
        self.config = config
        self.store = BotStateFile(data_dir)
        self.state = self.store.load()
        self.api = BotApi(rest, self.state.bot_token)
        self.handle: Handler = _ignore
        self.poller = EventPoller(self.api, self.state, self.store, self._dispatch, config)
        self.transport = B24ChatTransport(self.api, self.state, self.poller.mark_active)
        self.sender = B24ChatSender(
            self.api, self.state, self.store, bot_type=config.bot_type, render=render
        )
        self.registered = asyncio.Event()
        self.last_error = ""

    async def _dispatch(self, incoming: Incoming) -> None:
        await self.handle(incoming)

    async def register(self) -> None:
        """Register or find the bot, retrying (with back-off) until it works."""
        delay = 1.0
        while True:
            try:
                await ensure_bot(self.api, self.config, self.state, self.store)
            except BitrixError as error:
                self.last_error = str(error)
                log.warning("could not register the chat bot (%s); retrying in %.0fs", error, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(REGISTER_RETRY_MAX, delay * 2)
                continue
            self.last_error = ""
            self.registered.set()
            return

    async def run(self) -> None:
        while True:
            await self.register()
            try:
                await self.poller.run()
            except BotLost as error:
                log.warning(
                    "the chat bot %d was deleted (%s); registering it again",
                    self.state.bot_id or 0,
                    error,
                )
                self.registered.clear()
                self.state.bot_id = None

    def status(self) -> dict[str, Any]:
        stats = self.poller.stats
        return {
            "bot_id": self.state.bot_id,
            "code": self.config.code,
            "registered": self.registered.is_set(),
            "active": self.poller.active,
            "poll_interval": self.poller.interval(),
            "polls": stats.polls,
            "events": stats.events,
            "handled": stats.handled,
            "skipped_failures": stats.skipped_failures,
            "last_error": stats.last_error or self.last_error,
        }
