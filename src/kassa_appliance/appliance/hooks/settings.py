"""``snap set`` keys → :class:`kassa_appliance.appliance.config.Config`.

Each key has its own parse function (one job each, nextcloud-snap style). A parse function
turns the raw value ``snapctl get -d`` printed (JSON: ``snap set`` stores ``true``, ``7`` or
``[1,2]`` typed, anything else as a string) into the model's value, or raises
:class:`BadValue` with a reason. The value rules themselves are the ``check_*`` functions of
:mod:`kassa_appliance.appliance.config`, which the model also runs, and the assembled document is
validated by ``Config`` itself: the hook accepts exactly what the daemon can run on.

Device policy on top of the model (the model also admits loopback ``http://`` for the
emulator): the portal and the webhook must be ``https://``, secrets have a minimum length.

Messages name the key, show the value (never for secrets) and say what is allowed::

    register.driver: "foo" is not allowed; expected one of simulator, fptr10, webrequests
    bitrix.client-secret: value is too short; expected at least 16 characters
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from kassa_appliance.appliance import config as cfg
from kassa_appliance.appliance.config_errors import describe_validation_error
from kassa_appliance.inputs import shorten

SECRET_MIN_LENGTH = 16
SECRET_MAX_LENGTH = 512
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class BadValue(ValueError):
    """A parse function's complaint; the reason reads after the value ("is not allowed; …")."""


