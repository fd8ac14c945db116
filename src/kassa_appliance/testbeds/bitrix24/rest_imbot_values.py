"""Shared pieces of the emulated ``imbot.v2`` methods: argument coercion (booleans as
``true``/``"Y"``, numbers from JSON or form bodies), the keyboard and attach checks of
message-keyboards.md and attachments/index.md, and :class:`BotAccess` — which bot is calling
(``BOT_ID_REQUIRED``, ``BOT_NOT_FOUND``, ``BOT_TOKEN_NOT_SPECIFIED``, ``BOT_OWNERSHIP_ERROR``)
and whether it may write in a dialog (``ACCESS_DENIED``).
"""

from __future__ import annotations

import json
from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_imbot_state import Bot, Chat, ImbotPortal
from kassa_appliance.testbeds.bitrix24.rest_types import ApiError, Caller

BOT_TYPES = frozenset({"bot", "network", "openline", "supervisor", "personal"})
READING_TYPES = frozenset({"personal", "supervisor"})
TOKEN_MAX_LENGTH = 40
MESSAGE_MAX = 20000
ATTACH_MAX = 60000
FILE_MAX = 100 * 1024 * 1024
ATTACH_BLOCKS = frozenset({"MESSAGE", "LINK", "USER", "GRID", "IMAGE", "FILE", "DELIMITER"})
BUTTON_ACTIONS = ("LINK", "COMMAND", "ACTION", "APP_ID")
PREFIX = "imbot.v2."


def fail(code: str, text: str, status: int = 400) -> ApiError:
    return ApiError(status, code, text)


def flag(value: Any, default: bool = False) -> bool:
    """Booleans as JSON ``true``/``false`` or ``"Y"``/``"N"`` (index.md "Boolean Parameters")."""
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.upper() in {"Y", "TRUE", "1"}
    return bool(value)


def number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def fields_of(params: dict[str, Any], required: bool = False) -> dict[str, Any]:
    fields = params.get("fields")
    if fields is None and not required:
        return {}
    if not isinstance(fields, dict):
        raise fail("INVALID_ARGUMENTS", "fields must be an object")
    return fields


def keyboard_of(value: Any) -> dict[str, Any] | None:
    """A ``keyboard`` in any documented form (JSON text, ``{BUTTONS}``, a bare list) as
    ``{"BUTTONS": [...]}``; ``"N"`` or empty removes it (message-keyboards.md)."""
    if value in (None, "", "N", [], {}):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise fail("KEYBOARD_ERROR", "keyboard is not valid JSON") from None
    keyboard = value if isinstance(value, dict) and "BUTTONS" in value else {"BUTTONS": value}
    buttons = keyboard.get("BUTTONS")
    if not isinstance(buttons, list):
        raise fail("KEYBOARD_ERROR", "keyboard BUTTONS must be an array")
    for button in buttons:
        if not isinstance(button, dict):
            raise fail("KEYBOARD_ERROR", "each button must be an object")
        if button.get("TYPE") == "NEWLINE":
            continue
        if not button.get("TEXT") or not any(button.get(k) for k in BUTTON_ACTIONS):
            raise fail("KEYBOARD_ERROR", "a button needs TEXT and LINK, COMMAND, ACTION or APP_ID")
        if button.get("ACTION") and not button.get("ACTION_VALUE"):
            raise fail("KEYBOARD_ERROR", "ACTION needs ACTION_VALUE")
    return dict(keyboard)


def attach_of(value: Any) -> Any:
    """Checks an ``attach`` (full form with ``BLOCKS`` or a bare list of blocks)."""
    if value in (None, "", []):
        return None
    if len(json.dumps(value, ensure_ascii=False)) > ATTACH_MAX:
        raise fail("ATTACH_OVERSIZE", "Attach is too large")
    blocks = value.get("BLOCKS") if isinstance(value, dict) else value
    if not isinstance(blocks, list):
        raise fail("ATTACH_ERROR", "Attach structure is incorrect")
    for block in blocks:
        if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in ATTACH_BLOCKS:
            raise fail("ATTACH_ERROR", "Attach structure is incorrect")
    return value


def message_text(value: Any) -> str:
    text = "" if value is None else str(value)
    if len(text) > MESSAGE_MAX:
        text = text[: MESSAGE_MAX - 6] + " (...)"
    return text


class BotAccess:
    def __init__(self, portal: ImbotPortal) -> None:
        self.portal = portal

    def bot(self, caller: Caller, params: dict[str, Any]) -> Bot:
        if params.get("botId") in (None, ""):
            raise fail("BOT_ID_REQUIRED", "Bot ID is required")
        bot = self.portal.bots.get(number(params.get("botId")) or -1)
        if bot is None:
            raise fail("BOT_NOT_FOUND", "Bot not found")
        self._owns(caller, params, bot)
        return bot

    def _owns(self, caller: Caller, params: dict[str, Any], bot: Bot) -> None:
        if caller.application:
            if bot.owner != "app":
                raise fail("BOT_OWNERSHIP_ERROR", "Bot is registered by another application", 403)
            return
        token = params.get("botToken")
        if not token:
            raise fail("BOT_TOKEN_NOT_SPECIFIED", "Bot token is not specified")
        if token != bot.token:
            raise fail("BOT_OWNERSHIP_ERROR", "Bot is registered by another application", 403)

    def chat(self, bot: Bot, params: dict[str, Any]) -> Chat:
        dialog = str(params.get("dialogId") or "")
        if not dialog:
            raise fail("DIALOG_ID_REQUIRED", "Dialog ID is required")
        chat = self.portal.chat_of_dialog(bot.id, dialog)
        if chat is None or bot.id not in chat.members or (bot.id, chat.id) in self.portal.denied:
            raise fail("ACCESS_DENIED", "Access denied", 403)
        return chat
