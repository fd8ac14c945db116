"""The checks a registered register applies to a receipt or cash task, with Atol's codes.

The simulator does not depend on the receipt model: like the device, it takes the task as
plain JSON and refuses what the driver and the device would refuse. Two kinds of refusal:

* the driver's JSON check (code 501, the script's message naming the field: see
  :mod:`~kassa_appliance.registers.simulator_fields`), including the document size limit
  (:mod:`~kassa_appliance.registers.simulator_size`);
* the device's own errors with Atol's code and text (:mod:`.atol_errors`): a taxation system
  the register is not registered with (143), an unknown tax rate (144), not fully paid (66),
  non-cash payments above the total (52), a total the receipt cannot reach (227), a marked
  position whose code was not checked in the FN (420), …

What the driver accepts is accepted: a position ``amount`` that differs from price ×
quantity (the register books the difference as a discount or markup), money with binary
noise (rounded to kopecks), payment types by name or number (0–9), item types it ignores.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kassa_appliance.registers.atol_errors import atol_error
from kassa_appliance.registers.base import (
    INVALID_MARKING_CODE,
    INVALID_PAYMENT_TYPE,
    INVALID_TAX_TYPE,
    INVALID_TAXATION_TYPE,
    INVALID_TOTAL,
    MARK_NOT_CHECKED,
    NONCACH_PAYMENTS_TOO_MUCH,
    NOT_FULLY_PAID,
    JsonDict,
)
from kassa_appliance.registers.simulator_fields import (
    bad_value,
    json_field,
    missing,
    money,
    number,
    parse_error,
    wrong_type,
)
from kassa_appliance.registers.simulator_size import MAX_RECEIPT_BYTES, receipt_size

INVALID_SUM = 16
INVALID_QUANTITY = 17
NO_REQUIRED_FISCAL_PROPERTY = 161

# Tax rates by name and the numeric aliases of the driver's TAX_TYPES table.
TAX_TYPES = frozenset(
    {
        "none",
        "vat0",
        "vat5",
        "vat7",
        "vat10",
        "vat18",
        "vat20",
        "vat22",
        "vat105",
        "vat107",
        "vat110",
        "vat118",
        "vat120",
        "vat122",
        *("0", "10", "110", "18", "118", "20", "120"),
    }
)
TAXATION_TYPES = ("osn", "usnIncome", "usnIncomeOutcome", "envd", "esn", "patent")
PAYMENT_TYPES = ("cash", "electronically", "prepaid", "credit", "other")
"""Payment types 0–4 by name; 5–9 are the register's own types, given by number."""
MAX_PAYMENT_TYPE = 9
CORRECTION_TYPES = frozenset({"self", "instruction"})
MAX_TOTAL_ROUNDING = Decimal("0.99")
"""How far below the sum of positions the receipt ``total`` may be: the kopecks of the
receipt, which the register books as a discount on the receipt."""

# Receipts whose money comes into the drawer (+) or goes out of it (-).
CASH_DIRECTION = {
    "sell": 1,
    "sellCorrection": 1,
    "buyReturn": 1,
    "buyReturnCorrection": 1,
    "sellReturn": -1,
    "sellReturnCorrection": -1,
    "buy": -1,
    "buyCorrection": -1,
}

_BASE_DATE_RE = re.compile(r"^\d{4}\.\d{2}\.\d{2}$")


@dataclass(frozen=True)
class ReceiptFigures:
    """The money and marking codes of a checked receipt."""

    total: Decimal
    cash: Decimal
    non_cash: Decimal
    change: Decimal
    payments: dict[str, Decimal] = field(default_factory=dict)
    """Paid by payment type name (``cash``, …, or the number of a type 5–9)."""
    marking_codes: tuple[str, ...] = ()
    """The (normalised base64) marking codes of the receipt's positions."""

    @property
    def cash_kept(self) -> Decimal:
        """Cash that stays in (or leaves) the drawer: cash paid minus change."""
        return self.cash - self.change


def normalise_code(value: str) -> str:
    """A marking code in canonical base64 (the same code however it was padded)."""
    return base64.b64encode(base64.b64decode(value, validate=True)).decode("ascii")


