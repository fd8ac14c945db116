"""The emulated Chatbots 2.0 methods (``imbot.v2.*``) a fetch-mode bot uses, with the
parameters, answers and error codes of b24restdocs ``api-reference/chat-bots/chat-bots-v2/``:

* ``Bot.register`` (idempotent per ``fields.code`` and application; another application's
  code is ``BOT_CODE_ALREADY_TAKEN``), ``Bot.update``, ``Bot.unregister``, ``Bot.get``
  (``botId`` or ``code``), ``Bot.list``;
* ``Event.get``: the bot's queue; ``offset`` confirms (drops) every event below it, the
  answer has ``events``, ``nextOffset`` and ``hasMore`` (``limit`` 1–1000, default 100);
* ``Command.register`` (idempotent per command) / ``Command.list`` / ``Command.answer``;
* ``Chat.Message.send`` / ``update`` / ``delete``, and ``get`` / ``getContext`` — the last
  two only for ``personal`` and ``supervisor`` bots (``BOT_TYPE_NOT_ALLOWED``);
* ``File.upload`` (base64 ``content``, posts the file with ``message``) and
  ``File.download`` (a ``downloadUrl``; tests read the bytes with
  :meth:`~kassa_appliance.testbeds.bitrix24.rest_imbot_state.ImbotPortal.file_bytes`).

With an inbound webhook every call needs the bot's ``botToken`` (``BOT_TOKEN_NOT_SPECIFIED``);
with the application's OAuth token the bot must be the application's own
(``BOT_OWNERSHIP_ERROR``). A bot not in the chat, or one the user has blocked, gets
``ACCESS_DENIED``. Bound into the emulator's method table by :func:`imbot_handlers`.
"""

from __future__ import annotations

from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_imbot_messages import MessageMethods
from kassa_appliance.testbeds.bitrix24.rest_imbot_state import Bot, imbot_portal
from kassa_appliance.testbeds.bitrix24.rest_imbot_values import (
    BOT_TYPES,
    PREFIX,
    TOKEN_MAX_LENGTH,
    fail,
    fields_of,
    flag,
    number,
)
from kassa_appliance.testbeds.bitrix24.rest_types import Answer, Caller, Handler
from kassa_appliance.testbeds.bitrix24.state import PortalState


