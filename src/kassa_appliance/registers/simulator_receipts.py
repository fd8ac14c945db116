"""The checks a real register applies to a receipt or cash task, with Atol's error codes.

The simulator does not depend on the receipt model: like the device, it takes the task as
plain JSON and refuses what the device would refuse, naming the field in the description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from kassa_appliance.registers.base import (
    INVALID_TAX_TYPE,
    NOT_FULLY_PAID,
    RECEIPT_PARSE_ERROR,
    JsonDict,
    RegisterError,
)

INVALID_TAXATION_TYPE = 143

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
    }
)
TAXATION_TYPES = frozenset({"osn", "usnIncome", "usnIncomeOutcome", "envd", "esn", "patent"})
PAYMENT_TYPES = frozenset({"cash", "electronically", "prepaid", "credit", "other"})
NON_FISCAL_ITEM_TYPES = frozenset(
    {"text", "barcode", "pictureFromMemory", "pixels", "userAttribute", "additionalAttribute"}
)
CORRECTION_TYPES = frozenset({"self", "instruction"})

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

_CENT = Decimal("0.01")
_BASE_DATE_RE = re.compile(r"^\d{4}\.\d{2}\.\d{2}$")


@dataclass(frozen=True)
class ReceiptFigures:
    """The money of a checked receipt."""

    total: Decimal
    cash: Decimal
    non_cash: Decimal
    change: Decimal

    @property
    def cash_kept(self) -> Decimal:
        """Cash that stays in (or leaves) the drawer: cash paid minus change."""
        return self.cash - self.change


def parse_error(detail: str) -> RegisterError:
    return RegisterError(RECEIPT_PARSE_ERROR, f"Ошибка парсинга запроса: {detail}")


def check_receipt(task: JsonDict) -> ReceiptFigures:
    """Validate a receipt task (sell, returns, corrections) and work out its money."""
    kind = str(task.get("type"))
    taxation = task.get("taxationType")
    if taxation is not None and taxation not in TAXATION_TYPES:
        raise RegisterError(
            INVALID_TAXATION_TYPE,
            f"Неверная система налогообложения: taxationType {taxation!r}, expected one of "
            f"{', '.join(sorted(TAXATION_TYPES))}",
        )
    if task.get("electronically") is True:
        client = task.get("clientInfo")
        if not isinstance(client, dict) or not client.get("emailOrPhone"):
            raise parse_error("electronically=true needs clientInfo.emailOrPhone")
    if kind.endswith("Correction"):
        _check_correction(task)
    items = task.get("items")
    if not isinstance(items, list) or not items:
        raise parse_error("items: expected a non-empty list")
    total = Decimal("0.00")
    positions = 0
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise parse_error(f"{where}: expected an object")
        item_type = item.get("type")
        if item_type == "position":
            total += _check_position(item, where)
            positions += 1
        elif item_type not in NON_FISCAL_ITEM_TYPES:
            raise parse_error(f"{where}.type: unknown item type {item_type!r}")
    if positions == 0:
        raise parse_error("items: a receipt needs at least one item of type 'position'")
    declared = task.get("total")
    if declared is not None:
        declared_total = money(declared, "total")
        if declared_total != total:
            raise parse_error(f"total {declared_total} differs from the sum of items {total}")
    cash, non_cash = _check_payments(task.get("payments"))
    paid = cash + non_cash
    if paid < total:
        raise RegisterError(
            NOT_FULLY_PAID, f"Чек оплачен не полностью: payments {paid} < total {total}"
        )
    if non_cash > total:
        raise parse_error(f"non-cash payments {non_cash} exceed the receipt total {total}")
    return ReceiptFigures(total=total, cash=cash, non_cash=non_cash, change=paid - total)


def check_cash_sum(task: JsonDict) -> Decimal:
    """The ``cashSum`` of cashIn/cashOut: a positive sum of money."""
    amount = money(task.get("cashSum"), "cashSum")
    if amount <= 0:
        raise parse_error(f"cashSum must be greater than 0, got {amount}")
    return amount


def money(value: Any, where: str) -> Decimal:
    """A JSON number of roubles with at most 2 decimals, as Decimal."""
    amount = number(value, where)
    if amount != amount.quantize(_CENT):
        raise parse_error(f"{where}: {value!r} has more than 2 decimals")
    return amount.quantize(_CENT)


def number(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise parse_error(f"{where}: expected a number, got {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise parse_error(f"{where}: {value!r} is not a number") from None
    if not result.is_finite():
        raise parse_error(f"{where}: {value!r} is not a finite number")
    return result


def _check_position(item: JsonDict, where: str) -> Decimal:
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise parse_error(f"{where}.name: expected a non-empty string")
    if len(name) > 128:
        raise parse_error(f"{where}.name: {len(name)} characters, at most 128 allowed")
    price = money(item.get("price"), f"{where}.price")
    quantity = number(item.get("quantity"), f"{where}.quantity")
    if price < 0:
        raise parse_error(f"{where}.price must not be negative, got {price}")
    if quantity <= 0:
        raise parse_error(f"{where}.quantity must be greater than 0, got {quantity}")
    full = (price * quantity).quantize(_CENT)
    raw_amount = item.get("amount")
    amount = full if raw_amount is None else money(raw_amount, f"{where}.amount")
    if amount < 0 or amount > full:
        raise parse_error(
            f"{where}.amount {amount}: expected 0..{full} (price × quantity minus discount)"
        )
    tax = item.get("tax")
    tax_type = tax.get("type") if isinstance(tax, dict) else None
    if tax_type not in TAX_TYPES:
        raise RegisterError(
            INVALID_TAX_TYPE,
            f"Неверный тип налога: {where}.tax.type {tax_type!r}, expected one of "
            f"{', '.join(sorted(TAX_TYPES))}",
        )
    return amount


def _check_payments(payments: Any) -> tuple[Decimal, Decimal]:
    if payments is None:
        payments = []
    if not isinstance(payments, list):
        raise parse_error("payments: expected a list")
    cash = Decimal("0.00")
    non_cash = Decimal("0.00")
    for index, payment in enumerate(payments):
        where = f"payments[{index}]"
        if not isinstance(payment, dict):
            raise parse_error(f"{where}: expected an object")
        payment_type = payment.get("type")
        if payment_type not in PAYMENT_TYPES:
            raise parse_error(
                f"{where}.type {payment_type!r}: expected one of {', '.join(sorted(PAYMENT_TYPES))}"
            )
        amount = money(payment.get("sum"), f"{where}.sum")
        if amount < 0:
            raise parse_error(f"{where}.sum must not be negative, got {amount}")
        if payment_type == "cash":
            cash += amount
        else:
            non_cash += amount
    return cash, non_cash


def _check_correction(task: JsonDict) -> None:
    correction_type = task.get("correctionType")
    if correction_type is not None and correction_type not in CORRECTION_TYPES:
        raise parse_error(f"correctionType {correction_type!r}: expected 'self' or 'instruction'")
    base_date = task.get("correctionBaseDate")
    if base_date is not None and (
        not isinstance(base_date, str) or not _BASE_DATE_RE.match(base_date)
    ):
        raise parse_error(f"correctionBaseDate {base_date!r}: expected 'yyyy.mm.dd'")
