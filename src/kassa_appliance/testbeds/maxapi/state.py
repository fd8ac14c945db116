"""What the MAX Bot API emulator remembers: the bot, dialogs with users, their messages, the
update queue with its marker, callbacks, uploads, faults and the recorded traffic.

Shapes follow the official OpenAPI schema (``max-messenger/api-schema`` ``schema.yaml``,
0.0.33) and the real payloads in ``max-messenger/max-bot-api-client-go`` ``stabs/``:
times are milliseconds, ``mid`` is ``mid.<hex>``, a dialog has its own ``chat_id`` and a
message's ``recipient.user_id`` is the other party. Everything here runs on the emulator's
event loop only.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

JsonDict = dict[str, Any]

BOT_USER_ID = 7_000_000_001
DIALOG_CHAT_BASE = 90_000_000
FIRST_MARKER = 25_493_970
"""The first update's sequence number (the value seen in the Go client's fixtures)."""
TRAFFIC_LIMIT = 5_000
"""Exchanges kept for the tests (oldest dropped first)."""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Faults:
    """Faults the tests switch on through ``POST /_emulator/faults``: counters are consumed
    one request at a time."""

    rate_limited: int = 0
    """The next N Bot API requests get 429."""
    unavailable: int = 0
    """The next N Bot API requests get 503."""
    dropped_polls: int = 0
    """The next N ``GET /updates`` are closed without an answer."""
    attachment_ready_after: float = 0.5
    """Seconds after an upload during which a send with it gets 400 attachment.not.ready."""
    enforce_rate_limits: bool = True
    """429 when the bot sends more than 30 requests in a second, or more than 2 messages
    (or 2 callback answers) into one chat in a second (max-notes §1.4)."""

    def consume(self, name: str) -> bool:
        left = int(getattr(self, name))
        if left <= 0:
            return False
        setattr(self, name, left - 1)
        return True


@dataclass
class Chat:
    chat_id: int
    user: JsonDict
    """The human on the other side (schema ``User``)."""
    status: str = "active"
    """``active``, ``suspended`` (the user blocked the bot) or ``removed`` (chat deleted)."""
    messages: list[JsonDict] = field(default_factory=list)
    """Schema ``Message`` objects, oldest first."""
    last_event_time: int = field(default_factory=now_ms)


@dataclass
class Upload:
    upload_id: str
    token: str = ""
    photo_key: str = ""
    data: bytes | None = None
    content_type: str = ""
    uploaded_at: float = 0.0
    photo_id: int = 0


@dataclass
class Exchange:
    """One recorded request and its answer, for the schema tests."""

    kind: str
    """``api`` (a Bot API call: validated against the schema), ``upload`` (the upload host)
    or ``dropped`` (closed by a fault without an answer)."""
    method: str
    path: str
    query: list[tuple[str, str]]
    authorization: str | None
    request_json: Any
    status: int
    response_json: Any

    def as_json(self) -> JsonDict:
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "query": [list(pair) for pair in self.query],
            "authorized": self.authorization is not None,
            "request_json": self.request_json,
            "status": self.status,
            "response_json": self.response_json,
        }


class WindowCounter:
    """Events in the last second, to refuse what breaks MAX's per-second limits."""

    def __init__(self) -> None:
        self._times: dict[str, list[float]] = {}

    def hit(self, key: str, limit: int) -> bool:
        """Record one event; False if it makes more than ``limit`` in the last second."""
        now = time.monotonic()
        recent = [t for t in self._times.get(key, []) if now - t < 1.0]
        recent.append(now)
        self._times[key] = recent
        return len(recent) <= limit


