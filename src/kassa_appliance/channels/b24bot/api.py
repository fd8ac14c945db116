"""The ``imbot.v2`` calls the bot host makes, through the link's REST client.

Every call goes through :class:`~kassa_appliance.bitrix.rest.RestClient` and so takes a token
from the link's one REST budget (the app's 2 requests/s, shared with job intake, write-backs
and heartbeats) at :attr:`~kassa_appliance.bitrix.budget.Priority.STATUS`, below fiscal
traffic. ``botToken`` is sent with every call: required with an inbound webhook, ignored
with the application's OAuth token (chat-bots-v2/index.md#auth).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.rest import RestClient

BUTTON_COMMAND = "kassa"
"""The hidden command every button carries (``COMMAND``); the pressed button's action is
its ``COMMAND_PARAMS``."""


@dataclass(frozen=True)
class EventBatch:
    events: list[dict[str, Any]]
    next_offset: int | None
    has_more: bool


class BotApi:
    def __init__(self, rest: RestClient, bot_token: str) -> None:
        self.rest = rest
        self.bot_token = bot_token
        self.bot_id = 0

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        body = {"botToken": self.bot_token, **params}
        return await self.rest.result(f"imbot.v2.{method}", body, priority=Priority.STATUS)

    async def bot_call(self, method: str, params: dict[str, Any]) -> Any:
        return await self.call(method, {"botId": self.bot_id, **params})

    # -- the bot ------------------------------------------------------------------------------

    async def find_bot(self, code: str) -> dict[str, Any] | None:
        """The application's bot with this code (``Bot.list``, every page), or None."""
        offset = 0
        while True:
            page = await self.call("Bot.list", {"limit": 50, "offset": offset})
            bots = page.get("bots") if isinstance(page, dict) else None
            for bot in bots or []:
                if isinstance(bot, dict) and bot.get("code") == code:
                    return bot
            if not bots or not page.get("hasNextPage"):
                return None
            offset += len(bots)

    async def get_bot(self, bot_id: int) -> dict[str, Any]:
        answer = await self.call("Bot.get", {"botId": bot_id})
        bot: dict[str, Any] = answer["bot"]
        return bot

    async def register(self, fields: dict[str, Any]) -> dict[str, Any]:
        answer = await self.call("Bot.register", {"fields": {"botToken": self.bot_token, **fields}})
        bot: dict[str, Any] = answer["bot"]
        return bot

    async def update(self, fields: dict[str, Any]) -> None:
        await self.bot_call("Bot.update", {"fields": fields})

    async def register_command(self) -> int:
        fields = {"command": BUTTON_COMMAND, "hidden": True, "title": {"ru": "Касса"}}
        answer = await self.bot_call("Command.register", {"fields": fields})
        return int(answer["command"]["id"])

    # -- events -----------------------------------------------------------------------------

    async def events(self, offset: int | None, limit: int = 100) -> EventBatch:
        params: dict[str, Any] = {"limit": limit}
        if offset is not None:
            params["offset"] = offset
        answer = await self.bot_call("Event.get", params)
        events = answer.get("events") if isinstance(answer, dict) else None
        next_offset = answer.get("nextOffset") if isinstance(answer, dict) else None
        return EventBatch(
            events=[e for e in events or [] if isinstance(e, dict)],
            next_offset=next_offset if isinstance(next_offset, int) and next_offset > 0 else None,
            has_more=bool(answer.get("hasMore")) if isinstance(answer, dict) else False,
        )

    # -- messages ---------------------------------------------------------------------------

    async def send(self, dialog_id: str, fields: dict[str, Any]) -> int:
        answer = await self.bot_call("Chat.Message.send", {"dialogId": dialog_id, "fields": fields})
        return int(answer["id"])

    async def upload(self, dialog_id: str, name: str, content: bytes, message: str) -> int:
        fields = {"name": name, "content": base64.b64encode(content).decode(), "message": message}
        answer = await self.bot_call("File.upload", {"dialogId": dialog_id, "fields": fields})
        return int(answer["messageId"])

    async def context(self, message_id: int, span: int = 50) -> dict[str, Any]:
        answer: dict[str, Any] = await self.bot_call(
            "Chat.Message.getContext", {"messageId": message_id, "range": span}
        )
        return answer

    async def answer_command(
        self, command_id: int, message_id: int, dialog_id: str, text: str
    ) -> None:
        params = {
            "commandId": command_id,
            "messageId": message_id,
            "dialogId": dialog_id,
            "fields": {"message": text},
        }
        await self.bot_call("Command.answer", params)
