"""MAX updates → the conversation engine's :class:`Incoming` (max-notes §2.2, §2.3).

* ``message_created``: a user wrote; ``update_id`` is the message's ``mid`` (the same when
  MAX delivers it again). The bot's own messages are ignored.
* ``message_callback``: a button was pressed; ``update_id`` and ``callback_id`` are the
  callback's id, ``action`` the button's payload. The chat is the keyboard message's.
* ``bot_started``: the user pressed Start; it reads as the text ``/start``.

Anything else (edits, removals, group events) is not for the engine: None.
"""

from __future__ import annotations

from typing import Any

from kassa_appliance.channels.conversation.transport import Incoming

MESSENGER = "max"
START_TEXT = "/start"


def _name(user: Any) -> str:
    if not isinstance(user, dict):
        return ""
    parts = [user.get("first_name"), user.get("last_name")]
    return " ".join(str(p) for p in parts if isinstance(p, str) and p).strip()


def _id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _chat_of(message: Any) -> str | None:
    if not isinstance(message, dict):
        return None
    recipient = message.get("recipient")
    return _id(recipient.get("chat_id")) if isinstance(recipient, dict) else None


def incoming_of(update: dict[str, Any]) -> Incoming | None:
    kind = update.get("update_type")
    if kind == "message_created":
        return _from_message(update.get("message"))
    if kind == "message_callback":
        return _from_callback(update.get("callback"), update.get("message"))
    if kind == "bot_started":
        user = update.get("user")
        chat_id = _id(update.get("chat_id"))
        user_id = _id(user.get("user_id")) if isinstance(user, dict) else None
        if chat_id is None or user_id is None:
            return None
        return Incoming(
            messenger=MESSENGER,
            chat_id=chat_id,
            user_id=user_id,
            update_id=f"start:{chat_id}:{update.get('timestamp')}",
            text=START_TEXT,
            user_name=_name(user),
        )
    return None


def _from_message(message: Any) -> Incoming | None:
    if not isinstance(message, dict):
        return None
    sender = message.get("sender")
    body = message.get("body")
    if not isinstance(sender, dict) or sender.get("is_bot") or not isinstance(body, dict):
        return None
    chat_id, user_id, mid = _chat_of(message), _id(sender.get("user_id")), body.get("mid")
    if chat_id is None or user_id is None or not isinstance(mid, str) or not mid:
        return None
    text = body.get("text")
    return Incoming(
        messenger=MESSENGER,
        chat_id=chat_id,
        user_id=user_id,
        update_id=mid,
        text=text if isinstance(text, str) else "",
        user_name=_name(sender),
    )


def _from_callback(callback: Any, message: Any) -> Incoming | None:
    if not isinstance(callback, dict):
        return None
    callback_id = callback.get("callback_id")
    user = callback.get("user")
    user_id = _id(user.get("user_id")) if isinstance(user, dict) else None
    chat_id = _chat_of(message)
    if not isinstance(callback_id, str) or not callback_id or user_id is None:
        return None
    payload = callback.get("payload")
    return Incoming(
        messenger=MESSENGER,
        chat_id=chat_id or "",
        user_id=user_id,
        update_id=callback_id,
        action=payload if isinstance(payload, str) else "",
        callback_id=callback_id,
        user_name=_name(user),
    )
