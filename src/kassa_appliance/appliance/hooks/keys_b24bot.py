"""``snap set`` keys of the ``b24bot`` group (the Bitrix24 chat bot this appliance hosts).

Each parse function turns the raw ``snap set`` value into the field's type and explains a
refusal in the words of :mod:`kassa_appliance.channels.b24bot.settings` (the same rules run
again when ``config.json`` is loaded).
"""

from __future__ import annotations

from kassa_appliance.appliance.hooks.keys_conversation import conversation_keys
from kassa_appliance.appliance.hooks.snap_values import (
    BadValue,
    SnapKey,
    _bool,
    _checked,
    _choice,
)
from kassa_appliance.appliance.hooks.snap_values import _number as number_parser
from kassa_appliance.channels.b24bot.settings import (
    B24BotConfig,
    check_bot_code,
    check_bot_name,
    check_poll_seconds,
)
from kassa_appliance.channels.conversation.access import Cashier, parse_cashiers


def _check_window(value: float) -> float:
    if isinstance(value, int | float) and 0 <= value <= 86400:
        return float(value)
    raise ValueError("is not a time window; expected seconds from 0 to 86400")


def parse_cashiers_key(raw: object) -> object:
    """``17=Мастер Иванов И.И.:500100732259,d5=Мастер Петров П.П.`` (conversation/access.py)."""
    if not isinstance(raw, str):
        raise BadValue(
            "is not allowed; expected who=name[:INN] entries separated by commas, where who "
            "is a user id (17) or d and a department id (d5), "
            "e.g. 17=Мастер Иванов И.И.:500100732259,d5=Мастер Петров П.П."
        )
    try:
        cashiers: dict[str, Cashier] = parse_cashiers(raw)
    except ValueError as error:
        raise BadValue(f"is not a cashier list: {error}") from None
    return cashiers


parse_code = _checked(check_bot_code)
parse_name = _checked(check_bot_name)
parse_bot_type = _choice(B24BotConfig, "bot_type")
parse_poll_seconds = number_parser(check_poll_seconds)
parse_window = number_parser(_check_window)

KEYS: tuple[SnapKey, ...] = (
    SnapKey("b24bot.enabled", _bool, "host the Bitrix24 chat bot on this appliance"),
    SnapKey("b24bot.code", parse_code, "the bot's code in the Kassa app (default kassa_bot)"),
    SnapKey("b24bot.name", parse_name, "the bot's name in the messenger (default Касса)"),
    SnapKey("b24bot.bot-type", parse_bot_type, "personal | supervisor | bot"),
    SnapKey(
        "b24bot.active-poll-seconds",
        parse_poll_seconds,
        "seconds between event polls while a conversation is open (default 1)",
    ),
    SnapKey(
        "b24bot.idle-poll-seconds",
        parse_poll_seconds,
        "seconds between event polls when idle (default 10)",
    ),
    SnapKey(
        "b24bot.active-window-seconds",
        parse_window,
        "how long after the last message a conversation counts as open (default 300)",
    ),
    SnapKey(
        "b24bot.cashiers",
        parse_cashiers_key,
        "who may print and as which cashier: 17=Name:INN,d5=Name (users, d+department)",
    ),
    *conversation_keys("b24bot"),
)
