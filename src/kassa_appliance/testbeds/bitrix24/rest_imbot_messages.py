"""The emulated ``imbot.v2`` message and file methods: ``Chat.Message.send`` / ``update`` /
``delete`` (a bot touches only its own messages), ``Chat.Message.get`` / ``getContext``
(``personal`` and ``supervisor`` bots only, ``BOT_TYPE_NOT_ALLOWED`` otherwise),
``File.upload`` (base64 ``content`` posted with ``message``) and ``File.download``.
Part of :mod:`kassa_appliance.testbeds.bitrix24.rest_imbot`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_imbot_state import Bot, Chat, Message, StoredFile
from kassa_appliance.testbeds.bitrix24.rest_imbot_values import (
    FILE_MAX,
    READING_TYPES,
    BotAccess,
    attach_of,
    fail,
    fields_of,
    flag,
    keyboard_of,
    message_text,
    number,
)
from kassa_appliance.testbeds.bitrix24.rest_types import Answer, Caller


class MessageMethods(BotAccess):
    def _post(self, bot: Bot, chat: Chat, fields: dict[str, Any], **extra: Any) -> Message:
        text = message_text(fields.get("message"))
        params: dict[str, Any] = {}
        attach = attach_of(fields.get("attach"))
        if attach is not None:
            params["ATTACH"] = attach
        keyboard = keyboard_of(fields.get("keyboard"))
        if keyboard is not None:
            params["KEYBOARD"] = keyboard
        params.update(extra.pop("params", {}))
        if not text.strip() and not params:
            raise fail("EMPTY_MESSAGE", "Message is empty")
        system = flag(fields.get("system"))
        uuid = str(fields.get("templateId") or "")
        message = self.portal.add_message(
            chat, bot.id, text, uuid=uuid, system=system, params=params
        )
        bot.count_message += 1
        return message

    async def send(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot = self.bot(caller, params)
        chat = self.chat(bot, params)
        message = self._post(bot, chat, fields_of(params))
        return Answer({"id": message.id, "uuidMap": {}})

    def _own_message(self, bot: Bot, params: dict[str, Any]) -> Message:
        message = self.portal.messages.get(number(params.get("messageId")) or -1)
        if message is None or message.deleted or message.author_id != bot.id or message.system:
            raise fail("ACCESS_DENIED", "Access denied", 403)
        return message

    async def message_update(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot = self.bot(caller, params)
        message = self._own_message(bot, params)
        fields = fields_of(params, required=True)
        if "message" in fields:
            message.text = message_text(fields["message"])
        if "attach" in fields:
            attach = attach_of(fields["attach"])
            message.params.pop("ATTACH", None)
            if attach is not None:
                message.params["ATTACH"] = attach
        if "keyboard" in fields:
            keyboard = keyboard_of(fields["keyboard"])
            message.params.pop("KEYBOARD", None)
            if keyboard is not None:
                message.params["KEYBOARD"] = keyboard
        return Answer({"result": True})

    async def message_delete(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot = self.bot(caller, params)
        self._own_message(bot, params).deleted = True
        return Answer({"result": True})

    def _readable(self, caller: Caller, params: dict[str, Any]) -> tuple[Bot, Message]:
        bot = self.bot(caller, params)
        if bot.type not in READING_TYPES:
            raise fail("BOT_TYPE_NOT_ALLOWED", "Bot type not allowed", 403)
        message = self.portal.messages.get(number(params.get("messageId")) or -1)
        if message is None or message.deleted:
            raise fail("MESSAGE_NOT_FOUND", "Message not found")
        if bot.id not in self.portal.chats[message.chat_id].members:
            raise fail("MESSAGE_ACCESS_DENIED", "Message access denied", 403)
        return bot, message

    def _users(self, bot: Bot, messages: list[Message]) -> list[dict[str, Any]]:
        authors = dict.fromkeys(m.author_id for m in messages)
        return [bot.user() if a == bot.id else self.portal.person(a) for a in authors]

    async def message_get(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot, message = self._readable(caller, params)
        return Answer({"message": message.describe(), "user": self._users(bot, [message])[0]})

    async def message_context(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot, message = self._readable(caller, params)
        span = min(50, max(1, number(params.get("range")) or 50))
        thread = self.portal.chat_messages(message.chat_id)
        at = next(i for i, m in enumerate(thread) if m.id == message.id)
        window = thread[max(0, at - span) : at + span + 1]
        return Answer(
            {
                "messages": [m.describe() for m in window],
                "users": self._users(bot, window),
                "hasPrevPage": at - span > 0,
                "hasNextPage": at + span + 1 < len(thread),
            }
        )

    # -- files ------------------------------------------------------------------------------

    async def upload(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot = self.bot(caller, params)
        fields = fields_of(params, required=True)
        name = str(fields.get("name") or "")
        content = fields.get("content")
        if not name or not content or not isinstance(content, str):
            raise fail("FILE_EMPTY", "File name or content is empty")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise fail("FILE_INVALID_CONTENT", "Invalid base64 content") from None
        if len(data) > FILE_MAX:
            raise fail("FILE_TOO_LARGE", "File is too large")
        chat = self.chat(bot, params)
        stored = StoredFile(self.portal.new_file_id(), chat.id, name, data, bot.id)
        self.portal.files[stored.id] = stored
        text = {"message": fields.get("message") or ""}
        message = self._post(bot, chat, text, params={"FILE_ID": [stored.id]})
        return Answer(
            {
                "file": {
                    "id": stored.id,
                    "chatId": chat.id,
                    "name": name,
                    "extension": stored.extension,
                    "size": len(data),
                },
                "messageId": message.id,
                "chatId": chat.id,
                "dialogId": chat.dialog_for(bot.id),
            }
        )

    async def download(self, caller: Caller, params: dict[str, Any]) -> Answer:
        bot = self.bot(caller, params)
        stored = self.portal.files.get(number(params.get("fileId")) or -1)
        if stored is None:
            raise fail("FILE_NOT_FOUND", "File not found")
        if bot.id not in self.portal.chats[stored.chat_id].members:
            raise fail("FILE_ACCESS_ERROR", "File access error", 403)
        return Answer({"downloadUrl": f"/rest/download.json?token=imbot%7C{stored.id}"})
