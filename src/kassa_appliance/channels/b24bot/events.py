"""Bot events → :class:`~kassa_appliance.channels.conversation.transport.Incoming`, and the
engine's buttons → a ``KEYBOARD``.

* ``ONIMBOTV2MESSAGEADD`` (events.md): a text message. In a group chat only a message that
  mentions the bot (``[USER=<bot id>]``) counts — a ``personal`` bot sees every message
  there. ``update_id`` is ``m<message id>``.
* ``ONIMBOTV2COMMANDADD`` with our hidden ``/kassa`` command: a button press; the button's
  action is ``command.params``. ``update_id`` is ``c<message id>:<action>`` — the same for a
  repeated tap on the same button of the same message, so the engine ignores the repeat.
* Anything else (join, reactions, edits, the bot's own and system messages) is skipped.

A button is ``{"TEXT", "COMMAND": "kassa", "COMMAND_PARAMS": action}``; rows are separated
by ``{"TYPE": "NEWLINE"}`` (message-keyboards.md), with ``BOT_ID`` beside ``BUTTONS``.
"""

from __future__ import annotations

import re
from typing import Any

from kassa_appliance.channels.b24bot.api import BUTTON_COMMAND
from kassa_appliance.channels.conversation.transport import Incoming, Keyboard

MESSENGER = "b24"
_MENTION = re.compile(r"\[user=(\d+)\](.*?)\[/user\]", re.IGNORECASE)


def keyboard_fields(bot_id: int, keyboard: Keyboard) -> dict[str, Any] | None:
    """The ``keyboard`` field of ``Chat.Message.send`` for these rows (None for none)."""
    buttons: list[dict[str, Any]] = []
    for row in keyboard:
        if not row:
            continue
        if buttons:
            buttons.append({"TYPE": "NEWLINE"})
        for button in row:
            buttons.append(
                {
                    "TEXT": button.text,
                    "COMMAND": BUTTON_COMMAND,
                    "COMMAND_PARAMS": button.action,
                    "DISPLAY": "LINE",
                }
            )
    return {"BOT_ID": bot_id, "BUTTONS": buttons} if buttons else None


def _part(data: dict[str, Any], name: str) -> dict[str, Any]:
    part = data.get(name)
    return part if isinstance(part, dict) else {}


def incoming_of(event: dict[str, Any], bot_id: int) -> Incoming | None:
    """The update an event carries for the conversation engine, or None to skip it."""
    kind = event.get("type")
    data = event.get("data")
    if not isinstance(data, dict):
        return None
    message, chat, user = _part(data, "message"), _part(data, "chat"), _part(data, "user")
    user_id = user.get("id")
    message_id = message.get("id")
    dialog_id = str(chat.get("dialogId") or "")
    if not isinstance(user_id, int) or not isinstance(message_id, int) or not dialog_id:
        return None
    if user.get("bot") or user_id == bot_id:
        return None
    departments = tuple(d for d in user.get("departments") or [] if isinstance(d, int))
    name = str(user.get("name") or "")
    if kind == "ONIMBOTV2COMMANDADD":
        command = _part(data, "command")
        if str(command.get("command") or "").lstrip("/") != BUTTON_COMMAND:
            return None
        action = str(command.get("params") or "").strip()
        if not action:
            return None
        return Incoming(
            messenger=MESSENGER,
            chat_id=dialog_id,
            user_id=str(user_id),
            update_id=f"c{message_id}:{action}",
            action=action,
            callback_id=f"{command.get('id')}:{message_id}",
            user_name=name,
            department_ids=departments,
        )
    if kind != "ONIMBOTV2MESSAGEADD" or message.get("isSystem"):
        return None
    text = str(message.get("text") or "")
    if not dialog_id.isdigit():  # a group chat: only when the bot is addressed
        if not any(int(m.group(1)) == bot_id for m in _MENTION.finditer(text)):
            return None
        text = _MENTION.sub(lambda m: "" if int(m.group(1)) == bot_id else m.group(2), text)
    return Incoming(
        messenger=MESSENGER,
        chat_id=dialog_id,
        user_id=str(user_id),
        update_id=f"m{message_id}",
        text=text.strip(),
        user_name=name,
        department_ids=departments,
    )


def message_ids(event: dict[str, Any]) -> tuple[str, int] | None:
    """(dialogId, message id) an event shows, for the per-dialog look-back anchor."""
    data = event.get("data")
    if not isinstance(data, dict):
        return None
    message, chat = _part(data, "message"), _part(data, "chat")
    if isinstance(message.get("id"), int) and chat.get("dialogId"):
        return str(chat["dialogId"]), int(message["id"])
    return None
