"""Turning raw ``snap set`` values into typed ones: the :class:`SnapKey` descriptor, the
coercion helpers every key's parse function in :mod:`kassa_appliance.appliance.hooks.settings`
is built from, :class:`BadValue` (a parse function's complaint), how a rejected value is
shown, and reading dotted keys of a ``snapctl get -d`` document.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kassa_appliance.inputs import shorten

SECRET_MIN_LENGTH = 16
SECRET_MAX_LENGTH = 512


class BadValue(ValueError):
    """A parse function's complaint; the reason reads after the value ("is not allowed; …")."""


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


def _is_text_or_whole(value: object) -> bool:
    """Text, or a whole number standing for its digits (``snap set b24bot.kassas=7`` stores 7)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _bool(raw: object) -> object:
    """``true``/``false``, typed by ``snap set`` as JSON or given as text."""
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):
        return raw == "true"
    raise BadValue("is not allowed; expected true or false")


def _id_list(raw: object, problem: BadValue) -> list[int]:
    """``1,5,12`` (a string), ``5`` (a number) or ``[1, 5]`` (a JSON list) as whole numbers;
    anything else raises ``problem`` (the caller's words for what ids are expected)."""
    if isinstance(raw, bool) or not isinstance(raw, int | str | list):
        raise problem
    if isinstance(raw, int):
        items: list[object] = [raw]
    elif isinstance(raw, str):
        items = [part.strip() for part in raw.split(",")] if raw.strip() else []
    else:
        items = list(raw)
    ids: list[int] = []
    for item in items:
        if isinstance(item, str) and item.isascii() and item.isdigit():
            ids.append(int(item))
        elif isinstance(item, int) and not isinstance(item, bool):
            ids.append(item)
        else:
            raise problem
    return ids


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


def _number(check: Callable[[Any], object], *, whole: bool = False) -> Parser:
    """A JSON number or text holding a plain one (``1.8``, ``"40"``), then ``check``; any
    other value gets the check's own reason (it refuses -1 with it)."""

    def parse(raw: object) -> object:
        value = raw
        if isinstance(raw, str) and re.fullmatch(r"[0-9]+(\.[0-9]+)?", raw.strip()):
            value = float(raw)
        if whole and isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
            value = -1
        try:
            return check(value)
        except ValueError as error:
            raise BadValue(str(error)) from None

    return parse


SHOWN_VALUE_LENGTH = 100
"""Characters of a rejected value quoted in a message (longer ones end in "…")."""


def show_value(raw: object) -> str:
    """A value as the user typed it, fit for a message: strings in double quotes, JSON for
    the rest; control characters escaped (``\\x00``) and long values cut with "…"."""
    if isinstance(raw, str):
        return f'"{shorten(raw, SHOWN_VALUE_LENGTH)}"'
    return shorten(json.dumps(raw, ensure_ascii=False), SHOWN_VALUE_LENGTH)


def _is_unset(raw: object) -> bool:
    """``null`` and ``""`` mean "use the default", like ``snap unset``."""
    return raw is None or raw == ""


def lookup(document: Mapping[str, Any], name: str) -> object:
    """The raw value of a dotted key in a ``get -d`` document, or None."""
    group, sub = name.split(".", 1)
    values = document.get(group)
    return values.get(sub) if isinstance(values, dict) else None
