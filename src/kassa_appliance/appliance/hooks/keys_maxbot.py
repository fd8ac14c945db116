"""``snap set`` keys of the ``maxbot`` group (the MAX bot this appliance hosts).

    snap set kassa-appliance maxbot.token=<token from business.max.ru> maxbot.enabled=true \
        maxbot.cashiers='4123456=Мастер Иванов И.И.:500100732259'

``maxbot.api-url`` must be https on a device (the emulator's loopback http is for tests).
The token is a secret: never echoed in a message.
"""

from __future__ import annotations

from kassa_appliance.appliance.hooks.keys_conversation import conversation_keys
from kassa_appliance.appliance.hooks.snap_values import (
    BadValue,
    SnapKey,
    _checked,
    _number,
    _secret,
)
from kassa_appliance.channels.conversation.access import parse_cashiers
from kassa_appliance.channels.maxbot.settings import check_api_url, check_poll_timeout


def parse_enabled(raw: object) -> object:
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):
        return raw == "true"
    raise BadValue("is not allowed; expected true or false")


def parse_token(raw: object) -> object:
    return _secret(raw)


def parse_cashier_list(raw: object) -> object:
    """``<MAX user id>=<cashier name>[:<INN>]``, entries separated by ``,`` or ``;``."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise BadValue(
            "is not allowed; expected <MAX user id>=<cashier name>[:<INN>] entries, "
            "e.g. 4123456=Мастер Иванов И.И.:500100732259"
        )
    try:
        cashiers = parse_cashiers(str(raw))
    except ValueError as error:
        raise BadValue(f"is not allowed: {error}") from None
    departments = [who for who in cashiers if not who.isdigit()]
    if departments:
        raise BadValue(f"names {departments[0]}, but MAX has no departments; expected MAX user ids")
    return str(raw)


parse_api_url = _checked(lambda value: check_api_url(value, allow_loopback_http=False))
parse_poll_timeout = _number(check_poll_timeout, whole=True)

KEYS: tuple[SnapKey, ...] = (
    SnapKey("maxbot.enabled", parse_enabled, "run the MAX bot on this appliance"),
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
