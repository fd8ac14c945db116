"""A Bitrix24 REST cashbox check (PRINT_URL body, already parsed) → an Atol JSON task.

Field names and values: ``CashboxRest::buildCheckQuery`` as described in
``shared/reference/bitrix24-notes.md`` §4 and ``peers-notes.md`` §3.4. Every problem is
raised as :class:`CheckRejected` naming the Bitrix24 field (``items[2][vat]``), what is
wrong and what was expected; the relay answers it as ``{"ERRORS": [...]}``.

Check types: every ``*return*`` type is a ``sellReturn`` (``buyReturn`` when ``calculated``
is ``consumption``), every other type a ``sell`` (``buy``); the type also gives the payment
method (tag 1214) of positions that do not carry their own ``payment_method``. VAT: the
item's ``vat`` is a catalog VAT id, resolved through the VAT list registered with the
cashbox; on advance and prepayment checks a rate becomes its calculated form (20 →
``vat120``), as FFD requires. Marking codes: FFD 1.2 → ``imcParams`` (the code in base64,
``imcType: auto``, sold or returned piece); FFD 1.05 → ``nomenclatureCode``.
"""

from __future__ import annotations

import base64
from decimal import Decimal, InvalidOperation
from typing import Any

from kassa_appliance.inputs import shorten

CHECK_TYPES: dict[str, tuple[str, str]] = {
    # Bitrix24 type: (receipt side, payment method of its positions)
    "sell": ("sell", "fullPayment"),
    "sellreturn": ("return", "fullPayment"),
    "sellreturncash": ("return", "fullPayment"),
    "advancepayment": ("sell", "advance"),
    "advancereturn": ("return", "advance"),
    "advancereturncash": ("return", "advance"),
    "prepayment": ("sell", "prepayment"),
    "prepaymentreturn": ("return", "prepayment"),
    "prepaymentreturncash": ("return", "prepayment"),
    "fullprepayment": ("sell", "fullPrepayment"),
    "fullprepaymentreturn": ("return", "fullPrepayment"),
    "fullprepaymentreturncash": ("return", "fullPrepayment"),
    "credit": ("sell", "credit"),
    "creditreturn": ("return", "credit"),
    "creditpayment": ("sell", "creditPayment"),
    "creditpaymentreturn": ("return", "creditPayment"),
    "creditpaymentreturncash": ("return", "creditPayment"),
}
PAYMENT_METHODS = {
    "full_payment": "fullPayment",
    "advance": "advance",
    "prepayment": "prepayment",
    "full_prepayment": "fullPrepayment",
    "credit": "credit",
    "credit_payment": "creditPayment",
}
PAYMENT_OBJECTS = {
    "commodity": "commodity",
    "commodity_marking": "commodity",
    "excise": "excise",
    "job": "job",
    "service": "service",
    "payment": "payment",
}
PAYMENT_OBJECTS_FFD12_MARKED = {"commodity_marking": "commodityWithMarking"}
PAYMENT_TYPES = {"cash": "cash", "cashless": "electronically"}
OKEI_UNITS = {
    "796": "piece",
    "163": "gram",
    "166": "kilogram",
    "168": "ton",
    "004": "centimeter",
    "005": "decimeter",
    "006": "meter",
    "051": "squareCentimeter",
    "053": "squareDecimeter",
    "055": "squareMeter",
    "111": "milliliter",
    "112": "liter",
    "113": "cubicMeter",
    "245": "kilowattHour",
    "359": "day",
    "356": "hour",
    "355": "minute",
    "354": "second",
}
"""OKEI codes (Bitrix24's ``measure_code``) → FFD 1.2 measurement units; others: ``piece``."""
RATES = {"0", "5", "7", "10", "20", "22"}
CALCULATED = {"5": "vat105", "7": "vat107", "10": "vat110", "20": "vat120", "22": "vat122"}
ADVANCE_METHODS = {"advance", "prepayment", "fullPrepayment"}
MAX_ITEMS = 100
MONEY_LIMIT = Decimal("9999999999.99")


class CheckRejected(ValueError):
    """What is wrong with a check, for ``{"ERRORS": [...]}``."""


