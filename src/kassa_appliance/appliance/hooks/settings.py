"""``snap set`` keys → :class:`kassa_appliance.appliance.config.Config`.

Each key has its own parse function (one job each, nextcloud-snap style). A parse function
turns the raw value ``snapctl get -d`` printed (JSON: ``snap set`` stores ``true``, ``7`` or
``[1,2]`` typed, anything else as a string) into the model's value, or raises
:class:`BadValue` with a reason. The value rules themselves are the ``check_*`` functions of
:mod:`kassa_appliance.appliance.config`, which the model also runs, and the assembled document is
validated by ``Config`` itself: the hook accepts exactly what the daemon can run on.
The coercion helpers the parse functions are built from are in
:mod:`kassa_appliance.appliance.hooks.snap_values`.

Device policy on top of the model (the model also admits loopback ``http://`` for the
emulator): the portal and the webhook must be ``https://``, secrets have a minimum length.

Messages name the key, show the value (never for secrets) and say what is allowed::

    register.driver: "foo" is not allowed; expected one of simulator, fptr10, webrequests
    bitrix.client-secret: value is too short; expected at least 16 characters

``bitrix.refresh-token`` may carry a spare token: ``<main>,<spare>`` (each checked alone).

``bitrix.pairing`` (the Kassa app's pairing code, :mod:`kassa_appliance.bitrix.pairing_code`)
stands for ``bitrix.portal``, ``bitrix.client-id``, ``bitrix.client-secret``,
``bitrix.refresh-token`` and ``kassa.id`` at once: :mod:`kassa_appliance.appliance.hooks.pairing`
takes the code apart, and each value then goes through its own key's parse function, so the
code is held to exactly the rules of the separate keys. **The code wins** over those keys
(setting it is re-pairing), and the configure hook writes its values into them and unsets
``bitrix.pairing`` (``pairing_notes`` says what it replaced), so ``snap get`` shows what
runs and a later ``snap set`` of one key works as usual. Its messages name the code and the
part of it that is wrong, never a secret::

    bitrix.pairing: the code's portal "http://example.ru" is not an https URL; expected …
    bitrix.pairing: the code's client_secret is too short; expected at least 16 characters
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from kassa_appliance.appliance import config as cfg
from kassa_appliance.appliance.config_errors import describe_validation_error
from kassa_appliance.appliance.hooks import (
    keys_automation,
    keys_b24bot,
    keys_lan,
    keys_maxbot,
    keys_relay,
)
from kassa_appliance.appliance.hooks.pairing import PAIRING_KEY, expand_pairing, parse_pairing
from kassa_appliance.appliance.hooks.snap_values import (
    BadValue,
    SnapKey,
    _bool,
    _checked,
    _choice,
    _id_list,
    _is_unset,
    _number,
    _secret,
    _text,
    show_value,
)
from kassa_appliance.bitrix.settings import (
    check_department_ids,
    check_notify_users,
    check_rest_burst,
    check_rest_rate,
)
from kassa_appliance.inputs import shorten

_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class InvalidSettings(Exception):
    """One or more keys are invalid; ``messages`` holds one line per problem."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


# -- one parse function per key ------------------------------------------------------------


def parse_portal(raw: object) -> object:
    try:
        return cfg.check_portal_url(_text(raw), allow_loopback_http=False)
    except ValueError as error:
        raise BadValue(str(error)) from None


def parse_client_id(raw: object) -> object:
    value = _text(raw)
    if not _CLIENT_ID.fullmatch(value):
        raise BadValue(
            "is not a valid client id; expected the application's client_id, "
            "e.g. local.5f1a2b3c4d5e6f.12345678"
        )
    return value


def parse_client_secret(raw: object) -> object:
    return _secret(raw)


def parse_refresh_token(raw: object) -> object:
    """``<main>`` or ``<main>,<spare>`` (a second, independent chain; see docs), each token
    checked alone. A new value means re-pairing: the daemon drops its rotated token chain."""
    if not isinstance(raw, str):
        raise BadValue("is not allowed; expected text")
    main, comma, spare = raw.partition(",")
    _secret(main)
    if not comma:
        return raw
    try:
        _secret(spare)
    except BadValue as error:
        raise BadValue(f"has a spare token (after the comma) that {error}") from None
    if spare == main:
        raise BadValue(
            "has a spare token equal to the main one; expected a second, independent token"
        )
    return raw


