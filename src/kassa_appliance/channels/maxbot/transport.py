"""The conversation engine's :class:`ChatTransport` on MAX: texts with inline keyboards,
images through the upload flow, callback answers (``POST /answers``).

Keys make sends idempotent: the message id of every keyed send is kept in
``<data dir>/maxbot/sent.json`` (the latest :data:`SENT_KEYS_KEPT`, written atomically), so
the same key asked again — a re-delivered update, a restart after the send was recorded —
answers with the first message's id instead of sending again. A crash between MAX's answer
and that write can repeat one prompt of the conversation; a receipt reply is never repeated
(it goes through the ``maxchat`` sender, which looks in the chat first).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kassa_appliance.channels.conversation.transport import Incoming, Keyboard
from kassa_appliance.channels.maxbot.client import MaxClient
from kassa_appliance.files import write_private_file

log = logging.getLogger(__name__)

MESSENGER = "max"
SENT_FILE = "sent.json"
SENT_KEYS_KEPT = 2000
TEXT_LIMIT = 4000
DEFAULT_NOTICE = "Принято"
BUTTON_TEXT_LIMIT = 128


def keyboard_attachment(keyboard: Keyboard) -> dict[str, Any]:
    rows = [
        [
            {"type": "callback", "text": button.text[:BUTTON_TEXT_LIMIT], "payload": button.action}
            for button in row
        ]
        for row in keyboard
        if row
    ]
    return {"type": "inline_keyboard", "payload": {"buttons": rows}}


def fit_text(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SentKeys:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, str] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                self._entries = {str(k): str(v) for k, v in data.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError):
            log.warning("MAX bot: %s is unreadable; starting without it", path)

    def get(self, key: str) -> str | None:
        return self._entries.get(key)

    def put(self, key: str, message_id: str) -> None:
        self._entries[key] = message_id
        if len(self._entries) > SENT_KEYS_KEPT:
            for old in list(self._entries)[: len(self._entries) - SENT_KEYS_KEPT]:
                del self._entries[old]
        write_private_file(self.path, json.dumps(self._entries, ensure_ascii=False))


def message_id_of(message: dict[str, Any]) -> str:
    body = message.get("body")
    mid = body.get("mid") if isinstance(body, dict) else None
    return mid if isinstance(mid, str) else ""


class MaxTransport:
    messenger = MESSENGER

    def __init__(self, client: MaxClient, state_dir: Path) -> None:
        self.client = client
        self.sent = SentKeys(state_dir / SENT_FILE)

    async def send_text(self, chat_id: str, text: str, *, keyboard: Keyboard = (), key: str) -> str:
        earlier = self.sent.get(key)
        if earlier is not None:
            return earlier
        body: dict[str, Any] = {"text": fit_text(text)}
        if any(keyboard):
            body["attachments"] = [keyboard_attachment(keyboard)]
        return self._remember(key, await self.client.send_message(chat_id, body))

    async def send_image(self, chat_id: str, png: bytes, *, caption: str, key: str) -> str:
        earlier = self.sent.get(key)
        if earlier is not None:
            return earlier
        token = await self.client.upload_image(png)
        body = {
            "text": fit_text(caption),
            "attachments": [{"type": "image", "payload": {"token": token}}],
        }
        return self._remember(key, await self.client.send_message(chat_id, body))

    async def answer_action(self, incoming: Incoming, notice: str | None = None) -> None:
        if not incoming.callback_id:
            return
        await self.client.answer_callback(
            incoming.callback_id, incoming.chat_id, notice or DEFAULT_NOTICE
        )

    def reply_target(self, chat_id: str) -> dict[str, Any]:
        """The job's REPLY target for this chat (contracts.md): the ``maxchat`` sender."""
        return {"kind": "maxchat", "chat_id": chat_id}

    def _remember(self, key: str, message: dict[str, Any]) -> str:
        mid = message_id_of(message)
        self.sent.put(key, mid)
        return mid
