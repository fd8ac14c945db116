"""``snap set`` keys of the ``maxbot`` group (the MAX bot this appliance hosts).

    snap set kassa-appliance maxbot.token=<token from business.max.ru> maxbot.enabled=true \
        maxbot.cashiers='4123456=Мастер Иванов И.И.:500100732259'

``maxbot.api-url`` must be https on a device (the emulator's loopback http is for tests).
The token is a secret: never echoed in a message.
"""

from __future__ import annotations

import re

from kassa_appliance.appliance.hooks.keys_conversation import conversation_keys
from kassa_appliance.appliance.hooks.snap_values import (
    BadValue,
    SnapKey,
    _bool,
    _checked,
    _is_text_or_whole,
    _number,
    _secret,
)
from kassa_appliance.channels.conversation.access import parse_cashiers
from kassa_appliance.channels.maxbot.settings import check_api_url, check_poll_timeout


def parse_token(raw: object) -> object:
    return _secret(raw)


CASHIER_FORM = (
    "<MAX user id>=<cashier name>[:<INN>] entries separated by commas, "
    "e.g. 4123456=Мастер Иванов И.И.:500100732259"
)
_DEPARTMENT = re.compile(r"[dD][0-9]+")


def parse_cashier_list(raw: object) -> object:
    """``<MAX user id>=<cashier name>[:<INN>]``, entries separated by ``,`` or ``;``.

    The shape of each entry is checked here first, so a malformed one is explained in MAX's
    terms (the shared parser's words mention Bitrix24 departments, which MAX has not)."""
    if not _is_text_or_whole(raw):
        raise BadValue(f"is not allowed; expected {CASHIER_FORM}")
    text = str(raw)
    for entry in (part.strip() for part in re.split(r"[,;]", text)):
        who, sep, _ = entry.partition("=")
        who = who.strip()
        if _DEPARTMENT.fullmatch(who):
            raise BadValue(f"names {who}, but MAX has no departments; expected MAX user ids")
        if entry and (not sep or not (who.isascii() and who.isdigit())):
            raise BadValue(f"is not a cashier list: entry {entry[:40]!r}; expected {CASHIER_FORM}")
    try:
        parse_cashiers(text)
    except ValueError as error:
        raise BadValue(f"is not a cashier list: {error}") from None
    return text


parse_api_url = _checked(lambda value: check_api_url(value, allow_loopback_http=False))
parse_poll_timeout = _number(check_poll_timeout, whole=True)

KEYS: tuple[SnapKey, ...] = (
    SnapKey("maxbot.enabled", _bool, "run the MAX bot on this appliance"),
    SnapKey("maxbot.token", parse_token, "the MAX bot's token (business.max.ru)", True),
    SnapKey("maxbot.api-url", parse_api_url, "MAX Bot API base URL (https)"),
    SnapKey("maxbot.poll-timeout", parse_poll_timeout, "seconds MAX holds a long poll (1-90)"),
    SnapKey(
        "maxbot.cashiers",
        parse_cashier_list,
        "who may print: <MAX user id>=<cashier name>[:<INN>],…",
    ),
    *conversation_keys("maxbot"),
)
