"""Paper tape of the simulated register: each printed document as plain text.

Every document starts and ends with the "ДЕМО — НЕ ФИСКАЛЬНЫЙ ДОКУМЕНТ" marking: nothing the
simulator prints may be mistaken for a real receipt. Text lines fit the printer's line width
(32 or 48 characters); only the QR code, drawn with half-block characters (two module rows
per text line), may be wider.

A document is described by a JSON-friendly mapping (the simulator stores one when printing
is interrupted, to print it again on ``continuePrint``)::

    {"kind": "receipt" | "openShift" | "closeShift" | "reportX" | "cashIn" | "cashOut"
             | "nonFiscal",
     "copy": true,             # printLastReceiptCopy: a copy of the document
     "serial": "...", "dateTime": "<ISO>", "operator": {"name", "vatin"} | None,
     "task": {...},            # receipt: the Atol task
     "fiscalParams": {...},    # receipt, openShift, closeShift
     "change": "0.00",         # receipt
     "summary": {"counts": {type: n}, "totals": {type: "sum"}, "cashSum": "..."},
     "amount": "...", "cashSum": "...",   # cashIn / cashOut
     "items": [...]}           # nonFiscal: text and barcode items
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import qrcode

from kassa_appliance.fiscal_qr import OPERATION_CODES, qr_string
from kassa_appliance.registers.base import RECEIPT_TASK_ORDER

DEMO_MARK = "ДЕМО — НЕ ФИСКАЛЬНЫЙ ДОКУМЕНТ"
MODEL_NAME = "АТОЛ 30Ф (симулятор)"

RECEIPT_TITLES = {
    "sell": "ПРИХОД",
    "sellReturn": "ВОЗВРАТ ПРИХОДА",
    "buy": "РАСХОД",
    "buyReturn": "ВОЗВРАТ РАСХОДА",
}
PAYMENT_TITLES = {
    "cash": "НАЛИЧНЫМИ",
    "electronically": "БЕЗНАЛИЧНЫМИ",
    "prepaid": "ПРЕДОПЛАТА (АВАНС)",
    "credit": "ПОСТОПЛАТА (КРЕДИТ)",
    "other": "ИНАЯ ФОРМА ОПЛАТЫ",
}
TAXATION_TITLES = {
    "osn": "ОСН",
    "usnIncome": "УСН доход",
    "usnIncomeOutcome": "УСН доход - расход",
    "envd": "ЕНВД",
    "esn": "ЕСХН",
    "patent": "ПСН",
}
# tax.type -> (printed label, rate numerator, rate denominator) of the VAT inside the amount
VAT_RATES: dict[str, tuple[str, int, int]] = {
    "vat0": ("НДС 0%", 0, 100),
    "vat5": ("НДС 5%", 5, 105),
    "vat7": ("НДС 7%", 7, 107),
    "vat10": ("НДС 10%", 10, 110),
    "vat18": ("НДС 18%", 18, 118),
    "vat20": ("НДС 20%", 20, 120),
    "vat22": ("НДС 22%", 22, 122),
    "vat105": ("НДС 5/105", 5, 105),
    "vat107": ("НДС 7/107", 7, 107),
    "vat110": ("НДС 10/110", 10, 110),
    "vat118": ("НДС 18/118", 18, 118),
    "vat120": ("НДС 20/120", 20, 120),
    "vat122": ("НДС 22/122", 22, 122),
}
_CENT = Decimal("0.01")


def render_document(document: Mapping[str, Any], width: int = 32) -> str:
    """Render one printed document as text lines joined by newlines."""
    kind = document.get("kind")
    renderers = {
        "receipt": _receipt,
        "openShift": _open_shift,
        "closeShift": _close_shift,
        "reportX": _report_x,
        "cashIn": _cash_operation,
        "cashOut": _cash_operation,
        "nonFiscal": _non_fiscal,
    }
    renderer = renderers.get(str(kind))
    if renderer is None:
        raise ValueError(f"document kind {kind!r}: expected one of {', '.join(renderers)}")
    lines = _demo_banner(width)
    lines += _center(MODEL_NAME, width)
    lines += _pair("ЗН ККТ", str(document.get("serial", "")), width)
    if document.get("copy"):
        lines += _center("*** КОПИЯ ***", width)
    lines += renderer(document, width)
    lines += _demo_banner(width)
    return "\n".join(lines) + "\n"


def render_qr(text: str) -> str:
    """The QR code of ``text`` for a terminal, as one string (see :func:`qr_lines`)."""
    return "\n".join(qr_lines(text))


def qr_lines(text: str) -> list[str]:
    """The QR code of ``text`` in half-block characters: two module rows per line."""
    code = qrcode.QRCode(border=1)
    code.add_data(text)
    code.make(fit=True)
    matrix: list[list[bool]] = [[bool(cell) for cell in row] for row in code.get_matrix()]
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    glyphs = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}
    return [
        "".join(glyphs[top, bottom] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(matrix[0::2], matrix[1::2], strict=True)
    ]


def _receipt(document: Mapping[str, Any], width: int) -> list[str]:
    task: Mapping[str, Any] = document.get("task") or {}
    params: Mapping[str, Any] = document.get("fiscalParams") or {}
    kind = str(task.get("type", "sell"))
    direction = kind.removesuffix("Correction")
    lines = _company(task, width)
    if kind.endswith("Correction"):
        lines += _center("КАССОВЫЙ ЧЕК КОРРЕКЦИИ", width)
    else:
        lines += _center("КАССОВЫЙ ЧЕК", width)
    lines += _center(RECEIPT_TITLES.get(direction, direction), width)
    if kind.endswith("Correction"):
        how = "ПО ПРЕДПИСАНИЮ" if task.get("correctionType") == "instruction" else "САМОСТОЯТ."
        lines += _pair("КОРРЕКЦИЯ", how, width)
        if task.get("correctionBaseDate"):
            lines += _pair("ДАТА ОСНОВАНИЯ", str(task["correctionBaseDate"]), width)
        if task.get("correctionBaseNumber"):
            lines += _pair("НОМЕР ОСНОВАНИЯ", str(task["correctionBaseNumber"]), width)
    lines += _operator(document.get("operator") or task.get("operator"), width)
    lines.append("-" * width)
    vat: dict[str, Decimal] = {}
    number = 0
    for item in task.get("items") or []:
        if item.get("type") == "text":
            lines += _wrap(str(item.get("text", "")), width)
            continue
        if item.get("type") != "position":
            continue
        number += 1
        raw_amount = item.get("amount")
        if raw_amount is None:
            raw_amount = _money(item.get("price")) * _qty(item)
        amount = _money(raw_amount)
        lines += _wrap(f"{number}. {item.get('name', '')}", width)
        lines += _pair(f" {_qty(item)} × {_money(item.get('price'))}", f"={amount}", width)
        tax_type = str((item.get("tax") or {}).get("type", "none"))
        label, numerator, denominator = VAT_RATES.get(tax_type, ("БЕЗ НДС", 0, 0))
        lines += _wrap(f" {label}", width)
        if denominator:
            vat[label] = vat.get(label, Decimal("0")) + amount * numerator / denominator
    lines.append("-" * width)
    lines += _pair("ИТОГ", f"={_money(params.get('total', 0))}", width)
    for payment in task.get("payments") or []:
        title = PAYMENT_TITLES.get(str(payment.get("type")), str(payment.get("type")))
        lines += _pair(title, f"={_money(payment.get('sum', 0))}", width)
    change = _money(document.get("change", 0))
    if change:
        lines += _pair("СДАЧА", f"={change}", width)
    for label, amount in vat.items():
        lines += _pair(f"СУММА {label}", f"={amount.quantize(_CENT)}", width)
    if task.get("taxationType"):
        taxation = str(task["taxationType"])
        lines += _pair("СНО", TAXATION_TITLES.get(taxation, taxation), width)
    client = task.get("clientInfo") or {}
    if client.get("emailOrPhone"):
        lines += _pair("ПОКУПАТЕЛЬ", str(client["emailOrPhone"]), width)
    lines.append("-" * width)
    lines += _fiscal_block(params, width)
    lines += _pair("ЧЕК", str(params.get("fiscalReceiptNumber", "")), width)
    lines += _wrap(f"САЙТ ФНС: {params.get('fnsUrl', 'www.nalog.gov.ru')}", width)
    if kind in OPERATION_CODES and params:
        lines += qr_lines(qr_string(params, kind))
    return lines


def _open_shift(document: Mapping[str, Any], width: int) -> list[str]:
    params: Mapping[str, Any] = document.get("fiscalParams") or {}
    lines = _center("ОТЧЁТ ОБ ОТКРЫТИИ СМЕНЫ", width)
    lines += _operator(document.get("operator"), width)
    lines.append("-" * width)
    return lines + _fiscal_block(params, width)


def _close_shift(document: Mapping[str, Any], width: int) -> list[str]:
    params: Mapping[str, Any] = document.get("fiscalParams") or {}
    lines = _center("ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ", width)
    lines += _operator(document.get("operator"), width)
    lines.append("-" * width)
    lines += _pair("ЧЕКОВ ЗА СМЕНУ", str(params.get("receiptsCount", 0)), width)
    lines += _summary(document.get("summary") or {}, width)
    lines.append("-" * width)
    return lines + _fiscal_block(params, width)


def _report_x(document: Mapping[str, Any], width: int) -> list[str]:
    lines = _center("ОТЧЁТ БЕЗ ГАШЕНИЯ", width)
    lines += _operator(document.get("operator"), width)
    lines += _pair("СМЕНА", str(document.get("shiftNumber", "")), width)
    lines.append("-" * width)
    lines += _summary(document.get("summary") or {}, width)
    lines.append("-" * width)
    return lines + _wrap(_printed_time(document.get("dateTime")), width)


def _cash_operation(document: Mapping[str, Any], width: int) -> list[str]:
    title = "ВНЕСЕНИЕ" if document.get("kind") == "cashIn" else "ВЫПЛАТА"
    lines = _center(title, width)
    lines += _operator(document.get("operator"), width)
    lines.append("-" * width)
    lines += _pair("СУММА", f"={_money(document.get('amount', 0))}", width)
    lines += _pair("НАЛИЧНЫХ В КАССЕ", f"={_money(document.get('cashSum', 0))}", width)
    return lines + _wrap(_printed_time(document.get("dateTime")), width)


def _non_fiscal(document: Mapping[str, Any], width: int) -> list[str]:
    """A text document: its text lines, barcodes as their content (QR codes drawn)."""
    lines = _center("НЕФИСКАЛЬНЫЙ ДОКУМЕНТ", width)
    for item in document.get("items") or []:
        if item.get("type") == "text":
            text = str(item.get("text", ""))
            lines += (
                _center(text, width) if item.get("alignment") == "center" else _wrap(text, width)
            )
        elif item.get("type") == "barcode" and item.get("barcodeType") == "QR":
            lines += qr_lines(str(item.get("barcode", "")))
        elif item.get("type") == "barcode":
            lines += _wrap(f"[{item.get('barcodeType')}] {item.get('barcode', '')}", width)
    return lines + _wrap(_printed_time(document.get("dateTime")), width)


def _summary(summary: Mapping[str, Any], width: int) -> list[str]:
    lines: list[str] = []
    counts: Mapping[str, int] = summary.get("counts") or {}
    totals: Mapping[str, Any] = summary.get("totals") or {}
    for kind in RECEIPT_TASK_ORDER:
        direction = RECEIPT_TITLES[kind.removesuffix("Correction")]
        title = f"КОРР. {direction}" if kind.endswith("Correction") else direction
        count = counts.get(kind, 0)
        if count or not kind.endswith("Correction"):
            lines += _pair(f"{title} ({count})", f"={_money(totals.get(kind, 0))}", width)
    lines += _pair("НАЛИЧНЫХ В КАССЕ", f"={_money(summary.get('cashSum', 0))}", width)
    return lines


def _fiscal_block(params: Mapping[str, Any], width: int) -> list[str]:
    sign = str(params.get("fiscalDocumentSign", ""))
    lines = _pair("ФН", str(params.get("fnNumber", "")), width)
    lines += _pair("ФД", str(params.get("fiscalDocumentNumber", "")), width)
    lines += _pair("ФП", sign.zfill(10) if sign.isdigit() else sign, width)
    lines += _pair("РН ККТ", str(params.get("registrationNumber", "")), width)
    lines += _pair("СМЕНА", str(params.get("shiftNumber", "")), width)
    lines += _wrap(_printed_time(params.get("fiscalDocumentDateTime")), width)
    return lines


def _company(task: Mapping[str, Any], width: int) -> list[str]:
    lines: list[str] = []
    company = task.get("companyInfo") or {}
    for key, label in (("name", ""), ("vatin", "ИНН "), ("email", "")):
        if company.get(key):
            lines += _center(f"{label}{company[key]}", width)
    for key in ("paymentsPlace", "paymentsAddress"):
        if task.get(key):
            lines += _center(str(task[key]), width)
    return lines


def _operator(operator: Any, width: int) -> list[str]:
    if not isinstance(operator, Mapping) or not operator.get("name"):
        return []
    lines = _wrap(f"КАССИР {operator['name']}", width)
    if operator.get("vatin"):
        lines += _pair("ИНН КАССИРА", str(operator["vatin"]), width)
    return lines


def _demo_banner(width: int) -> list[str]:
    return ["*" * width, *_center(DEMO_MARK, width), "*" * width]


def _center(text: str, width: int) -> list[str]:
    return [line.center(width).rstrip() for line in _wrap(text, width)]


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=True, replace_whitespace=True) or [""]


def _pair(left: str, right: str, width: int) -> list[str]:
    """``left`` and ``right`` on one line, right-aligned; wrapped when they do not fit."""
    if len(left) + 1 + len(right) <= width:
        return [left + " " * (width - len(left) - len(right)) + right]
    return [*_wrap(left, width), *(line.rjust(width) for line in _wrap(right, width))]


def _money(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0)).quantize(_CENT)


def _qty(item: Mapping[str, Any]) -> Decimal:
    quantity = Decimal(str(item.get("quantity", 1)))
    return quantity.to_integral_value() if quantity == quantity.to_integral_value() else quantity


def _printed_time(stamp: Any) -> str:
    if not stamp:
        return ""
    return datetime.fromisoformat(str(stamp)).strftime("%d.%m.%y %H:%M")