def parse_webhook(raw: object) -> object:
    if not isinstance(raw, str):
        raise BadValue("is not allowed; expected text")
    try:
        return cfg.check_webhook_url(raw, allow_loopback_http=False)
    except ValueError as error:
        raise BadValue(str(error)) from None


def parse_allowed_users(raw: object) -> object:
    """``1,17,42`` (a string), ``42`` (a number) or ``[1, 17]`` (a JSON list)."""
    problem = BadValue("is not allowed; expected comma-separated Bitrix24 user ids, e.g. 1,17,42")
    try:
        return cfg.check_user_ids(_id_list(raw, problem))
    except ValueError:
        raise problem from None


def parse_allowed_departments(raw: object) -> object:
    """Department ids like :func:`parse_allowed_users`; sub-departments count too."""
    problem = BadValue(
        "is not allowed; expected comma-separated Bitrix24 department ids, e.g. 1,5,12"
    )
    try:
        return check_department_ids(_id_list(raw, problem))
    except ValueError as error:
        raise BadValue(str(error)) from None


def parse_notify_users(raw: object) -> object:
    """User ids like :func:`parse_allowed_users`, at most ``MAX_NOTIFY_USERS``."""
    problem = BadValue("is not allowed; expected comma-separated Bitrix24 user ids, e.g. 1,17,42")
    try:
        return check_notify_users(_id_list(raw, problem))
    except ValueError as error:
        raise BadValue(str(error)) from None


parse_kassa_id = _checked(cfg.check_kassa_id)
parse_driver = _choice(cfg.RegisterConfig, "driver")
parse_usb_path = _checked(cfg.check_usb_path)
parse_lib_path = _checked(cfg.check_lib_path)
parse_register_url = _checked(cfg.check_http_url)
parse_operator_name = _checked(cfg.check_operator_name)
parse_vatin = _checked(cfg.check_vatin)
parse_taxation = _choice(cfg.CompanyConfig, "taxation")
parse_log_level = _choice(cfg.LogConfig, "level")
parse_rest_rate = _number(check_rest_rate)
parse_rest_burst = _number(check_rest_burst, whole=True)


SNAP_KEYS: tuple[SnapKey, ...] = (
    SnapKey("bitrix.portal", parse_portal, "portal address, https://<portal>"),
    SnapKey("bitrix.client-id", parse_client_id, "Kassa app client_id"),
    SnapKey("bitrix.client-secret", parse_client_secret, "Kassa app client_secret", True),
    SnapKey("bitrix.refresh-token", parse_refresh_token, "pairing refresh token", True),
    SnapKey("bitrix.pairing", parse_pairing, "pairing code from the Kassa app", True),
    SnapKey("bitrix.webhook", parse_webhook, "inbound webhook URL (REST only)", True),
    SnapKey("bitrix.allowed-users", parse_allowed_users, "user ids allowed to create jobs"),
    SnapKey(
        "bitrix.allowed-departments",
        parse_allowed_departments,
        "department ids whose users (sub-departments too) may create jobs",
    ),
    SnapKey("bitrix.notify-users", parse_notify_users, "user ids told of the kassa's problems"),
    SnapKey("bitrix.rest-rate", parse_rest_rate, "REST requests per second this kassa may send"),
    SnapKey("bitrix.rest-burst", parse_rest_burst, "REST requests this kassa may send at once"),
    SnapKey("kassa.id", parse_kassa_id, "this appliance's kassa id in Bitrix24"),
    SnapKey("register.driver", parse_driver, "simulator | fptr10 | webrequests"),
    SnapKey(
        "register.usb-path",
        parse_usb_path,
        "auto, a USB port path such as 1-1.3 or a serial port such as /dev/ttyACM0",
    ),
    SnapKey("register.lib-path", parse_lib_path, "absolute path of libfptr10.so"),
    SnapKey("register.url", parse_register_url, "Atol Web Requests server URL"),
    SnapKey("operator.name", parse_operator_name, "default cashier name"),
    SnapKey("operator.vatin", parse_vatin, "default cashier INN"),
    SnapKey("company.taxation", parse_taxation, "default taxation system"),
    SnapKey("shift.auto-open", _bool, "open a shift when needed"),
    SnapKey("shift.auto-close", _bool, "close an expired (24 h) shift automatically"),
    SnapKey("log.level", parse_log_level, "debug | info | warning | error"),
    *keys_b24bot.KEYS,
    *keys_maxbot.KEYS,
    *keys_automation.KEYS,
    *keys_lan.KEYS,
    *keys_relay.KEYS,
)
KEYS_BY_NAME: Mapping[str, SnapKey] = {key.name: key for key in SNAP_KEYS}
SNAP_GROUPS: tuple[str, ...] = tuple(dict.fromkeys(key.group for key in SNAP_KEYS))

