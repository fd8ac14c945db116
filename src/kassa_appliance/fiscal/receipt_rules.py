"""Value-level checks for Atol receipt tasks: numbers, INN, buyer contact, dates, limits.

Every check returns the parsed value or raises :class:`RuleError` with a message that names
what is wrong and what was expected, *without* the field path: the caller (the pydantic
models in :mod:`kassa_appliance.fiscal.receipt`) knows where the value sits and prefixes the path.
The messages are part of the contract (tests compare them verbatim), so change them only
together with the tests.

This module owns the checks and the message helpers (:func:`json_kind`, :func:`shown`,
:func:`one_of`). The limits they enforce live in :mod:`kassa_appliance.fiscal.receipt_limits`
and the allowed values in :mod:`kassa_appliance.fiscal.receipt_enums`; both are re-exported
here.
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from kassa_appliance.fiscal.receipt_enums import (
    ALIGNMENTS,
    BARCODE_TYPES,
    CORRECTION_TYPES,
    MEASUREMENT_UNITS,
    OBSOLETE_TAX_TYPES,
    OBSOLETE_TAXATION_TYPES,
    PAYMENT_METHODS,
    PAYMENT_OBJECTS,
    PAYMENT_TYPES,
    TAX_TYPES,
    TAXATION_TYPES,
    WRAP_MODES,
)
from kassa_appliance.fiscal.receipt_limits import (
    MAX_ADDRESS_LENGTH,
    MAX_BARCODE_LENGTH,
    MAX_CLIENT_NAME_LENGTH,
    MAX_CONTACT_LENGTH,
    MAX_CORRECTION_BASE_NUMBER_LENGTH,
    MAX_MACHINE_NUMBER_LENGTH,
    MAX_MONEY,
    MAX_NAME_LENGTH,
    MAX_OPERATOR_NAME_LENGTH,
    MAX_QUANTITY,
    MAX_TEXT_LENGTH,
    MAX_UNIT_LENGTH,
    MONEY_PLACES,
    QUANTITY_PLACES,
)
from kassa_appliance.inputs import shorten

__all__ = [
    "ALIGNMENTS",
    "BARCODE_TYPES",
    "CORRECTION_TYPES",
    "MAX_ADDRESS_LENGTH",
    "MAX_BARCODE_LENGTH",
    "MAX_CLIENT_NAME_LENGTH",
    "MAX_CONTACT_LENGTH",
    "MAX_CORRECTION_BASE_NUMBER_LENGTH",
    "MAX_MACHINE_NUMBER_LENGTH",
    "MAX_MONEY",
    "MAX_NAME_LENGTH",
    "MAX_OPERATOR_NAME_LENGTH",
    "MAX_QUANTITY",
    "MAX_TEXT_LENGTH",
    "MAX_UNIT_LENGTH",
    "MEASUREMENT_UNITS",
    "MONEY_PLACES",
    "OBSOLETE_TAXATION_TYPES",
    "OBSOLETE_TAX_TYPES",
    "PAYMENT_METHODS",
    "PAYMENT_OBJECTS",
    "PAYMENT_TYPES",
    "QUANTITY_PLACES",
    "SHOWN_MAX",
    "TAXATION_TYPES",
    "TAX_TYPES",
    "WRAP_MODES",
    "RuleError",
    "check_choice",
    "check_date",
    "check_inn",
    "check_text",
    "decimal_places",
    "inn_checksum_ok",
    "json_kind",
    "json_number",
    "one_of",
    "parse_decimal",
    "parse_measurement_unit",
    "parse_money",
    "parse_positive_money",
    "parse_quantity",
    "round_like_driver",
    "shown",
]


class RuleError(ValueError):
    """A single value broke a rule; ``str(err)`` is the message without the field path."""


# --- helpers --------------------------------------------------------------------------------


def json_kind(value: object) -> str:
    """How a decoded-JSON value is called in messages ("a string", "null", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a value that is not JSON"


SHOWN_MAX = 40
"""Longest rendering of an offending value in a message; longer ones are cut with "…"."""


def shown(value: object) -> str:
    """An offending value as quoted in messages: strings in quotes (control and invisible
    characters escaped), numbers plain, ``true``/``false``/``null`` as in JSON, objects and
    lists by their kind; cut to :data:`SHOWN_MAX` characters with "…"."""
    if isinstance(value, str):
        return _quoted(value)
    if value is None or isinstance(value, bool | list | tuple | dict):
        return json_kind(value)
    if isinstance(value, int) and value.bit_length() > 4 * SHOWN_MAX:
        return "a number too long to show"  # str() of a huge int is slow, or refused
    return shorten(str(value), SHOWN_MAX)


def _quoted(text: str) -> str:
    """``'text'`` escaped; when too long, cut with "…" and without the closing quote."""
    if len(text) <= SHOWN_MAX:
        escaped = shorten(text, 10 * SHOWN_MAX)  # never cut: an escape has ≤ 10 characters
        if len(escaped) <= SHOWN_MAX - 2:
            return f"'{escaped}'"
        # shorten() cuts only text longer than its limit: stay below the escaped length
        return "'" + shorten(text, min(SHOWN_MAX, len(escaped)) - 1)
    return "'" + shorten(text, SHOWN_MAX - 1)


def one_of(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(values)


def check_choice(
    value: object,
    allowed: tuple[str, ...],
    obsolete: dict[str, str] | None = None,
) -> str:
    """``value`` must be one of ``allowed``; an ``obsolete`` value gets its own reason."""
    if not isinstance(value, str):
        raise RuleError(f"expected one of {one_of(allowed)}, got {json_kind(value)}")
    if value in allowed:
        return value
    if obsolete and value in obsolete:
        raise RuleError(
            f"{shown(value)} is obsolete ({obsolete[value]}); expected one of {one_of(allowed)}"
        )
    raise RuleError(f"{shown(value)} is not allowed; expected one of {one_of(allowed)}")


# --- numbers ----------------------------------------------------------------------------------

_DECIMAL_STRING = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def parse_decimal(value: object) -> Decimal:
    """A JSON number or decimal string as an exact Decimal, never passing through binary
    arithmetic: a float is converted via its shortest repr (``0.1`` → ``Decimal("0.1")``)."""
    if isinstance(value, bool):
        raise RuleError(f"expected a number, got {json_kind(value)}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise RuleError(f"{shown(value)} is not a finite number; expected a number")
        result = Decimal(repr(value))
    elif isinstance(value, str):
        if not _DECIMAL_STRING.fullmatch(value):
            raise RuleError(f"{shown(value)} is not a decimal number; expected digits like 12.34")
        result = Decimal(value)
    else:
        raise RuleError(f"expected a number, got {json_kind(value)}")
    if not result.is_finite():
        raise RuleError(f"{shown(value)} is not a finite number; expected a number")
    return result


def decimal_places(value: Decimal) -> int:
    """Significant decimal places: ``1.50`` has 1, ``1500.00`` has 0."""
    sign_digits_exponent = value.as_tuple()
    exponent = sign_digits_exponent.exponent
    assert isinstance(exponent, int)  # finite values only (checked by parse_decimal)
    if exponent >= 0 or value == 0:
        return 0
    digits = sign_digits_exponent.digits
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    # Not Decimal.normalize(): it rounds to the context precision (28 digits) first.
    return max(0, -exponent - trailing_zeros)


def json_number(value: object) -> Decimal:
    """A JSON number as the driver reads it: ``mustNumber`` refuses strings (atolexamplesjson
    myscripts_validators.js), so ``"100.00"`` is refused; the *exact* binary value of a float
    is kept (``Decimal(436.79999999999995)``) so that rounding matches the driver's."""
    if isinstance(value, str):
        raise RuleError(
            f"{shown(value)} is a string; expected a JSON number such as 12.34 (without quotes)"
        )
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(value)
    return parse_decimal(value)


def round_like_driver(value: Decimal, places: int) -> Decimal:
    """Round half up on the exact value, as JavaScript's ``toFixed`` in the driver's scripts
    (``total += Number(amount.toFixed(2))``) and the register's kopeck arithmetic do."""
    if abs(value) >= _ROUNDING_BOUND:
        return value  # far above any limit: left as it is, to be refused as too large
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


_ROUNDING_BOUND = Decimal(10) ** 18
"""Beyond this, quantizing would exceed the decimal context; no limit comes close."""


def parse_money(value: object) -> Decimal:
    """A non-negative sum of money, rounded to kopecks as the driver rounds it: binary-float
    noise from JavaScript clients (``436.79999999999995``) becomes ``436.80``."""
    amount = round_like_driver(json_number(value), MONEY_PLACES)
    if amount < 0:
        raise RuleError(f"{shown(amount)} is negative; expected 0 or more")
    if amount > MAX_MONEY:
        raise RuleError(f"{shown(amount)} is too large; expected at most {MAX_MONEY}")
    return amount


def parse_positive_money(value: object) -> Decimal:
    """Money that must be above zero (``cashSum``)."""
    amount = parse_money(value)
    if amount == 0:
        raise RuleError("0.00 is not positive; expected a sum greater than 0")
    return amount


def parse_quantity(value: object) -> Decimal:
    """A quantity above zero, rounded to the driver's :data:`QUANTITY_PLACES` decimals."""
    exact = json_number(value)
    if exact <= 0:
        raise RuleError(f"{shown(value)} is not positive; expected a quantity greater than 0")
    quantity = round_like_driver(exact, QUANTITY_PLACES)
    if quantity == 0:
        raise RuleError(
            f"{shown(value)} rounds to 0 at {QUANTITY_PLACES} decimals;"
            " expected a quantity greater than 0"
        )
    if quantity > MAX_QUANTITY:
        raise RuleError(f"{shown(quantity)} is too large; expected at most {MAX_QUANTITY}")
    return quantity.normalize() if quantity == quantity.to_integral() else quantity


def parse_measurement_unit(value: object) -> str | int:
    """FFD 1.2 unit name or code (tag 2108), or an FFD 1.05 free-text unit (tag 1197)."""
    codes = sorted(MEASUREMENT_UNITS.values())
    if isinstance(value, int) and not isinstance(value, bool):
        if value in codes:
            return value
        listed = one_of([str(c) for c in codes])
        raise RuleError(f"{shown(value)} is not an FFD 1.2 unit code; expected one of {listed}")
    if isinstance(value, str):
        if not value.strip():
            raise RuleError("is empty; expected a unit name such as piece or kilogram")
        if len(value) > MAX_UNIT_LENGTH:
            raise RuleError(
                f"{shown(value)} is {len(value)} characters long; expected an FFD 1.2 unit name"
                f" or code, or a free-text unit of at most {MAX_UNIT_LENGTH} characters"
            )
        return value
    raise RuleError(f"expected a unit name or an integer unit code, got {json_kind(value)}")


# --- identifiers and contact data -------------------------------------------------------------

_INN_WEIGHTS_10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN_WEIGHTS_11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN_WEIGHTS_12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _inn_digit(digits: list[int], weights: tuple[int, ...]) -> int:
    return sum(d * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn_checksum_ok(inn: str) -> bool:
    """The FNS check-digit rule for a 10-digit (organisation) or 12-digit (person) INN."""
    digits = [int(c) for c in inn]
    if len(digits) == 10:
        return _inn_digit(digits, _INN_WEIGHTS_10) == digits[9]
    if len(digits) == 12:
        return (
            _inn_digit(digits, _INN_WEIGHTS_11) == digits[10]
            and _inn_digit(digits, _INN_WEIGHTS_12) == digits[11]
        )
    return False


def check_inn(value: object) -> str:
    if not isinstance(value, str):
        raise RuleError(f"expected the INN as a string of digits, got {json_kind(value)}")
    if not (value.isascii() and value.isdigit() and len(value) in (10, 12)):
        raise RuleError(
            f"{shown(value)} is not an INN;"
            " expected 10 digits (organisation) or 12 digits (individual)"
        )
    if not inn_checksum_ok(value):
        raise RuleError(f"{shown(value)} is not a valid INN: its check digit is wrong")
    return value


def check_date(value: object, fmt: str) -> str:
    """A real calendar date in Atol's ``yyyy.mm.dd`` or ``dd.mm.yyyy`` notation."""
    layouts = {
        "yyyy.mm.dd": (r"([0-9]{4})\.([0-9]{2})\.([0-9]{2})", (0, 1, 2)),
        "dd.mm.yyyy": (r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})", (2, 1, 0)),
    }
    pattern, order = layouts[fmt]
    if not isinstance(value, str):
        raise RuleError(f"expected a date as {fmt}, got {json_kind(value)}")
    match = re.fullmatch(pattern, value)
    if match is None:
        raise RuleError(f"{shown(value)} is not a date; expected {fmt}")
    parts = [int(p) for p in match.groups()]
    try:
        date(parts[order[0]], parts[order[1]], parts[order[2]])
    except ValueError:
        raise RuleError(f"{shown(value)} is not a real calendar date; expected {fmt}") from None
    return value


def check_text(value: object, max_length: int, *, allow_empty: bool = False) -> str:
    """A string of at most ``max_length`` characters, non-blank unless ``allow_empty``."""
    if not isinstance(value, str):
        raise RuleError(f"expected a string, got {json_kind(value)}")
    if not allow_empty and not value.strip():
        raise RuleError("is empty; expected some text")
    if len(value) > max_length:
        raise RuleError(
            f"is {len(value)} characters long; expected at most {max_length} characters"
        )
    return value
