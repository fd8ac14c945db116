"""The fiscal-document size of a receipt, estimated the way the driver estimates it.

The driver refuses a receipt whose estimated size is above 32 768 bytes before it opens it
(``getTaskSize`` / ``getCorrectedTaskSize`` / ``getMaxSize`` in the receipt script of DTO10,
public copy AlexanderYekat/atolexamplesjson ``myscripts_base_receipt.js``). This module
repeats that arithmetic on the normalised task (our own code, same rules): fixed requisites,
then per field a TLV header plus the value (strings by length, numbers by magnitude), then
+25 % for its "20 % accuracy". The only input the driver reads from the register instead of
the task, the registered address and place (tags 1009/1187), is taken from the task's
``paymentsAddress``/``paymentsPlace`` (4 bytes each when absent).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from kassa_appliance.fiscal.receipt_limits import MAX_DOCUMENT_BYTES

__all__ = ["MAX_DOCUMENT_BYTES", "document_size", "size_problem"]

_FIXED = 2 + 5 + 20 + 24 + 16 + 8 + 8 + 8 + 8 + 8 + 5 + 6
"""FFD version, FN number, registration number, user INN, FD number, date, fiscal sign,
shift and receipt numbers, operation type, receipt sum."""
_STEPS = (2**8, 4**8, 6**8, 8**8, 10**8, 12**8)


def _magnitude(value: Decimal) -> int:
    for size, bound in enumerate(_STEPS, start=1):
        if value < bound:
            return size
    return 0


def _number(value: Any) -> int:
    """``getNumSize``: money and other numbers, scaled by 100."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return 0
    return _magnitude(Decimal(value) * 100) + 4


def _quantity(value: Any) -> int:
    """``getFloatNumSize``: quantities, scaled by 10⁻⁶ (sic)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return 0
    return _magnitude(Decimal(value) / 1_000_000) + 3 + 4


def _byte(value: Any) -> int:
    return 5 if isinstance(value, str) else 0


def _text(value: Any) -> int:
    return len(value) + 4 if isinstance(value, str) else 0


def _texts(value: Any) -> int:
    if not isinstance(value, list):
        return 0
    size = sum(_text(item) for item in value)
    return size + 4 if size > 0 else 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _position(item: dict[str, Any]) -> int:
    size = 4 + _text(item.get("name"))
    size += sum(_number(item.get(key)) for key in ("price", "amount", "infoDiscountAmount"))
    size += _number(item.get("department")) + _quantity(item.get("quantity"))
    size += _byte(item.get("paymentMethod")) + _byte(item.get("paymentObject"))
    tax = _dict(item.get("tax"))
    size += _byte(tax.get("type")) + _number(tax.get("sum"))
    if "agentInfo" in item:
        agent = _dict(item["agentInfo"])
        size += 4 + (5 if agent.get("agents") else 0)
        size += _texts(_dict(agent.get("receivePaymentsOperator")).get("phones"))
        paying = _dict(agent.get("payingAgent"))
        size += _texts(paying.get("phones")) + _text(paying.get("operation"))
        transfer = _dict(agent.get("moneyTransferOperator"))
        size += _texts(transfer.get("phones"))
        size += sum(_text(transfer.get(key)) for key in ("name", "address", "vatin"))
    if "supplierInfo" in item:
        supplier = _dict(item["supplierInfo"])
        size += _text(supplier.get("name")) + _text(supplier.get("vatin"))
        size += _texts(supplier.get("phones"))
    if "imcParams" in item:
        size += 4 + 28 + 4 + 24
    return size


def document_size(task: dict[str, Any]) -> int:
    """The driver's corrected size estimate of a receipt task, in bytes."""
    size = _FIXED
    if not task.get("electronically"):
        size += 5
    size += _byte(task.get("taxationType"))
    client = _dict(task.get("clientInfo"))
    size += sum(_text(value) for value in client.values())
    items = task.get("items") or []
    if items:
        size += 4
    for item in items:
        kind = item.get("type")
        if kind == "userAttribute":
            size += 4 + _text(item.get("name")) + _text(item.get("value"))
        elif kind == "position":
            size += _position(item)
    operator = _dict(task.get("operator"))
    size += _text(operator.get("name")) + _text(operator.get("vatin"))
    size += _text(_dict(task.get("companyInfo")).get("email"))
    size += 20
    for payment in task.get("payments") or []:
        size += _number(payment.get("sum")) - 4
    size += _text(task.get("paymentsAddress")) or 4
    size += _text(task.get("paymentsPlace")) or 4
    return math.floor(size / 0.8 + 0.5)  # JavaScript's Math.round


def size_problem(task: dict[str, Any]) -> str | None:
    """The refusal of a receipt too large for one fiscal document, or ``None``."""
    size = document_size(task)
    if size <= MAX_DOCUMENT_BYTES:
        return None
    positions = sum(1 for item in task.get("items") or [] if item.get("type") == "position")
    return (
        f"items: the receipt is about {size:,} bytes as a fiscal document ({positions:,}"
        f" positions); the driver takes at most {MAX_DOCUMENT_BYTES:,} bytes; expected a"
        " smaller receipt: split it into several receipts"
    )
