"""The receipt a deal prints, built from what Bitrix24 holds about it, or the reason it can't.

From the deal's product rows (``crm.item.productrow.list``; b24restdocs
``crm/data-types.md#crm_item_product_row``): ``price`` is the unit price the buyer pays
(discount taken, tax included), ``priceBrutto`` the same before the discount. A line goes to
the register as price = ``priceBrutto``, amount = ``price`` × quantity (kopecks, half up),
so the register prints the discount as the difference (DTO10 POSITION_SUM); the tax type is
the row's ``taxRate`` (``vat20`` for 20), or the rule's ``vat_default`` for a row without
one. With ``taxIncluded=N`` Bitrix24 adds the tax on top, so ``price`` already carries it:
a receipt's amount always includes VAT. Measures go from OKEI codes (``measureCode``) to
FFD 1.2 names, a service row (``type`` 7) is a ``service``.

Everything is Decimal; the task turns into JSON numbers only at the end, and must then pass
the fiscal core's own validation (:func:`kassa_appliance.fiscal.receipt.parse_task`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from kassa_appliance.channels.automation.ledger import Operation
from kassa_appliance.channels.automation.rules import Rule
from kassa_appliance.fiscal.receipt import parse_task
from kassa_appliance.fiscal.receipt_enums import TAX_TYPES
from kassa_appliance.fiscal.receipt_errors import TaskValidationError
from kassa_appliance.fiscal.receipt_limits import MAX_NAME_LENGTH

CENT = Decimal("0.01")
CURRENCY = "RUB"
OKEI_UNITS: dict[int, str] = {
    796: "piece",
    163: "gram",
    166: "kilogram",
    168: "ton",
    4: "centimeter",
    5: "decimeter",
    6: "meter",
    51: "squareCentimeter",
    53: "squareDecimeter",
    55: "squareMeter",
    111: "milliliter",
    112: "liter",
    113: "cubicMeter",
    245: "kilowattHour",
    359: "day",
    356: "hour",
    355: "minute",
    354: "second",
}
"""OKEI measure codes (Bitrix24 ``measureCode``) → FFD 1.2 measure (tag 2108); any other
code is ``otherUnits``."""
CALCULATED_VAT = {"vat5": "vat105", "vat7": "vat107", "vat10": "vat110", "vat20": "vat120"}
CALCULATED_VAT["vat22"] = "vat122"
SERVICE_ROW_TYPE = 7
MAX_NUMBER = 10**10
"""No price, quantity or amount of a receipt comes near this (a guard for Decimal math)."""


class ReceiptRefused(ValueError):
    """The deal cannot print under the rule; ``str()`` says why and what to change."""


@dataclass(frozen=True)
class DealSnapshot:
    """One read of a deal: the item, its product rows, its contact and company."""

    deal: Mapping[str, Any]
    rows: list[Mapping[str, Any]]
    contact: Mapping[str, Any] | None = None
    company: Mapping[str, Any] | None = None

    @property
    def deal_id(self) -> int:
        return int(self.deal.get("id") or 0)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def decimal(value: Any, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ReceiptRefused(f"{what} is {value!r}, not a number") from None
    if not number.is_finite():
        raise ReceiptRefused(f"{what} is {value!r}, not a number")
    if abs(number) >= MAX_NUMBER:
        raise ReceiptRefused(f"{what} is {value!r}; expected less than {MAX_NUMBER:,}")
    return number


def shown(amount: Decimal) -> str:
    return f"{money(amount):.2f} {CURRENCY}"


def _tax(row: Mapping[str, Any], rule: Rule, where: str) -> str:
    rate = row.get("taxRate")
    if rate in (None, "", False):
        return rule.vat_default
    number = decimal(rate, f"{where} taxRate")
    name = f"vat{int(number)}" if number == number.to_integral_value() else ""
    if name not in TAX_TYPES:
        raise ReceiptRefused(
            f"{where} has tax rate {rate}%, which a Russian receipt cannot carry; expected "
            "0, 5, 7, 10, 20 or 22 % (catalog.vat.list), or no rate and the rule's vat_default"
        )
    return name


def _lines(snapshot: DealSnapshot, rule: Rule) -> list[dict[str, Any]]:
    if not snapshot.rows:
        raise ReceiptRefused(
            f"deal {snapshot.deal_id} has no product rows; expected the goods or services "
            "sold in the deal's Products tab"
        )
    lines = []
    for index, row in enumerate(snapshot.rows, start=1):
        where = f"product row {index}"
        name = str(row.get("productName") or "").strip()
        if not name:
            raise ReceiptRefused(f"{where} has no name; expected the product's name")
        quantity = decimal(row.get("quantity"), f"{where} ({name}) quantity")
        price = decimal(row.get("price"), f"{where} ({name}) price")
        brutto = decimal(row.get("priceBrutto") or row.get("price"), f"{where} priceBrutto")
        if quantity <= 0 or price < 0:
            raise ReceiptRefused(
                f"{where} ({name}) has quantity {quantity} and price {price}; expected a "
                "positive quantity and a price of zero or more"
            )
        measure = OKEI_UNITS.get(int(decimal(row.get("measureCode") or 796, f"{where} measure")))
        lines.append(
            {
                "type": "position",
                "name": name[:MAX_NAME_LENGTH],
                "price": money(max(brutto, price)),
                "quantity": quantity,
                "amount": money(price * quantity),
                "measurementUnit": measure or "otherUnits",
                "paymentMethod": rule.payment_method,
                "paymentObject": "service"
                if str(row.get("type")) == str(SERVICE_ROW_TYPE)
                else "commodity",
                "tax": {"type": _tax(row, rule, f"{where} ({name})")},
            }
        )
    return lines


def _single_line(snapshot: DealSnapshot, rule: Rule, amount: Decimal) -> list[dict[str, Any]]:
    """A prepayment or advance: one line of the amount paid (the goods come later)."""
    title = str(snapshot.deal.get("title") or "").strip()
    word = "Аванс" if rule.receipt_type == "advance" else "Предоплата"
    name = f"{word} по сделке №{snapshot.deal_id}" + (f" «{title}»" if title else "")
    return [
        {
            "type": "position",
            "name": name[:MAX_NAME_LENGTH],
            "price": amount,
            "quantity": Decimal(1),
            "amount": amount,
            "paymentMethod": rule.payment_method,
            "paymentObject": "payment" if rule.receipt_type == "advance" else "commodity",
            "tax": {"type": CALCULATED_VAT.get(rule.vat_default, rule.vat_default)},
        }
    ]


def normalise_phone(value: str) -> str:
    digits = re.sub(r"[^\d+]", "", value)
    if digits.startswith("8") and len(digits) == 11:
        return "+7" + digits[1:]
    if digits.isdigit() and len(digits) == 11 and digits.startswith("7"):
        return "+" + digits
    return digits


def _contact_of(party: Mapping[str, Any] | None) -> str | None:
    if not party:
        return None
    fields = party.get("fm")
    entries = [f for f in fields if isinstance(f, Mapping)] if isinstance(fields, list) else []
    for kind in ("EMAIL", "PHONE"):
        for entry in entries:
            value = str(entry.get("value") or "").strip()
            if entry.get("typeId") == kind and value:
                return value if kind == "EMAIL" else normalise_phone(value)
    return None


def client_contact(snapshot: DealSnapshot, rule: Rule) -> str:
    found = _contact_of(snapshot.contact) or _contact_of(snapshot.company)
    if found:
        return found
    parts = []
    if snapshot.contact:
        parts.append(f"contact {snapshot.contact.get('id')} has no e-mail or phone")
    if snapshot.company:
        parts.append(f"company {snapshot.company.get('id')} has no e-mail or phone")
    why = "; ".join(parts) or "the deal has no contact or company"
    raise ReceiptRefused(
        f"an electronic receipt needs the client's e-mail or phone, but {why}; expected one "
        f"on the deal's contact or company, or rule {rule.id} with electronic: false (paper)"
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def build_task(
    snapshot: DealSnapshot,
    rule: Rule,
    operation: Operation,
    *,
    amount: Decimal,
    amount_what: str,
    currency: str,
) -> dict[str, Any]:
    """The Atol task (JSON-ready) for ``operation`` of the deal, checked by the fiscal core.

    ``amount`` is what the receipt must add up to (the deal's amount, or the payment's sum)
    and ``amount_what`` names it in a refusal. Raises :class:`ReceiptRefused`."""
    if currency != CURRENCY:
        raise ReceiptRefused(
            f"{amount_what} is in {currency or 'no currency'}; a receipt is printed in RUB "
            "only: expected the deal's currency RUB"
        )
    amount = money(amount)
    if rule.receipt_type in ("prepayment", "advance"):
        lines = _single_line(snapshot, rule, amount)
    else:
        lines = _lines(snapshot, rule)
    total = money(sum((line["amount"] for line in lines), Decimal(0)))
    if total != amount:
        raise ReceiptRefused(
            f"the product rows add up to {shown(total)}, but {amount_what} is {shown(amount)}; "
            "expected them to match (fix the rows or the amount, then move the deal again)"
        )
    if total <= 0:
        raise ReceiptRefused(f"{amount_what} is {shown(total)}; expected more than zero")
    task: dict[str, Any] = {
        "type": "sell" if operation == "sell" else "sellReturn",
        "items": lines,
        "payments": [{"type": rule.payment_type, "sum": total}],
        "total": total,
    }
    if rule.taxation:
        task["taxationType"] = rule.taxation
    if rule.electronic:
        task["electronically"] = True
        task["clientInfo"] = {"emailOrPhone": client_contact(snapshot, rule)}
        if rule.payments_address:
            task["paymentsAddress"] = rule.payments_address
    ready: dict[str, Any] = _jsonable(task)
    try:
        parse_task(ready)
    except TaskValidationError as error:
        raise ReceiptRefused(f"the receipt built from deal {snapshot.deal_id}: {error}") from None
    return ready
