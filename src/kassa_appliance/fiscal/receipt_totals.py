"""The receipt-level rules on positions, the total and the payments.

* A receipt needs at least one position (the register cannot close an empty receipt).
* A given ``total`` may be below the sum of the position amounts by less than one rouble
  (the register books it as the rounding of the receipt's kopecks); above it is refused.
* The payments must cover the total: the driver's own check, with ``toFixed(2)`` on both
  sides, before it calls the register (Atol error 66, NOT_FULLY_PAID). Non-cash above the
  total is the register's own refusal, so it is left to the register.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kassa_appliance.fiscal.receipt_items import Payment, Position

__all__ = ["TOTAL_ROUNDING_LIMIT", "payment_problems", "position_problems", "total_problems"]

_ZERO = Decimal("0.00")
TOTAL_ROUNDING_LIMIT = Decimal("1.00")
"""How far below the sum of the position amounts a given ``total`` may be: the register
books the difference as the rounding of the receipt's kopecks, which is under one rouble
(DTO10 programmer's guide, receiptTotal; the exact figure is from the guide as remembered,
the stored sources do not state it). A total above the sum is refused."""


def position_problems(items: list[Any]) -> list[str]:
    if not any(isinstance(item, Position) for item in items):
        return ["items: no position; expected at least one item of type position"]
    return []


def total_problems(total: Decimal | None, items_total: Decimal) -> list[str]:
    if total is None or total == items_total:
        return []
    if total > items_total:
        return [
            f"total: {total} is above the sum of the position amounts {items_total};"
            f" expected {items_total} or up to {TOTAL_ROUNDING_LIMIT} less (rounding)"
        ]
    if items_total - total >= TOTAL_ROUNDING_LIMIT:
        return [
            f"total: {total} is {items_total - total} below the sum of the position amounts"
            f" {items_total}; expected at most {TOTAL_ROUNDING_LIMIT - Decimal('0.01')} less"
            " (the receipt-level rounding of kopecks); put a discount into the amounts"
        ]
    return []


def payment_problems(payments: list[Payment], total: Decimal) -> list[str]:
    paid = sum((p.sum for p in payments), _ZERO)
    if paid < total:
        return [
            f"payments: {paid} paid is less than the total {total}; expected at least {total}"
            " (the driver refuses it as Atol error 66, not fully paid)"
        ]
    return []