def _text(value: Any, where: str, *, required: bool = True, limit: int = 256) -> str | None:
    if value is None or value == "":
        if required:
            raise CheckRejected(f"{where}: missing; expected a value")
        return None
    if not isinstance(value, str):
        raise CheckRejected(f"{where}: expected text, got a nested structure")
    if len(value) > limit:
        raise CheckRejected(f"{where}: {len(value):,} characters; expected at most {limit}")
    return value


def _money(value: Any, where: str, *, places: int = 2, limit: Decimal = MONEY_LIMIT) -> Decimal:
    text = _text(value, where, limit=40)
    assert text is not None
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise CheckRejected(f"{where}: {shorten(text, 40)!r} is not a number") from None
    if not number.is_finite() or number < 0 or number > limit:
        raise CheckRejected(f"{where}: {shorten(text, 40)} is out of range; expected 0 to {limit}")
    quantum = Decimal(1).scaleb(-places)
    if number != number.quantize(quantum):
        raise CheckRejected(f"{where}: {text} has more than {places} decimal places")
    return number


def _tax(vat_id: str | None, vat_map: dict[str, str], method: str, where: str) -> str:
    if vat_id is None or (vat_id in {"0", ""} and "0" not in vat_map):
        return "none"
    rate = vat_map.get(vat_id)
    if rate is None:
        known = ", ".join(sorted(vat_map)) or "none registered"
        raise CheckRejected(
            f"{where}: VAT id {shorten(vat_id, 20)} is not in the cashbox's VAT list "
            f"(ids: {known}); expected an id of the portal's catalog VAT list — register "
            "the cashbox again with it (kassa-relay cashbox register --vat ID=RATE)"
        )
    rate = rate.strip().rstrip("%")
    if rate in {"none", "", "-"}:
        return "none"
    if rate.endswith(".00"):
        rate = rate[:-3]
    if rate not in RATES:
        raise CheckRejected(f"{where}: VAT rate {shorten(rate, 10)} is not one Atol takes")
    if method in ADVANCE_METHODS and rate in CALCULATED:
        return CALCULATED[rate]
    return f"vat{rate}"


def _marking(item: dict[str, Any], where: str, ffd: str, side: str) -> dict[str, Any]:
    code = _text(item.get("marking_code"), f"{where}[marking_code]", required=False, limit=1024)
    if code:
        if ffd == "1.2":
            status = "itemPieceReturn" if side == "return" else "itemPieceSold"
            imc = base64.b64encode(code.encode("utf-8")).decode("ascii")
            return {
                "imcParams": {
                    "imcType": "auto",
                    "imc": imc,
                    "itemEstimatedStatus": status,
                    "imcModeProcessing": 0,
                }
            }
        return {"nomenclatureCode": base64.b64encode(code.encode("utf-8")).decode("ascii")}
    nomenclature = _text(
        item.get("nomenclature_code"), f"{where}[nomenclature_code]", required=False, limit=1024
    )
    if nomenclature and ffd != "1.2":
        return {
            "nomenclatureCode": base64.b64encode(nomenclature.encode("latin-1", "replace")).decode()
        }
    return {}