class _Methods(MessageMethods):
    # -- bots -------------------------------------------------------------------------------

    async def register(self, caller: Caller, params: dict[str, Any]) -> Answer:
        fields = fields_of(params, required=True)
        code = str(fields.get("code") or "")
        if not code:
            raise fail("BOT_CODE_REQUIRED", "Bot code is required")
        properties = fields.get("properties")
        if not isinstance(properties, dict) or not properties.get("name"):
            raise fail("BOT_PROPERTIES_REQUIRED", "Bot properties are required")
        kind = str(fields.get("type") or "bot")
        if kind not in BOT_TYPES:
            raise fail("BOT_INVALID_TYPE", "Invalid bot type")
        mode = str(fields.get("eventMode") or "fetch")
        if mode not in {"fetch", "webhook"}:
            raise fail("BOT_INVALID_EVENT_MODE", "Invalid event mode")
        if mode == "webhook" and not fields.get("webhookUrl"):
            raise fail("BOT_WEBHOOK_URL_REQUIRED", "Webhook URL is required")
        token = str(fields.get("botToken") or "")
        if not caller.application and not token:
            raise fail("BOT_TOKEN_NOT_SPECIFIED", "Bot token is not specified")
        if len(token) > TOKEN_MAX_LENGTH:
            raise fail("BOT_TOKEN_INVALID_LENGTH", "Bot token is too long")
        owner = "app" if caller.application else "webhook"
        existing = self.portal.bot_by_code(code)
        if existing is not None:
            if existing.owner != owner or (owner == "webhook" and existing.token != token):
                raise fail("BOT_CODE_ALREADY_TAKEN", "Bot code is already taken")
            return Answer({"bot": existing.describe(), "users": [existing.user()]})
        bot = Bot(self.portal.new_bot_id(), code, owner, token, kind, dict(properties), mode)
        bot.is_hidden = flag(fields.get("isHidden"))
        self.portal.bots[bot.id] = bot
        return Answer({"bot": bot.describe(), "users": [bot.user()]})

    async def update(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot = self.bot(caller, params)
        fields = fields_of(params, required=True)
        if isinstance(fields.get("properties"), dict):
            bot.properties.update(fields["properties"])
        if "isHidden" in fields:
            bot.is_hidden = flag(fields["isHidden"])
        new_token = str(fields.get("botToken") or "").strip()
        if new_token:
            if len(new_token) > TOKEN_MAX_LENGTH:
                raise fail("BOT_TOKEN_INVALID_LENGTH", "Bot token is too long")
            bot.token = new_token
        return Answer({"bot": bot.describe(), "users": [bot.user()]})

    async def unregister(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot = self.bot(caller, params)
        del self.portal.bots[bot.id]
        return Answer({"result": True})

    async def get(self, caller: Caller, params: dict[str, Any]) -> Answer:
        if params.get("botId") in (None, "") and params.get("code"):
            found = self.portal.bot_by_code(str(params["code"]))
            if found is None:
                raise fail("BOT_NOT_FOUND", "Bot not found")
            params = {**params, "botId": found.id}
        bot = self.bot(caller, params)
        return Answer({"bot": bot.describe(), "users": [bot.user()]})

    async def list(self, caller: Caller, params: dict[str, Any]) -> Answer:
        owner = "app" if caller.application else "webhook"
        kind = (
            (params.get("filter") or {}).get("type")
            if isinstance(params.get("filter"), dict)
            else None
        )
        bots = [
            b
            for b in self.portal.bots.values()
            if b.owner == owner
            and (owner == "app" or b.token == params.get("botToken"))
            and (kind is None or b.type == kind)
        ]
        offset = max(0, number(params.get("offset")) or 0)
        limit = max(1, number(params.get("limit")) or 50)
        page = bots[offset : offset + limit]
        return Answer(
            {
                "bots": [b.describe() for b in page],
                "users": [b.user() for b in page],
                "hasNextPage": offset + limit < len(bots),
            }
        )

    # -- events -----------------------------------------------------------------------------

    async def events(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot = self.bot(caller, params)
        offset = number(params.get("offset"))
        if offset is not None:
            bot.events[:] = [e for e in bot.events if e["eventId"] >= offset]
        limit = min(1000, max(1, number(params.get("limit")) or 100))
        batch = bot.events[:limit]
        next_offset = batch[-1]["eventId"] + 1 if batch else offset or 0
        return Answer(
            {"events": batch, "nextOffset": next_offset, "hasMore": len(bot.events) > limit}
        )

    # -- commands ---------------------------------------------------------------------------

    async def command_register(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot = self.bot(caller, params)
        fields = fields_of(params, required=True)
        command = fields.get("command")
        if command in (None, ""):
            raise fail("COMMAND_REQUIRED", "Command is required")
        if not isinstance(command, str):
            raise fail("COMMAND_NAME_INVALID", "Command name is invalid")
        hidden = flag(fields.get("hidden"))
        if not hidden and not fields.get("title"):
            raise fail("COMMAND_TITLE_REQUIRED", "Command title is required")
        name = command.lstrip("/")
        if name not in bot.commands:
            bot.commands[name] = self.portal.new_command_id()
        return Answer({"command": self._command(bot, name, hidden)})

    async def command_list(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot = self.bot(caller, params)
        return Answer({"commands": [self._command(bot, name, True) for name in bot.commands]})

    async def command_answer(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot = self.bot(caller, params)
        if number(params.get("commandId")) not in bot.commands.values():
            raise fail("COMMAND_ANSWER_FAILED", "Command answer failed")
        chat = self.chat(bot, params)
        self._post(bot, chat, fields_of(params))
        return Answer({"result": True})

    @staticmethod
    def _command(bot: Bot, name: str, hidden: bool) -> dict[str, Any]:
        return {
            "id": bot.commands[name],
            "botId": bot.id,
            "command": f"/{name}",
            "common": False,
            "hidden": hidden,
            "extranetSupport": False,
        }

    # -- messages ---------------------------------------------------------------------------


def imbot_handlers(state: PortalState) -> dict[str, Handler]:
    """The ``imbot.v2.*`` entries of the method table (lower-cased, as the table looks them up)."""
    methods = _Methods(imbot_portal(state))
    table: dict[str, Handler] = {
        "Bot.register": methods.register,
        "Bot.update": methods.update,
        "Bot.unregister": methods.unregister,
        "Bot.get": methods.get,
        "Bot.list": methods.list,
        "Event.get": methods.events,
        "Command.register": methods.command_register,
        "Command.list": methods.command_list,
        "Command.answer": methods.command_answer,
        "Chat.Message.send": methods.send,
        "Chat.Message.update": methods.message_update,
        "Chat.Message.delete": methods.message_delete,
        "Chat.Message.get": methods.message_get,
        "Chat.Message.getContext": methods.message_context,
        "File.upload": methods.upload,
        "File.download": methods.download,
    }
    return {(PREFIX + name).lower(): handler for name, handler in table.items()}
