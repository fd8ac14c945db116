"""KKMServer commands → Atol JSON tasks, and Atol results → KKMServer answers.

Field names and values from KKMServer's published command set as real clients send it
(esaulkov/kkmserver ``spec/support/vcr_cassettes/*.yml``: List, RegisterCheck with
CheckStrings of PrintText/Register/BarCode, OpenShift, CloseShift, XReport, ZReport,
DepositingCash, PaymentCash, GetDataCheck, OpenCashDrawer; salesduck/kkmserver-types for
the envelope). Each command becomes one Atol task that runs on the same queue as every
other job; the fiscal rules stay the engine's (an invalid receipt fails with the reason).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

RECEIPT_TYPES = {0: "sell", 1: "sellReturn", 10: "buy", 11: "buyReturn"}
TAX_VARIANTS = {
    0: "osn",
    1: "usnIncome",
    2: "usnIncomeOutcome",
    3: "envd",
    4: "esn",
    5: "patent",
}
TAXES = {
    -1: "none",
    0: "vat0",
    5: "vat5",
    7: "vat7",
    10: "vat10",
    18: "vat18",
    20: "vat20",
    22: "vat22",
    105: "vat105",
    107: "vat107",
    110: "vat110",
    118: "vat118",
    120: "vat120",
    122: "vat122",
}
METHODS = {
    1: "fullPrepayment",
    2: "prepayment",
    3: "advance",
    4: "fullPayment",
    5: "partialPayment",
    6: "credit",
    7: "creditPayment",
}
OBJECTS = {
    1: "commodity",
    2: "excise",
    3: "job",
    4: "service",
    5: "gamblingBet",
    6: "gamblingPrize",
    7: "lottery",
    8: "lotteryPrize",
    9: "intellectualActivity",
    10: "payment",
    11: "agentCommission",
    12: "composite",
    13: "another",
}
PAYMENTS = {
    "Cash": "cash",
    "ElectronicPayment": "electronically",
    "AdvancePayment": "prepaid",
    "Credit": "credit",
    "CashProvision": "other",
}
SIMPLE_COMMANDS = {
    "OpenShift": "openShift",
    "CloseShift": "closeShift",
    "ZReport": "closeShift",
    "XReport": "reportX",
    "OpenCashDrawer": "openCashDrawer",
}


class KkmRefused(ValueError):
    """The command cannot become a task; ``str()`` is KKMServer's ``Error`` text."""


def _number(body: dict[str, Any], key: str, *, default: Any = None) -> Decimal | None:
    value = body.get(key, default)
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise KkmRefused(f"Поле {key}: ожидается число")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise KkmRefused(f"Поле {key}: ожидается число") from None
    if not number.is_finite():
        raise KkmRefused(f"Поле {key}: ожидается число")
    return number


def _whole(
    body: dict[str, Any], key: str, table: dict[int, str], default: int | None
) -> str | None:
    value = body.get(key, default)
    if value in (None, ""):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in table:
        allowed = ", ".join(str(key) for key in table)
        raise KkmRefused(f"Поле {key}: недопустимое значение; ожидается одно из {allowed}")
    return table[value]


def _money(number: Decimal) -> float:
    return float(number)


def operator(body: dict[str, Any]) -> dict[str, Any]:
    name = body.get("CashierName")
    if not isinstance(name, str) or not name.strip():
        return {}
    person: dict[str, Any] = {"name": name.strip()}
    vatin = body.get("CashierVATIN")
    if isinstance(vatin, str) and vatin.strip():
        person["vatin"] = vatin.strip()
    return {"operator": person}


def _position(register: dict[str, Any]) -> dict[str, Any]:
    name = register.get("Name")
    if not isinstance(name, str):
        raise KkmRefused("Register.Name: ожидается наименование товара")
    price = _number(register, "Price")
    quantity = _number(register, "Quantity")
    amount = _number(register, "Amount")
    if price is None or quantity is None:
        raise KkmRefused("Register: ожидаются Price и Quantity")
    position: dict[str, Any] = {
        "type": "position",
        "name": name,
        "price": _money(price),
        "quantity": float(quantity),
        "amount": _money(amount if amount is not None else price * quantity),
        "paymentMethod": _whole(register, "SignMethodCalculation", METHODS, 4),
        "paymentObject": _whole(register, "SignCalculationObject", OBJECTS, 1),
    }
    tax = _whole(register, "Tax", TAXES, None)
    if tax is not None:
        position["tax"] = {"type": tax}
    department = register.get("Department")
    if isinstance(department, int) and not isinstance(department, bool) and department > 0:
        position["department"] = department
    unit = register.get("MeasurementUnit") or register.get("MeasureOfQuantity")
    if isinstance(unit, str) and unit.strip():
        position["measurementUnit"] = unit.strip()
    return position


