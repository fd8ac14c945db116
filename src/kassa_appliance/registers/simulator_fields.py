"""How the simulated driver reads JSON task fields, and its parse errors (code 501).

The messages are those of the DTO10 driver's JSON-task scripts (AlexanderYekat/atolexamplesjson,
``myscripts_validators.js`` and every ``json_*.js``): ``Поле "X" отсутствует``,
``Поле "X" имеет неверный тип (ожидается "T")``, ``Некорректное значение поля "X" (v)``.
Money is read as the driver reads a JSON number: rounded to kopecks, half up.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from kassa_appliance.registers.base import RECEIPT_PARSE_ERROR, JsonDict, RegisterError

CENT = Decimal("0.01")

JSON_TYPE_NAMES = {
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    list: "array",
    dict: "object",
}


def parse_error(message: str) -> RegisterError:
    """Code 501 with the driver script's message (the whole ``errorDescription``)."""
    return RegisterError(RECEIPT_PARSE_ERROR, message)


def missing(path: str) -> RegisterError:
    return parse_error(f'Поле "{path}" отсутствует')


def wrong_type(path: str, expected: str) -> RegisterError:
    return parse_error(f'Поле "{path}" имеет неверный тип (ожидается "{expected}")')


def bad_value(path: str, value: Any) -> RegisterError:
    shown = value if isinstance(value, str) else _json_text(value)
    return parse_error(f'Некорректное значение поля "{path}" ({shown})')


def _json_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return str(value)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def json_field(task: JsonDict, key: str, path: str, kind: type, *, required: bool = False) -> Any:
    """``task[key]`` checked to be of JSON ``kind`` (``str``, ``bool``, ``list``, ``dict``,
    ``float`` for numbers); ``None`` when absent and not required."""
    value = task.get(key)
    if value is None:
        if required:
            raise missing(path)
        return None
    ok = is_number(value) if kind is float else isinstance(value, kind)
    if not ok:
        raise wrong_type(path, JSON_TYPE_NAMES[kind])
    return value


def number(value: Any, path: str) -> Decimal:
    """A JSON number as an exact Decimal (via its shortest repr)."""
    if value is None:
        raise missing(path)
    if not is_number(value):
        raise wrong_type(path, "number")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise bad_value(path, value) from None
    if not result.is_finite():
        raise bad_value(path, value)
    return result


def money(value: Any, path: str) -> Decimal:
    """A sum of roubles, rounded to kopecks as the driver does (``436.79999999999995``
    is 436.80)."""
    return number(value, path).quantize(CENT, rounding=ROUND_HALF_UP)
