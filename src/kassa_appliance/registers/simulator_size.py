"""The size of a receipt as a fiscal document, estimated the way the DTO10 driver does.

A receipt's TLV document must fit the FN's limit, so the driver's receipt script estimates
the size of the task before it opens the receipt (AlexanderYekat/atolexamplesjson,
``myscripts_base_receipt.js``: ``getTaskSize``, ``getCorrectedTaskSize`` (+20 %) and
``getMaxSize`` = 32768) and refuses a larger one with code 501 "Размер чека: N байт.
Допустимый размер чека не более 32768 байт". There is no fixed number of positions.

This module repeats that arithmetic term by term, so the simulator refuses exactly the
receipts the driver refuses.
"""

from __future__ import annotations

from typing import Any

from kassa_appliance.registers.base import JsonDict
from kassa_appliance.registers.simulator_fields import is_number

MAX_RECEIPT_BYTES = 32768
"""``getMaxSize()`` of the driver's receipt script."""

_FIXED_TAGS = 2 + 5 + 20 + 24 + 16 + 8 + 8 + 8 + 8 + 8 + 5 + 6
"""FFD version, FN number, registration number, INN, FD number, date, fiscal sign, shift,
receipt number, operation type and receipt total: always in the document."""


_DEVICE_TAGS = 4 + 4
"""Tags 1009 and 1187 from the registration: the driver adds the length of what its FN query
returns (the tag's *name*, ``LIBFPTR_PARAM_TAG_NAME``) plus 4; the simulated FN returns none."""

_AGENT_PARTS = {
    "receivePaymentsOperator": (),
    "payingAgent": ("operation",),
    "moneyTransferOperator": ("name", "address", "vatin"),
}


def receipt_size(task: JsonDict) -> int:
    """The driver's estimate in bytes, already corrected by its +20 % (``/ 0.8``)."""
    return int(_task_size(task) / 0.8 + 0.5)  # Math.round


def _task_size(task: JsonDict) -> int:
    size = _FIXED_TAGS
    if task.get("electronically") is not True:
        size += 5
    size += _byte(task.get("taxationType"))
    client = task.get("clientInfo")
    if isinstance(client, dict):
        for key in (
            "emailOrPhone",
            "vatin",
            "name",
            "birthDate",
            "citizenship",
            "identityDocumentCode",
            "identityDocumentData",
            "address",
        ):
            size += _text(client.get(key))
    items = task.get("items")
    items = items if isinstance(items, list) else []
    if items:
        size += 4
    for item in items:
        if isinstance(item, dict):
            size += _item(item)
    operator = task.get("operator")
    if isinstance(operator, dict):
        size += _text(operator.get("name")) + _text(operator.get("vatin"))
    company = task.get("companyInfo")
    if isinstance(company, dict):
        size += _text(company.get("email"))
    payments = task.get("payments")
    size += 20
    for payment in payments if isinstance(payments, list) else []:
        size += _num(payment.get("sum") if isinstance(payment, dict) else None) - 4
    return size + _DEVICE_TAGS


def _item(item: JsonDict) -> int:
    size = 0
    kind = item.get("type")
    if kind == "userAttribute":
        size += 4 + _text(item.get("name")) + _text(item.get("value"))
    if kind != "position":
        return size
    size += 4 + _text(item.get("name"))
    for key in ("price", "amount", "infoDiscountAmount", "department"):
        size += _num(item.get(key))
    size += _float_num(item.get("quantity"))
    size += _byte(item.get("paymentMethod")) + _byte(item.get("paymentObject"))
    tax = item.get("tax")
    if isinstance(tax, dict):
        size += _byte(tax.get("type")) + _num(tax.get("sum"))
    agent = item.get("agentInfo")
    if isinstance(agent, dict):
        size += 4
        if isinstance(agent.get("agents"), dict | list):
            size += 5
        for key, text_keys in _AGENT_PARTS.items():
            part = agent.get(key)
            if isinstance(part, dict):
                size += _phones(part.get("phones"))
                size += sum(_text(part.get(text_key)) for text_key in text_keys)
    supplier = item.get("supplierInfo")
    if isinstance(supplier, dict):
        size += _text(supplier.get("name")) + _text(supplier.get("vatin"))
        size += _phones(supplier.get("phones"))
    if isinstance(item.get("imcParams"), dict):
        size += 4 + 28 + 4 + 24
    return size


def _text(value: Any) -> int:
    return len(value) + 4 if isinstance(value, str) else 0


def _byte(value: Any) -> int:
    return 5 if isinstance(value, str) else 0


def _magnitude(value: float) -> int:
    """1..6 bytes by magnitude, the driver's steps of 2**8, 4**8, … 12**8; 0 beyond."""
    for length, base in enumerate((2, 4, 6, 8, 10, 12), start=1):
        if value < base**8:
            return length
    return 0


def _num(value: Any) -> int:
    """A money-like number (the driver compares ``value`` with 2**8 / 100, …)."""
    if not is_number(value):
        return 0
    return _magnitude(float(value) * 100) + 4


def _float_num(value: Any) -> int:
    """The quantity (the driver divides it by 10**6 before comparing)."""
    if not is_number(value):
        return 0
    return _magnitude(float(value) / 1_000_000) + 3 + 4


def _phones(value: Any) -> int:
    """A list of phone strings: each +4, and +4 for the list when it has any."""
    if not isinstance(value, list):
        return 0
    size = sum(len(phone) + 4 for phone in value if isinstance(phone, str))
    return size + 4 if size > 0 else size