def decode_code(value: Any, path: str) -> str:
    """``imc`` as the driver takes it: a base64 string (returned normalised)."""
    if value is None:
        raise missing(path)
    if not isinstance(value, str):
        raise wrong_type(path, "string")
    try:
        return normalise_code(value)
    except (binascii.Error, ValueError):
        raise bad_value(path, value) from None


def check_receipt(
    task: JsonDict,
    *,
    taxation_types: Sequence[str],
    checked_codes: Collection[str] = (),
) -> ReceiptFigures:
    """Validate a receipt task (sell, returns, corrections) and work out its money.

    ``taxation_types`` are those of the registration; ``checked_codes`` the marking codes
    checked and accepted in the FN (needed unless ``validateMarkingCodes`` is true).
    """
    kind = str(task.get("type"))
    taxation = json_field(task, "taxationType", "taxationType", str)
    if taxation is not None and taxation not in TAXATION_TYPES:
        raise bad_value("taxationType", taxation)
    if taxation is not None and taxation not in taxation_types:
        raise atol_error(
            INVALID_TAXATION_TYPE,
            f"taxationType {taxation}; ККТ зарегистрирована с {', '.join(taxation_types)}",
        )
    for flag in ("electronically", "ignoreNonFiscalPrintErrors", "validateMarkingCodes"):
        json_field(task, flag, flag, bool)
    if kind.endswith("Correction"):
        _check_correction(task)
    items = json_field(task, "items", "items", list, required=True)
    payments = json_field(task, "payments", "payments", list, required=True)
    size = receipt_size(task)
    if size > MAX_RECEIPT_BYTES:
        raise parse_error(
            f"Размер чека: {size} байт. Допустимый размер чека не более {MAX_RECEIPT_BYTES} байт"
        )
    positions_total = Decimal("0.00")
    positions = 0
    codes: list[str] = []
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise wrong_type(where, "object")
        item_type = json_field(item, "type", f"{where}.type", str, required=True)
        if item_type == "position":
            amount, code = _check_position(item, where)
            positions_total += amount
            positions += 1
            if code is not None:
                codes.append(code)
        # Other item types (text, barcode, pictures, attributes) print or add tags; the
        # driver skips types it does not know.
    if positions == 0:
        raise bad_value("items", "нет ни одной позиции")
    _check_codes(task, codes, checked_codes)
    total = positions_total
    declared = task.get("total")
    if declared is not None:
        total = money(declared, "total")
        if not positions_total - MAX_TOTAL_ROUNDING <= total <= positions_total:
            raise atol_error(INVALID_TOTAL, f"total {total}, сумма позиций {positions_total}")
    if task.get("electronically") is True:
        client = task.get("clientInfo")
        if not isinstance(client, dict) or not client.get("emailOrPhone"):
            raise atol_error(NO_REQUIRED_FISCAL_PROPERTY, "clientInfo.emailOrPhone (1008)")
    by_type = _check_payments(payments)
    cash = by_type.get("cash", Decimal("0.00"))
    paid = sum(by_type.values(), Decimal("0.00"))
    non_cash = paid - cash
    if paid < total:
        raise atol_error(NOT_FULLY_PAID, f"оплачено {paid}, итог {total}")
    if non_cash > total:
        raise atol_error(NONCACH_PAYMENTS_TOO_MUCH, f"безналичными {non_cash}, итог {total}")
    return ReceiptFigures(
        total=total,
        cash=cash,
        non_cash=non_cash,
        change=paid - total,
        payments=by_type,
        marking_codes=tuple(codes),
    )


def check_cash_sum(task: JsonDict) -> Decimal:
    """The ``cashSum`` of cashIn/cashOut: a positive sum of money."""
    amount = money(task.get("cashSum"), "cashSum")
    if amount <= 0:
        raise atol_error(INVALID_SUM, f"cashSum {amount}")
    return amount