class MaxState:
    def __init__(self, token: str, *, bot_name: str = "Касса") -> None:
        self.token = token
        self.bot: JsonDict = {
            "user_id": BOT_USER_ID,
            "first_name": bot_name,
            "last_name": None,
            "username": "kassa_bot",
            "is_bot": True,
            "last_activity_time": now_ms(),
            "description": "Кассовый бот (эмулятор MAX Bot API)",
            "avatar_url": None,
            "full_avatar_url": None,
            "commands": None,
        }
        self.chats: dict[int, Chat] = {}
        self.updates: list[tuple[int, JsonDict]] = []
        self.next_marker = FIRST_MARKER
        self.committed = FIRST_MARKER
        self.callbacks: dict[str, tuple[int, str, JsonDict]] = {}
        """callback_id → (chat_id, the keyboard message's mid, who pressed)."""
        self.answers: list[JsonDict] = []
        self.uploads: dict[str, Upload] = {}
        self.uploads_by_token: dict[str, Upload] = {}
        self.faults = Faults()
        self.traffic: list[Exchange] = []
        self.window = WindowCounter()
        self.new_update = asyncio.Event()
        self._seq = 116_327_994_376_978_687

    # -- chats and messages ---------------------------------------------------------------

    def dialog_with(self, user_id: int, first_name: str = "", last_name: str = "") -> Chat:
        chat_id = DIALOG_CHAT_BASE + user_id % 10_000_000
        chat = self.chats.get(chat_id)
        if chat is None:
            user = {
                "user_id": user_id,
                "first_name": first_name or f"User{user_id}",
                "last_name": last_name or None,
                "username": None,
                "is_bot": False,
                "last_activity_time": now_ms(),
            }
            chat = self.chats[chat_id] = Chat(chat_id, user)
        return chat

    def add_message(
        self, chat: Chat, *, from_bot: bool, text: str | None, attachments: list[JsonDict] | None
    ) -> JsonDict:
        self._seq += 1
        other = chat.user if from_bot else self.bot
        sender = self.bot if from_bot else chat.user
        message: JsonDict = {
            "sender": {key: sender[key] for key in ("user_id", "first_name", "is_bot")}
            | {"last_name": sender.get("last_name"), "username": sender.get("username")},
            "recipient": {
                "chat_id": chat.chat_id,
                "chat_type": "dialog",
                "user_id": other["user_id"],
            },
            "timestamp": now_ms(),
            "body": {
                "mid": f"mid.{secrets.token_hex(16)}",
                "seq": self._seq,
                "text": text,
                "attachments": attachments,
            },
        }
        chat.messages.append(message)
        chat.last_event_time = message["timestamp"]
        return message

    def find_message(self, mid: str) -> tuple[Chat, JsonDict] | None:
        for chat in self.chats.values():
            for message in chat.messages:
                if message["body"]["mid"] == mid:
                    return chat, message
        return None

    def chat_info(self, chat: Chat) -> JsonDict:
        return {
            "chat_id": chat.chat_id,
            "type": "dialog",
            "status": chat.status,
            "title": None,
            "icon": None,
            "last_event_time": chat.last_event_time,
            "participants_count": 2,
            "is_public": False,
            "dialog_with_user": chat.user,
        }

    # -- updates ----------------------------------------------------------------------------

    def push_update(self, update: JsonDict) -> int:
        marker = self.next_marker
        self.updates.append((marker, update))
        self.next_marker += 1
        self.new_update.set()
        return marker

    def pending(
        self, marker: int | None, types: set[str] | None, limit: int
    ) -> list[tuple[int, JsonDict]]:
        """``(seq, update)`` at or after ``marker`` (the last committed one when None)."""
        start = self.committed if marker is None else marker
        found = [
            (seq, update)
            for seq, update in self.updates
            if seq >= start and (types is None or update["update_type"] in types)
        ]
        return found[:limit]

    def marker_after(self, marker: int | None, returned: list[tuple[int, JsonDict]]) -> int:
        """The marker that points after what was returned (all earlier updates committed)."""
        if not returned:
            return max(self.committed, marker or 0)
        return returned[-1][0] + 1

    def commit(self, marker: int) -> None:
        self.committed = max(self.committed, min(marker, self.next_marker))

    # -- uploads ----------------------------------------------------------------------------

    def new_upload(self) -> Upload:
        upload = Upload(upload_id=secrets.token_urlsafe(12))
        self.uploads[upload.upload_id] = upload
        return upload

    def store_upload(self, upload: Upload, data: bytes, content_type: str) -> None:
        upload.data = data
        upload.content_type = content_type
        upload.uploaded_at = time.monotonic()
        upload.token = secrets.token_urlsafe(24)
        upload.photo_key = secrets.token_urlsafe(18)
        upload.photo_id = 5_000_000_000 + len(self.uploads_by_token) + 1
        self.uploads_by_token[upload.token] = upload

    def record(self, exchange: Exchange) -> None:
        self.traffic.append(exchange)
        if len(self.traffic) > TRAFFIC_LIMIT:
            del self.traffic[: len(self.traffic) - TRAFFIC_LIMIT]