class InvalidSettings(Exception):
    """One or more keys are invalid; ``messages`` holds one line per problem."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


Parser = Callable[[object], object]


@dataclass(frozen=True)
class SnapKey:
    name: str
    """The ``snap set`` key, e.g. ``register.usb-path``."""
    parse: Parser
    help: str
    secret: bool = False

    @property
    def group(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def field(self) -> str:
        """The model field: dashes become underscores."""
        return self.name.split(".", 1)[1].replace("-", "_")


# -- coercion helpers ----------------------------------------------------------------------


EXACT_NUMBER_LIMIT = 2**53
"""A JSON number at or beyond this may not hold the digits that were typed (it is a double)."""


def _text(raw: object) -> str:
    """A text value; a bare whole number counts as its digits.

    ``snap set kassa.id=7`` stores the number 7, and ``snap set operator.vatin=5.00100732259e11``
    (or a JSON number set through the REST API) stores a float: a whole number below 2**53
    is exact, so it is read as its digits (``500100732259``); a fraction, or a number too
    large to be exact, is refused rather than guessed at.
    """
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        raise BadValue("is not allowed; expected text")
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if not raw.is_integer():
            raise BadValue("is a number with a fraction; expected text or a whole number")
        if abs(raw) >= EXACT_NUMBER_LIMIT:
            raise BadValue(
                "is a number too large to keep its digits exactly; expected it as text "
                "(in quotes) or as a whole number of at most 15 digits"
            )
        return str(int(raw))
    raise BadValue("is not allowed; expected text")


def _checked(check: Callable[[str], str]) -> Parser:
    def parse(raw: object) -> object:
        try:
            return check(_text(raw))
        except ValueError as error:
            raise BadValue(str(error)) from None

    return parse


def _field_choices(section: type[BaseModel], field: str) -> tuple[str, ...]:
    """The allowed words of a ``Literal[...]`` model field: one source of truth."""
    annotation = section.model_fields[field].annotation
    words: list[str] = []
    pending: list[object] = [annotation]
    while pending:
        item = pending.pop(0)
        if typing.get_origin(item) is typing.Literal:
            words.extend(str(arg) for arg in typing.get_args(item))
        else:
            pending.extend(typing.get_args(item))
    return tuple(words)


def _choice(section: type[BaseModel], field: str) -> Parser:
    choices = _field_choices(section, field)

    def parse(raw: object) -> object:
        if isinstance(raw, str) and raw in choices:
            return raw
        raise BadValue(f"is not allowed; expected one of {', '.join(choices)}")

    return parse


def _secret(raw: object) -> str:
    if not isinstance(raw, str):
        raise BadValue("is not allowed; expected text")
    if any(char.isspace() or not char.isprintable() for char in raw):
        raise BadValue("contains spaces or control characters; expected the value as issued")
    if len(raw) < SECRET_MIN_LENGTH:
        raise BadValue(f"is too short; expected at least {SECRET_MIN_LENGTH} characters")
    if len(raw) > SECRET_MAX_LENGTH:
        raise BadValue(f"is too long; expected at most {SECRET_MAX_LENGTH} characters")
    return raw


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
    """A new value means re-pairing: the daemon drops its rotated token chain (see docs)."""
    return _secret(raw)


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
    if isinstance(raw, bool):
        raise problem
    if isinstance(raw, int):
        items: list[object] = [raw]
    elif isinstance(raw, str):
        items = [part.strip() for part in raw.split(",")] if raw.strip() else []
    elif isinstance(raw, list):
        items = list(raw)
    else:
        raise problem
    ids: list[int] = []
    for item in items:
        if isinstance(item, str) and item.isascii() and item.isdigit():
            ids.append(int(item))
        elif isinstance(item, int) and not isinstance(item, bool):
            ids.append(item)
        else:
            raise problem
    try:
        return cfg.check_user_ids(ids)
    except ValueError:
        raise problem from None


def parse_bool(raw: object) -> object:
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):
        return raw == "true"
    raise BadValue("is not allowed; expected true or false")


parse_kassa_id = _checked(cfg.check_kassa_id)
parse_driver = _choice(cfg.RegisterConfig, "driver")
parse_usb_path = _checked(cfg.check_usb_path)
parse_lib_path = _checked(cfg.check_lib_path)
parse_register_url = _checked(cfg.check_http_url)
parse_operator_name = _checked(cfg.check_operator_name)
parse_vatin = _checked(cfg.check_vatin)
parse_taxation = _choice(cfg.CompanyConfig, "taxation")
parse_log_level = _choice(cfg.LogConfig, "level")


SNAP_KEYS: tuple[SnapKey, ...] = (
    SnapKey("bitrix.portal", parse_portal, "portal address, https://<portal>"),
    SnapKey("bitrix.client-id", parse_client_id, "Kassa app client_id"),
    SnapKey("bitrix.client-secret", parse_client_secret, "Kassa app client_secret", True),
    SnapKey("bitrix.refresh-token", parse_refresh_token, "pairing refresh token", True),
    SnapKey("bitrix.webhook", parse_webhook, "inbound webhook URL (REST only)", True),
    SnapKey("bitrix.allowed-users", parse_allowed_users, "user ids allowed to create jobs"),
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
    SnapKey("shift.auto-open", parse_bool, "open a shift when needed"),
    SnapKey("shift.auto-close", parse_bool, "close an expired (24 h) shift automatically"),
    SnapKey("log.level", parse_log_level, "debug | info | warning | error"),
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
)
"""Keys the install hook makes visible in ``snap get``. Never ``register.driver``: on a
device the register is an explicit choice, so the simulator is never the silent default."""


# -- document ↔ config ---------------------------------------------------------------------


SHOWN_VALUE_LENGTH = 100
"""Characters of a rejected value quoted in a message (longer ones end in "…")."""


def show_value(raw: object) -> str:
    """A value as the user typed it, fit for a message: strings in double quotes, JSON for
    the rest; control characters escaped (``\\x00``) and long values cut with "…"."""
    if isinstance(raw, str):
        return f'"{shorten(raw, SHOWN_VALUE_LENGTH)}"'
    return shorten(json.dumps(raw, ensure_ascii=False), SHOWN_VALUE_LENGTH)


def _message(key: SnapKey, raw: object, reason: str) -> str:
    if key.secret:
        return f"{key.name}: value {reason}"
    return f"{key.name}: {show_value(raw)} {reason}"


def _keys_in(group: str) -> str:
    return ", ".join(key.name for key in SNAP_KEYS if key.group == group)


def _is_unset(raw: object) -> bool:
    """``null`` and ``""`` mean "use the default", like ``snap unset``."""
    return raw is None or raw == ""


def config_from_snap(document: Mapping[str, Any]) -> cfg.Config:
    """Validate ``snapctl get -d <groups>`` output and build the daemon's Config."""
    messages: list[tuple[int, str]] = []
    order = {key.name: index for index, key in enumerate(SNAP_KEYS)}
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
        raise InvalidSettings([text for _, text in sorted(messages)])
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


def lookup(document: Mapping[str, Any], name: str) -> object:
    """The raw value of a dotted key in a ``get -d`` document, or None."""
    group, sub = name.split(".", 1)
    values = document.get(group)
    return values.get(sub) if isinstance(values, dict) else None