def _position(
    item: Any, index: int, *, vat_map: dict[str, str], method: str, ffd: str, side: str
) -> dict[str, Any]:
    where = f"items[{index}]"
    if not isinstance(item, dict):
        raise CheckRejected(f"{where}: expected the item's fields")
    name = _text(item.get("name"), f"{where}[name]", limit=128)
    price = _money(item.get("price"), f"{where}[price]")
    quantity = _money(item.get("quantity"), f"{where}[quantity]", places=6, limit=Decimal(99999))
    amount = _money(item.get("sum"), f"{where}[sum]")
    item_method = _text(item.get("payment_method"), f"{where}[payment_method]", required=False)
    if item_method is not None:
        if item_method not in PAYMENT_METHODS:
            raise CheckRejected(
                f"{where}[payment_method]: {shorten(item_method, 30)!r} is not known; expected "
                f"one of {', '.join(PAYMENT_METHODS)}"
            )
        method = PAYMENT_METHODS[item_method]
    kind = _text(item.get("payment_object"), f"{where}[payment_object]", required=False)
    objects = {**PAYMENT_OBJECTS, **(PAYMENT_OBJECTS_FFD12_MARKED if ffd == "1.2" else {})}
    if kind is not None and kind not in objects:
        raise CheckRejected(
            f"{where}[payment_object]: {shorten(kind, 30)!r} is not known; expected one of "
            f"{', '.join(PAYMENT_OBJECTS)}"
        )
    vat_id = _text(item.get("vat"), f"{where}[vat]", required=False, limit=20)
    position: dict[str, Any] = {
        "type": "position",
        "name": name,
        "price": float(price),
        "quantity": float(quantity),
        "amount": float(amount),
        "paymentMethod": method,
        "paymentObject": objects[kind] if kind else "commodity",
        "tax": {"type": _tax(vat_id, vat_map, method, f"{where}[vat]")},
    }
    if ffd == "1.2":
        code = _text(item.get("measure_code"), f"{where}[measure_code]", required=False)
        position["measurementUnit"] = OKEI_UNITS.get((code or "796").zfill(3), "piece")
    position.update(_marking(item, where, ffd, side))
    supplier = item.get("supplier_info")
    if isinstance(supplier, dict) and supplier.get("inn"):
        info: dict[str, Any] = {"vatin": _text(supplier.get("inn"), f"{where}[supplier_info][inn]")}
        if supplier.get("name"):
            info["name"] = _text(supplier.get("name"), f"{where}[supplier_info][name]")
        phones = supplier.get("phones")
        if isinstance(phones, list) and phones:
            info["phones"] = [str(p) for p in phones if isinstance(p, str)][:5]
        position["supplierInfo"] = info
    return position


def check_to_task(
    check: dict[str, Any],
    *,
    vat_map: dict[str, str],
    ffd: str = "1.2",
    taxation: str | None = None,
    payments_address: str | None = None,
) -> dict[str, Any]:
    """The Atol task for a parsed PRINT_URL body (raises CheckRejected)."""
    kind = _text(check.get("type"), "type", limit=40)
    assert kind is not None
    if kind not in CHECK_TYPES:
        raise CheckRejected(
            f"type: {shorten(kind, 30)!r} is not a check type this cashbox prints; expected one "
            f"of {', '.join(CHECK_TYPES)}"
        )
    side, method = CHECK_TYPES[kind]
    calculated = check.get("calculated") or check.get("operation") or "income"
    if not isinstance(calculated, str) or calculated not in {"income", "consumption"}:
        raise CheckRejected("calculated: expected income or consumption")
    if calculated == "consumption":
        receipt_type = "buyReturn" if side == "return" else "buy"
    else:
        receipt_type = "sellReturn" if side == "return" else "sell"
    items = check.get("items")
    if not isinstance(items, list) or not items:
        raise CheckRejected("items: missing; expected at least one item")
    if len(items) > MAX_ITEMS:
        raise CheckRejected(f"items: {len(items)} items; expected at most {MAX_ITEMS}")
    positions = [
        _position(item, i, vat_map=vat_map, method=method, ffd=ffd, side=side)
        for i, item in enumerate(items)
    ]
    payments_raw = check.get("payments")
    if not isinstance(payments_raw, list) or not payments_raw:
        raise CheckRejected("payments: missing; expected at least one payment")
    payments = []
    for index, payment in enumerate(payments_raw):
        where = f"payments[{index}]"
        if not isinstance(payment, dict):
            raise CheckRejected(f"{where}: expected the payment's fields")
        ptype = _text(payment.get("type"), f"{where}[type]", required=False)
        if ptype is None:
            ptype = "cash" if payment.get("is_cash") == "Y" else "cashless"
        if ptype not in PAYMENT_TYPES:
            raise CheckRejected(f"{where}[type]: {shorten(ptype, 20)!r}; expected cash or cashless")
        payments.append(
            {
                "type": PAYMENT_TYPES[ptype],
                "sum": float(_money(payment.get("sum"), f"{where}[sum]")),
            }
        )
    task: dict[str, Any] = {"type": receipt_type, "items": positions, "payments": payments}
    if check.get("total_sum") not in (None, ""):
        task["total"] = float(_money(check.get("total_sum"), "total_sum"))
    contact = check.get("client_email") or check.get("client_phone")
    if contact:
        task["clientInfo"] = {"emailOrPhone": _text(contact, "client_email", limit=64)}
    if taxation:
        task["taxationType"] = taxation
    if payments_address:
        task["paymentsAddress"] = payments_address
    return task