def _check_position(item: JsonDict, where: str) -> tuple[Decimal, str | None]:
    name = json_field(item, "name", f"{where}.name", str, required=True)
    if not name.strip() or len(name) > 128:
        raise bad_value(f"{where}.name", name)
    price = money(item.get("price"), f"{where}.price")
    quantity = number(item.get("quantity"), f"{where}.quantity")
    amount = money(item.get("amount"), f"{where}.amount")
    if price < 0 or amount < 0:
        raise atol_error(INVALID_SUM, f"{where}: price {price}, amount {amount}")
    if quantity <= 0:
        raise atol_error(INVALID_QUANTITY, f"{where}.quantity {quantity}")
    tax = json_field(item, "tax", f"{where}.tax", dict)
    tax_type = tax.get("type") if tax is not None else None
    if tax_type not in TAX_TYPES:
        raise atol_error(INVALID_TAX_TYPE, f"{where}.tax.type {tax_type!r}")
    imc_params = json_field(item, "imcParams", f"{where}.imcParams", dict)
    code = None
    if imc_params is not None:
        code = decode_code(imc_params.get("imc"), f"{where}.imcParams.imc")
    return amount, code


def _check_codes(task: JsonDict, codes: list[str], checked: Collection[str]) -> None:
    """Every marking code must have been checked in the FN, unless the driver checks them
    itself (``validateMarkingCodes``: the simulator's ISM accepts well-formed codes)."""
    validate = task.get("validateMarkingCodes") is True
    for code in codes:
        if validate and not ism_accepts(code):
            raise atol_error(INVALID_MARKING_CODE, f"imc {code}")
        if not validate and code not in checked:
            raise atol_error(MARK_NOT_CHECKED, f"imc {code}")


_GS1_CODE = re.compile(rb"^01\d{14}21[\x21-\x7e]{1,20}")


def ism_accepts(code: str) -> bool:
    """The simulated FN and ISM accept a code that looks like a real one: a GS1 DataMatrix
    code with GTIN (AI 01, 14 digits) and serial (AI 21). Anything else is "incorrect"."""
    return _GS1_CODE.match(base64.b64decode(code)) is not None


def _payment_type(value: Any, where: str) -> str:
    """The payment type's name (0–4) or its number (5–9), as the driver parses it."""
    if value is None:
        raise missing(where)
    if isinstance(value, str) and value in PAYMENT_TYPES:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        code = value
    elif isinstance(value, str) and value.isdigit():
        code = int(value)
    else:
        raise bad_value(where, value)
    if code > MAX_PAYMENT_TYPE:
        raise atol_error(INVALID_PAYMENT_TYPE, f"{where} {code}")
    return PAYMENT_TYPES[code] if code < len(PAYMENT_TYPES) else str(code)


def _check_payments(payments: list[Any]) -> dict[str, Decimal]:
    by_type: dict[str, Decimal] = {}
    for index, payment in enumerate(payments):
        where = f"payments[{index}]"
        if not isinstance(payment, dict):
            raise wrong_type(where, "object")
        payment_type = _payment_type(payment.get("type"), f"{where}.type")
        amount = money(payment.get("sum"), f"{where}.sum")
        if amount < 0:
            raise atol_error(INVALID_SUM, f"{where}.sum {amount}")
        by_type[payment_type] = by_type.get(payment_type, Decimal("0.00")) + amount
    return by_type


def _check_correction(task: JsonDict) -> None:
    correction_type = json_field(task, "correctionType", "correctionType", str)
    if correction_type is not None and correction_type not in CORRECTION_TYPES:
        raise bad_value("correctionType", correction_type)
    base_date = json_field(task, "correctionBaseDate", "correctionBaseDate", str)
    if base_date is not None and not _BASE_DATE_RE.match(base_date):
        raise bad_value("correctionBaseDate", base_date)


def check_non_fiscal(task: JsonDict) -> list[JsonDict]:
    """The items of a ``nonFiscal`` text document, checked as ``json_nonFiscal.js`` does."""
    items = json_field(task, "items", "items", list, required=True)
    checked: list[JsonDict] = []
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise wrong_type(where, "object")
        item_type = json_field(item, "type", f"{where}.type", str, required=True)
        if item_type == "text":
            json_field(item, "text", f"{where}.text", str, required=True)
        elif item_type == "barcode":
            json_field(item, "barcode", f"{where}.barcode", str, required=True)
            json_field(item, "barcodeType", f"{where}.barcodeType", str, required=True)
        checked.append(item)
    json_field(task, "printFooter", "printFooter", bool)
    return checked
