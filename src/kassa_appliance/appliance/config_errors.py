"""Pydantic's complaints about a configuration, in the integrator's words.

Pydantic's own messages speak Python ("Input should be a valid dictionary or instance of
RegisterConfig", "Decimal input should be an integer, float, string or Decimal object").
:func:`describe_validation_error` names the setting the way ``snap set`` does
(``register.task-timeout``), says what is wrong and what was expected, and never quotes the
input (it may be a secret).
"""

from __future__ import annotations

import re

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from kassa_appliance.inputs import shorten

_EXPECTED: dict[str, str] = {
    "string_type": "is not text; expected text",
    "string_too_long": "is too long",
    "int_type": "is not a whole number; expected a whole number",
    "int_parsing": "is not a whole number; expected a whole number",
    "int_from_float": "is not a whole number; expected a whole number",
    "float_type": "is not a number; expected a number",
    "float_parsing": "is not a number; expected a number",
    "decimal_type": "is not a number; expected a number",
    "decimal_parsing": "is not a number; expected a number",
    "finite_number": "is not a finite number; expected a number",
    "bool_type": "is not allowed; expected true or false",
    "bool_parsing": "is not allowed; expected true or false",
    "model_type": "is not a group of keys; expected a JSON object of settings",
    "dict_type": "is not a group of keys; expected a JSON object of settings",
    "model_attributes_type": "is not a group of keys; expected a JSON object of settings",
    "tuple_type": "is not a list; expected a list of values",
    "list_type": "is not a list; expected a list of values",
    "extra_forbidden": "is not a known setting",
    "missing": "is missing",
}
_LITERAL_WORD = re.compile(r"'([^']*)'")


def setting_name(location: tuple[int | str, ...]) -> str:
    """``('register', 'task_timeout')`` → ``register.task-timeout``; a list index → ``[0]``."""
    if not location:
        return "config"
    name = str(location[0])
    for part in location[1:]:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += "." + part.replace("_", "-")
    return shorten(name, 80)


def describe_error(item: ErrorDetails) -> str:
    """The reason for one pydantic error, reading after "value "."""
    kind = item["type"]
    if kind == "value_error":  # our check_* functions: already in the integrator's words
        return str(item["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        expected = str(item.get("ctx", {}).get("expected", ""))
        words = _LITERAL_WORD.findall(expected)
        return "is not allowed; expected one of " + ", ".join(words)
    return _EXPECTED.get(kind, "is not allowed")


def describe_validation_error(error: ValidationError) -> list[str]:
    """One line per pydantic error, named by snap key, never echoing the input value."""
    return [_line(tuple(item["loc"]), describe_error(item)) for item in error.errors()]


def _line(location: tuple[int | str, ...], reason: str) -> str:
    """A section's own check across its keys ("lan.enabled needs lan.username …") already
    names the keys: it is the whole line, not "lan: value lan.enabled needs …"."""
    if len(location) == 1 and reason.startswith(f"{location[0]}."):
        return reason
    if not location and re.match(r"[a-z0-9]+\.[a-z0-9-]+ ", reason):
        return reason  # a rule across sections names its key itself
    return f"{setting_name(location)}: value {reason}"
