"""What a messenger gives the conversation engine, and what the engine hands back.

The engine (:mod:`kassa_appliance.channels.conversation`) never sees HTTP: a messenger's bot
(``channels/b24bot``, ``channels/maxbot``) turns its updates into :class:`Incoming` and
implements :class:`ChatTransport` for what the engine says. Keys make sends idempotent: the
engine gives each outgoing message a ``key`` that is stable across restarts and re-delivered
updates, so a transport that is asked twice with the same key may answer with the first
message's id instead of sending again (and a reply sender can look for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Button:
    text: str
    """What the user sees, e.g. ``Пробить``."""
    action: str
    """Opaque callback data the engine gets back in :attr:`Incoming.action` (≤ 64 chars)."""


Keyboard = tuple[tuple[Button, ...], ...]
"""Rows of buttons."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One update from a messenger: a text message or a button press."""

    messenger: str
    """``b24`` or ``max``."""
    chat_id: str
    """Where to answer (Bitrix24 ``DIALOG_ID``, MAX ``chat_id``), as text."""
    user_id: str
    """Who wrote (Bitrix24 user id, MAX user id), as text."""
    update_id: str
    """Unique per update and stable when the messenger re-delivers it (message id, or the
    callback id): the engine ignores an update it has already handled."""
    text: str = ""
    action: str | None = None
    """The pressed button's :attr:`Button.action`; None for a text message."""
    callback_id: str | None = None
    """MAX ``callback_id`` / Bitrix24 command id to answer a button press, if any."""
    user_name: str = ""
    department_ids: tuple[int, ...] = field(default_factory=tuple)
    """Bitrix24 departments of the user, when the messenger tells them."""


class ChatTransport(Protocol):
    messenger: str

    async def send_text(self, chat_id: str, text: str, *, keyboard: Keyboard = (), key: str) -> str:
        """Send a message (with buttons); return the messenger's message id."""
        ...

    async def send_image(self, chat_id: str, png: bytes, *, caption: str, key: str) -> str:
        """Send a PNG image with a caption; return the message id."""
        ...

    async def answer_action(self, incoming: Incoming, notice: str | None = None) -> None:
        """Acknowledge a button press (MAX ``POST /answers``); a no-op where not needed."""
        ...

    def reply_target(self, chat_id: str) -> dict[str, Any]:
        """The reply target of this chat for a job's REPLY (contracts.md): ``{"kind":
        "b24chat", "bot_id": …, "dialog_id": chat_id}`` or ``{"kind": "maxchat", "chat_id":
        chat_id}``; the delivery worker hands it to this messenger's sender."""
        ...
