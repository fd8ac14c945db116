"""The conversation engine's :class:`~kassa_appliance.channels.conversation.transport.ChatTransport`
for the Bitrix24 messenger (``messenger = "b24"``).

``send_text`` is ``imbot.v2.Chat.Message.send`` with the buttons as a ``KEYBOARD``
(:func:`~kassa_appliance.channels.b24bot.events.keyboard_fields`) and ``templateId`` derived
from the engine's key; ``send_image`` is ``imbot.v2.File.upload`` with the caption as the
message. A key asked again (a re-delivered update) answers with the first message's id
while this process remembers it. ``answer_action`` shows a notice with ``Command.answer``
and is free (no REST call) without one. Every send marks the poller active, so the user's
answer is fetched at the fast pace.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from kassa_appliance.channels.b24bot.api import BotApi
from kassa_appliance.channels.b24bot.events import MESSENGER, keyboard_fields
from kassa_appliance.channels.b24bot.state import BotState
from kassa_appliance.channels.conversation.transport import Incoming, Keyboard

KEYS_REMEMBERED = 1000
_NAMESPACE = uuid.UUID("5b1d5e0e-8a5c-4b0e-9f39-4b2b6c1c2a24")


def template_id(key: str) -> str:
    """The ``templateId`` (message ``uuid``, "UUID for deduplication", entities.md) of a key."""
    return str(uuid.uuid5(_NAMESPACE, key))


class B24ChatTransport:
    messenger = MESSENGER

    def __init__(
        self, api: BotApi, state: BotState, on_activity: Callable[[], None] = lambda: None
    ) -> None:
        self.api = api
        self.state = state
        self.on_activity = on_activity
        self._sent: OrderedDict[str, str] = OrderedDict()

    def _remembered(self, key: str) -> str | None:
        return self._sent.get(key)

    def _remember(self, key: str, chat_id: str, message_id: int) -> str:
        self.state.note_message(chat_id, message_id)
        self._sent[key] = str(message_id)
        while len(self._sent) > KEYS_REMEMBERED:
            self._sent.popitem(last=False)
        self.on_activity()
        return str(message_id)

    async def send_text(self, chat_id: str, text: str, *, keyboard: Keyboard = (), key: str) -> str:
        earlier = self._remembered(key)
        if earlier is not None:
            return earlier
        fields: dict[str, object] = {
            "message": text,
            "templateId": template_id(key),
            "urlPreview": False,
        }
        buttons = keyboard_fields(self.api.bot_id, keyboard)
        if buttons is not None:
            fields["keyboard"] = buttons
        message_id = await self.api.send(chat_id, fields)
        return self._remember(key, chat_id, message_id)

    async def send_image(self, chat_id: str, png: bytes, *, caption: str, key: str) -> str:
        earlier = self._remembered(key)
        if earlier is not None:
            return earlier
        message_id = await self.api.upload(chat_id, image_name(key), png, caption)
        return self._remember(key, chat_id, message_id)

    def reply_target(self, chat_id: str) -> dict[str, Any]:
        """The ``b24chat`` target (contracts.md) with the dialog's newest message id as
        ``message_id``: where the sender's look for an earlier reply starts."""
        target: dict[str, Any] = {
            "kind": "b24chat",
            "bot_id": self.api.bot_id,
            "dialog_id": chat_id,
        }
        anchor = self.state.last_message.get(chat_id)
        if anchor is not None:
            target["message_id"] = anchor
        return target

    async def answer_action(self, incoming: Incoming, notice: str | None = None) -> None:
        if not notice or not incoming.callback_id:
            return
        command_id, _, message_id = incoming.callback_id.partition(":")
        if command_id.isdigit() and message_id.isdigit():
            await self.api.answer_command(
                int(command_id), int(message_id), incoming.chat_id, notice
            )


def image_name(key: str) -> str:
    """``qr-<key>.png`` with the key's characters kept to a file-name-safe set."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in key)[:64]
    return f"qr-{safe}.png"
