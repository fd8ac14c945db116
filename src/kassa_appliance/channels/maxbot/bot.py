"""The MAX bot as one object: the client, the update poller, the conversation transport
and the ``maxchat`` reply sender, sharing one HTTP client and one rate limiter.

State lives in ``<data dir>/maxbot/``: ``marker.json`` (the long-poll marker) and
``sent.json`` (message ids of keyed sends).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kassa_appliance.channels.conversation.reply_render import Render
from kassa_appliance.channels.conversation.transport import Incoming
from kassa_appliance.channels.maxbot.client import MaxClient
from kassa_appliance.channels.maxbot.errors import MaxApiError
from kassa_appliance.channels.maxbot.poller import UpdatePoller
from kassa_appliance.channels.maxbot.sender import MaxChatSender
from kassa_appliance.channels.maxbot.settings import MaxBotConfig
from kassa_appliance.channels.maxbot.transport import MaxTransport

log = logging.getLogger(__name__)

STATE_DIR = "maxbot"
Handler = Callable[[Incoming], Awaitable[None]]


async def _unanswered(incoming: Incoming) -> None:
    log.info("MAX bot: update %s not handled (no conversation engine)", incoming.update_id)


class MaxBot:
    def __init__(
        self,
        config: MaxBotConfig,
        data_dir: Path,
        *,
        client: MaxClient | None = None,
        render: Render | None = None,
    ) -> None:
        if config.token is None:
            raise ValueError("maxbot.token is not set")
        self.state_dir = data_dir / STATE_DIR
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.client = client or MaxClient(config.token.get_secret_value(), config.api_url)
        self.transport = MaxTransport(self.client, self.state_dir)
        self.sender = MaxChatSender(self.client, render=render)
        self.handle: Handler = _unanswered
        self.poller = UpdatePoller(
            self.client, self.state_dir, self._handle, poll_timeout=config.poll_timeout
        )
        self.bot_name: str | None = None

    async def _handle(self, incoming: Incoming) -> None:
        await self.handle(incoming)

    async def run(self) -> None:
        try:
            me = await self.client.get_me()
            self.bot_name = str(me.get("username") or me.get("first_name") or "")
            log.info("MAX bot: polling as %s", self.bot_name or "the bot")
        except MaxApiError as error:
            log.warning("MAX bot: GET /me failed (%s); polling anyway", error)
        await self.poller.run()

    def status(self) -> dict[str, Any]:
        return {"bot": self.bot_name, "api_url": self.client.api_url, **self.poller.status()}

    async def aclose(self) -> None:
        await self.client.aclose()
