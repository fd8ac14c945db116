"""The ``b24bot`` section of the configuration: the Bitrix24 chat bot (imbot.v2) hosted here.

Off by default. Exactly one appliance of a portal should host the bot (``b24bot.enabled``):
it registers the bot for the Kassa app (found again by ``code`` after a restart or on a
replacement appliance) and polls its events; every kassa of the portal can print the jobs
it creates. The rules here run on every load of ``config.json`` and on every ``snap set``
(the keys are in :mod:`kassa_appliance.appliance.hooks.keys_b24bot`).

The conversation settings — ``cashiers`` (the allow-list: Bitrix24 users ``17`` and
departments ``d5``, each mapped to the cashier name and INN of tags 1021/1203), ``kassas``,
``vat``… — come from :class:`~kassa_appliance.channels.conversation.settings.ConversationSettings`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import field_validator

from kassa_appliance.channels.conversation.settings import ConversationSettings
from kassa_appliance.setting_checks import first_control_character

BOT_CODE = re.compile(r"^[a-z0-9_]{1,50}$")
ACTIVE_POLL_MIN = 1.0
"""One ``Event.get`` a second is half the app's 2 requests/s (the daemon's budget is 1.8):
faster polling would crowd out job intake and write-backs."""
IDLE_POLL_MAX = 30.0
"""The docs recommend 5–30 s between polls when idle (chat-bots-v2/index.md#polling)."""


def check_bot_code(value: str) -> str:
    if not BOT_CODE.match(value):
        raise ValueError("is not a bot code; expected 1–50 lowercase letters, digits or _")
    return value


def check_bot_name(value: str) -> str:
    if not value.strip() or first_control_character(value) is not None or len(value) > 100:
        raise ValueError("is not a bot name; expected up to 100 characters of plain text")
    return value


def check_poll_seconds(value: float) -> float:
    if not ACTIVE_POLL_MIN <= value <= IDLE_POLL_MAX:
        lowest, highest = f"{ACTIVE_POLL_MIN:g}", f"{IDLE_POLL_MAX:g}"
        raise ValueError(f"is not a poll interval; expected seconds from {lowest} to {highest}")
    return value


class B24BotConfig(ConversationSettings):
    enabled: bool = False
    code: str = "kassa_bot"
    """The bot's code within the Kassa app: how the appliance finds its bot again."""
    name: str = "Касса"
    bot_type: Literal["personal", "supervisor", "bot"] = "personal"
    """``personal`` (default) lets the bot read its dialogs back (``Chat.Message.getContext``),
    which is how a reply that may have been sent before a crash is found instead of being
    sent twice; with ``bot`` that look is impossible (see docs/chat-bots.md)."""
    active_poll_seconds: float = 1.0
    """Between ``Event.get`` calls while a conversation is open."""
    idle_poll_seconds: float = 10.0
    """Between ``Event.get`` calls when nobody has written for ``active_window_seconds``."""
    active_window_seconds: float = 300.0

    _code = field_validator("code")(check_bot_code)
    _name = field_validator("name")(check_bot_name)
    _active = field_validator("active_poll_seconds", "idle_poll_seconds")(check_poll_seconds)

    @field_validator("active_window_seconds")
    @classmethod
    def _window(cls, value: float) -> float:
        if not 0 <= value <= 86400:
            raise ValueError("is not a time window; expected seconds from 0 to 86400")
        return value