INSTALL_SEEDED_KEYS: tuple[str, ...] = (
    "kassa.id",
    "register.usb-path",
    "register.url",
    "shift.auto-open",
    "shift.auto-close",
    "log.level",
    "b24bot.enabled",
    "maxbot.enabled",
    "automation.enabled",
    "lan.enabled",
    "lan.port",
    "relay.enabled",
)
"""Keys the install hook makes visible in ``snap get``. Never ``register.driver``: on a
device the register is an explicit choice, so the simulator is never the silent default.

Each channel's on switch (``false``) is seeded so ``snap get kassa-appliance`` shows that
the channel exists, and ``lan.port`` because LAN clients (1C, a web shop) must be pointed
at it. Nothing whose default may move with a release (``maxbot.api-url``, poll intervals)
is seeded: a seeded value is pinned on that device for good."""


# -- document ↔ config ---------------------------------------------------------------------


def _message(key: SnapKey, raw: object, reason: str) -> str:
    if key.secret:
        return f"{key.name}: value {reason}"
    return f"{key.name}: {show_value(raw)} {reason}"


def _keys_in(group: str) -> str:
    return ", ".join(key.name for key in SNAP_KEYS if key.group == group)


def config_from_snap(document: Mapping[str, Any]) -> cfg.Config:
    """Validate ``snapctl get -d <groups>`` output and build the daemon's Config."""
    order = {key.name: index for index, key in enumerate(SNAP_KEYS)}
    document, pairing_problems = expand_pairing(document, KEYS_BY_NAME)
    messages: list[tuple[int, str]] = [(order[PAIRING_KEY], text) for text in pairing_problems]
    sections: dict[str, dict[str, object]] = {}
    for group, values in document.items():
        if group not in SNAP_GROUPS:
            continue
        if not isinstance(values, dict):
            messages.append(
                (
                    len(order),
                    f"{group}: {show_value(values)} is not allowed; "
                    f"expected a group of keys ({_keys_in(group)})",
                )
            )
            continue
        section = sections.setdefault(group, {})
        for sub, raw in values.items():
            name = f"{group}.{sub}"
            key = KEYS_BY_NAME.get(name)
            if key is None:
                shown = f"{group}.{shorten(str(sub), 60)}"
                messages.append(
                    (len(order), f"{shown}: unknown key; expected one of {_keys_in(group)}")
                )
                continue
            if _is_unset(raw):
                continue
            try:
                section[key.field] = key.parse(raw)
            except BadValue as error:
                messages.append((order[name], _message(key, raw, str(error))))
    if messages:
        # key order; a code's problems in the order of its fields (sorted() is stable)
        pairing = order[PAIRING_KEY]
        ranked = sorted(messages, key=lambda item: (item[0], "" if item[0] == pairing else item[1]))
        raise InvalidSettings([text for _, text in ranked])
    try:
        return cfg.Config.model_validate({**sections, "register": _register(sections)})
    except ValidationError as error:
        raise InvalidSettings(describe_validation_error(error)) from None


def _register(sections: Mapping[str, dict[str, object]]) -> dict[str, object]:
    """An unset register.driver is None ("not chosen"), not the model's off-device default."""
    register = dict(sections.get("register", {}))
    register.setdefault("driver", None)
    return register


def snap_defaults(keys: tuple[str, ...] = INSTALL_SEEDED_KEYS) -> dict[str, object]:
    """The model's default for each key, in ``snap set`` form (JSON-able values)."""
    defaults = cfg.Config()
    values: dict[str, object] = {}
    for name in keys:
        key = KEYS_BY_NAME[name]
        values[name] = getattr(getattr(defaults, key.group), key.field)
    return values