def _items(strings: Any) -> list[dict[str, Any]]:
    if not isinstance(strings, list):
        raise KkmRefused("Поле CheckStrings: ожидается список строк чека")
    items: list[dict[str, Any]] = []
    for entry in strings:
        if not isinstance(entry, dict):
            raise KkmRefused("CheckStrings: каждая строка — объект")
        text = entry.get("PrintText")
        if isinstance(text, dict) and isinstance(text.get("Text"), str):
            items.append({"type": "text", "text": text["Text"]})
        register = entry.get("Register")
        if isinstance(register, dict):
            items.append(_position(register))
        barcode = entry.get("BarCode")
        if isinstance(barcode, dict) and isinstance(barcode.get("Barcode"), str):
            kind = barcode.get("BarcodeType") if isinstance(barcode.get("BarcodeType"), str) else ""
            items.append({"type": "barcode", "barcode": barcode["Barcode"], "barcodeType": kind})
    return items


def register_check(body: dict[str, Any]) -> dict[str, Any]:
    items = _items(body.get("CheckStrings", []))
    if body.get("IsFiscalCheck") is False:
        texts = [item for item in items if item["type"] in ("text", "barcode")]
        return {"type": "nonFiscal", "items": texts}
    receipt_type = _whole(body, "TypeCheck", RECEIPT_TYPES, 0)
    task: dict[str, Any] = {"type": receipt_type, **operator(body), "items": items}
    taxation = _whole(body, "TaxVariant", TAX_VARIANTS, None)
    if taxation is not None:
        task["taxationType"] = taxation
    payments = []
    for field, kind in PAYMENTS.items():
        amount = _number(body, field)
        if amount is not None and amount != 0:
            payments.append({"type": kind, "sum": _money(amount)})
    task["payments"] = payments
    client = body.get("ClientAddress")
    if isinstance(client, str) and client.strip():
        task["clientInfo"] = {"emailOrPhone": client.strip()}
    if body.get("NotPrint") is True:
        task["electronically"] = True
    return task


def command_task(command: str, body: dict[str, Any]) -> dict[str, Any]:
    """The Atol task of a queued KKMServer command; raises KkmRefused."""
    if command == "RegisterCheck":
        return register_check(body)
    if command in SIMPLE_COMMANDS:
        return {"type": SIMPLE_COMMANDS[command], **operator(body)}
    if command in ("DepositingCash", "PaymentCash"):
        amount = _number(body, "Amount")
        if amount is None or amount <= 0:
            raise KkmRefused("Поле Amount: ожидается сумма больше нуля")
        kind = "cashIn" if command == "DepositingCash" else "cashOut"
        return {"type": kind, "cashSum": _money(amount), **operator(body)}
    if command == "GetDataCheck":
        number = _number(body, "FiscalNumber", default=0)
        copies = _number(body, "NumberCopies", default=0)
        if number not in (None, 0):
            raise KkmRefused("GetDataCheck: доступен только последний документ (FiscalNumber 0)")
        if copies is not None and copies > 0:
            return {"type": "printLastReceiptCopy"}
        return {"type": "getLastFiscalParams", "forReceipt": True}
    raise KkmRefused(f"Команда {command[:60]} не поддерживается")


def result_fields(command: str, result: Any, qr: str | None) -> dict[str, Any]:
    """What KKMServer adds to its answer for a done command."""
    params = result.get("fiscalParams") if isinstance(result, dict) else None
    params = params if isinstance(params, dict) else {}
    fields: dict[str, Any] = {}
    if command == "RegisterCheck" and params:
        fields.update(
            CheckNumber=params.get("fiscalReceiptNumber"),
            SessionNumber=params.get("shiftNumber"),
            SessionCheckNumber=params.get("fiscalReceiptNumber"),
            FiscalNumber=params.get("fiscalDocumentNumber"),
            FiscalSign=params.get("fiscalDocumentSign"),
            URL=params.get("fnsUrl") or "",
            QRCode=qr or "",
        )
    elif command in ("OpenShift", "CloseShift", "ZReport") and params:
        fields.update(
            SessionNumber=params.get("shiftNumber"),
            FiscalNumber=params.get("fiscalDocumentNumber"),
        )
    elif command == "GetDataCheck":
        fields["RegisterCheck"] = params
    return fields
