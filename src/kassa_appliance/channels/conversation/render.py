"""What a chat receives when its receipt is final (the b24chat and maxchat senders send it).

:func:`render_outcome` gives the text (the receipt summary with its fiscal data, or the
refusal in plain Russian with what to change), the QR code as a PNG image of exactly the
QR string the register returned, and the link to the FNS receipt check.

The PNG is written here (zlib, 8-bit grey) from the ``qrcode`` package's module matrix, so
no imaging library is needed on the appliance.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import qrcode
from qrcode.constants import ERROR_CORRECT_M

from kassa_appliance.channels.conversation.positions import format_money
from kassa_appliance.channels.conversation.refusals import explain_refusal
from kassa_appliance.channels.delivery.protocol import Outcome
from kassa_appliance.fiscal_qr import parse_qr_string, qr_string

__all__ = ["FNS_CHECK_URL", "RenderedReply", "check_url_for", "qr_png", "render_outcome"]

FNS_CHECK_URL = "https://kkt-online.nalog.ru/"
"""The FNS service "Проверка чека" (the same check the FNS app does from the QR code)."""
MODULE_PIXELS = 8
QUIET_MODULES = 4


@dataclass(frozen=True, slots=True)
class RenderedReply:
    text: str
    png: bytes | None
    """The receipt's QR code; None for a refusal."""
    check_url: str | None


def qr_png(data: str, *, module_pixels: int = MODULE_PIXELS) -> bytes:
    """A PNG image (8-bit grey, black on white, 4-module quiet zone) of the QR code of
    ``data``, exactly as given."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=QUIET_MODULES)
    code.add_data(data, optimize=0)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    rows = bytearray()
    for modules in matrix:
        line = bytearray(b"\x00")  # PNG filter type 0 for this scanline
        for dark in modules:
            line += (b"\x00" if dark else b"\xff") * module_pixels
        rows += bytes(line) * module_pixels
    side = len(matrix) * module_pixels

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def check_url_for(qr: str) -> str | None:
    """The FNS check link with the receipt's requisites in the check form's own field
    names (date, time, operation type, sum, FN, FD, FP); None for an unreadable QR."""
    try:
        parsed = parse_qr_string(qr)
    except ValueError:
        return None
    query = urlencode(
        {
            "date": parsed["date_time"].strftime("%d.%m.%Y"),
            "time": parsed["date_time"].strftime("%H:%M"),
            "operationtype": parsed["operation"],
            "summ": str(parsed["total"]),
            "fn": parsed["fn_number"],
            "fd": parsed["fiscal_document_number"],
            "fp": parsed["fiscal_sign"],
        }
    )
    return f"{FNS_CHECK_URL}?{query}"


def _params(result: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not result:
        return {}
    inner = result.get("fiscalParams")
    return inner if isinstance(inner, Mapping) else result


def _task_type(task: Any) -> str:
    kind = task.get("type") if isinstance(task, Mapping) else None
    return kind if isinstance(kind, str) else "sell"


def _money(value: Any) -> str | None:
    try:
        return format_money(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _moment(value: Any) -> str | None:
    try:
        return datetime.fromisoformat(str(value)).strftime("%d.%m.%Y %H:%M")
    except ValueError:
        return None


def render_outcome(outcome: Outcome) -> RenderedReply:
    kind = _task_type(outcome.task)
    what = "Возврат прихода" if kind == "sellReturn" else "Чек"
    kassa = f" на кассе «{outcome.kassa}»" if outcome.kassa else ""
    if outcome.state != "done":
        total = _money(outcome.task.get("total")) if isinstance(outcome.task, Mapping) else None
        on = f" на {total}" if total else ""
        if outcome.state == "cancelled" and not outcome.error_code:
            reason = explain_refusal("cancelled", None)
        else:
            reason = explain_refusal(outcome.error_code, outcome.error_message)
        text = f"❌ {what}{on} не пробит{kassa}: {reason}."
        return RenderedReply(text, None, None)
    params = _params(outcome.result)
    qr = outcome.qr
    if not qr:
        try:
            qr = qr_string(params, kind)
        except (ValueError, TypeError):
            qr = None
    lines = [f"✅ {what} пробит{kassa}."]
    total = _money(params.get("total"))
    if total:
        lines.append(f"Итого: {total}")
    if params.get("fiscalDocumentNumber") is not None:
        sign = params.get("fiscalDocumentSign")
        lines.append(
            f"ФД № {params['fiscalDocumentNumber']}" + (f", ФП {sign}" if sign is not None else "")
        )
    if params.get("fnNumber"):
        lines.append(f"ФН {params['fnNumber']}")
    moment = _moment(params.get("fiscalDocumentDateTime"))
    if moment:
        lines.append(moment)
    if params.get("fiscalReceiptNumber") is not None:
        shift = params.get("shiftNumber")
        lines.append(
            f"Чек № {params['fiscalReceiptNumber']}" + (f", смена {shift}" if shift else "")
        )
    url = check_url_for(qr) if qr else None
    if url:
        lines.append(f"Проверить чек на сайте ФНС: {url}")
    if qr:
        lines.append(
            "Покажите покупателю QR-код: он проверит чек в приложении ФНС «Проверка чеков»."
        )
    png = qr_png(qr) if qr else None
    return RenderedReply("\n".join(lines), png, url)
