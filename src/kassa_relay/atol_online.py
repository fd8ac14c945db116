"""ATOL Online API v5 → Atol JSON tasks, and the report answers back.

Shapes per ``shared/reference/peers-notes.md`` §1.4 (and the public client libraries named
there). Where the service's behaviour is not documented we chose (docs/relay.md):

* ``external_id`` is the idempotency key per (tenant, group code): the same id again returns
  the same ``uuid`` with ``status: wait`` and no error, whatever the body (the real service
  answers an error carrying the existing uuid; the clients we looked at read the uuid from
  both);
* the group code is the kassa id;
* error codes: 1 bad JSON/fields, 4 unknown group, 12 wrong login or password, 11 token
  missing/expired, 34 not found, 30 temporarily unavailable; ``type`` is ``system`` for the
  transport, ``driver`` for the register's refusal.
"""

from __future__ import annotations

import base64
import binascii
import time
from datetime import UTC, datetime
from typing import Any

from kassa_appliance.inputs import shorten

OPERATIONS = {
    "sell": "sell",
    "sell_refund": "sellReturn",
    "buy": "buy",
    "buy_refund": "buyReturn",
    "sell_correction": "sellCorrection",
    "sell_refund_correction": "sellReturnCorrection",
    "buy_correction": "buyCorrection",
    "buy_refund_correction": "buyReturnCorrection",
}
SNO = {
    "osn": "osn",
    "usn_income": "usnIncome",
    "usn_income_outcome": "usnIncomeOutcome",
    "esn": "esn",
    "patent": "patent",
}
PAYMENT_METHODS = {
    "full_prepayment": "fullPrepayment",
    "prepayment": "prepayment",
    "advance": "advance",
    "full_payment": "fullPayment",
    "partial_payment": "partialPayment",
    "credit": "credit",
    "credit_payment": "creditPayment",
}
PAYMENT_OBJECTS_V4 = {
    "commodity": "commodity",
    "excise": "excise",
    "job": "job",
    "service": "service",
    "payment": "payment",
    "another": "another",
    "composite": "composite",
    "agent_commission": "agentCommission",
}
MAX_ITEMS = 100


class ReceiptRejected(ValueError):
    """A field of the ATOL Online request is wrong (error code 1)."""


def atol_timestamp(at: float | None = None) -> str:
    return datetime.fromtimestamp(at if at is not None else time.time(), UTC).strftime(
        "%d.%m.%Y %H:%M:%S"
    )


def _get(node: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    value = node.get(key)
    if value is None:
        raise ReceiptRejected(f"{where}.{key}: missing")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ReceiptRejected(f"{where}.{key}: wrong type")
    return value


def _number(node: dict[str, Any], key: str, where: str) -> float | int:
    value = _get(node, key, where, (int, float))
    if value < 0 or value > 9_999_999_999.99:
        raise ReceiptRejected(f"{where}.{key}: {value} is out of range")
    return value  # type: ignore[no-any-return]


def _choice(value: Any, table: dict[str, str] | set[str], where: str) -> str:
    if not isinstance(value, str) or value not in table:
        raise ReceiptRejected(f"{where}: {shorten(str(value), 30)} unknown")
    return table[value] if isinstance(table, dict) else value


def _mark(item: dict[str, Any], where: str) -> dict[str, Any]:
    mark = item.get("mark_code")
    if not isinstance(mark, dict) or not mark:
        return {}
    kind, value = next(iter(mark.items()))
    if not isinstance(value, str) or not value:
        raise ReceiptRejected(f"{where}.mark_code.{shorten(str(kind), 20)}: expected text")
    try:
        base64.b64decode(value, validate=True)
        imc = value
    except (binascii.Error, ValueError):
        imc = base64.b64encode(value.encode("utf-8")).decode("ascii")
    mode = item.get("mark_processing_mode", "0")
    return {
        "imcParams": {
            "imcType": "auto",
            "imc": imc,
            "itemEstimatedStatus": "itemPieceSold",
            "imcModeProcessing": int(mode) if str(mode).isdigit() else 0,
        }
    }


def _position(item: Any, index: int, refund: bool) -> dict[str, Any]:
    where = f"items[{index}]"
    if not isinstance(item, dict):
        raise ReceiptRejected(f"{where}: expected an object")
    vat = _get(item, "vat", where, dict)
    position: dict[str, Any] = {
        "type": "position",
        "name": _get(item, "name", where, str),
        "price": _number(item, "price", where),
        "quantity": _number(item, "quantity", where),
        "amount": _number(item, "sum", where),
        "tax": {"type": _get(vat, "type", f"{where}.vat", str)},
    }
    if isinstance(vat.get("sum"), int | float):
        position["tax"]["sum"] = vat["sum"]
    method = item.get("payment_method")
    if method is not None:
        position["paymentMethod"] = _choice(method, PAYMENT_METHODS, f"{where}.payment_method")
    kind = item.get("payment_object")
    if isinstance(kind, int) and not isinstance(kind, bool):
        position["paymentObject"] = kind
    elif isinstance(kind, str):
        position["paymentObject"] = _choice(kind, PAYMENT_OBJECTS_V4, f"{where}.payment_object")
    measure = item.get("measure")
    if isinstance(measure, int) and not isinstance(measure, bool):
        position["measurementUnit"] = measure
    marking = _mark(item, where)
    if marking and refund:
        marking["imcParams"]["itemEstimatedStatus"] = "itemPieceReturn"
    position.update(marking)
    return position


def request_to_task(operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """The Atol task for one ATOL Online operation request (raises ReceiptRejected)."""
    task_type = OPERATIONS[operation]
    correction = task_type.endswith("Correction")
    section = "correction" if correction and "correction" in body else "receipt"
    receipt = _get(body, section, "", dict)
    refund = "Return" in task_type
    task: dict[str, Any] = {"type": task_type}
    company = receipt.get("company")
    if isinstance(company, dict):
        sno = company.get("sno")
        if sno is not None:
            task["taxationType"] = _choice(sno, SNO, f"{section}.company.sno")
        if isinstance(company.get("payment_address"), str):
            task["paymentsAddress"] = company["payment_address"]
    client = receipt.get("client")
    if isinstance(client, dict):
        contact = client.get("email") or client.get("phone")
        if isinstance(contact, str) and contact:
            task["clientInfo"] = {"emailOrPhone": contact}
    items = receipt.get("items")
    if items is not None:
        if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
            raise ReceiptRejected(f"{section}.items: expected 1 to {MAX_ITEMS} items")
        task["items"] = [_position(item, i, refund) for i, item in enumerate(items)]
    elif not correction:
        raise ReceiptRejected(f"{section}.items: missing")
    payments = _get(receipt, "payments", section, list)
    if not payments or len(payments) > 10:
        raise ReceiptRejected(f"{section}.payments: expected 1 to 10 payments")
    task["payments"] = []
    for index, payment in enumerate(payments):
        where = f"{section}.payments[{index}]"
        if not isinstance(payment, dict):
            raise ReceiptRejected(f"{where}: expected an object")
        ptype = _get(payment, "type", where, int)
        if not 0 <= ptype <= 9:
            raise ReceiptRejected(f"{where}.type: expected 0 to 9")
        task["payments"].append({"type": ptype, "sum": _number(payment, "sum", where)})
    if "total" in receipt:
        task["total"] = _number(receipt, "total", section)
    if isinstance(receipt.get("cashier"), str) and receipt["cashier"]:
        task["operator"] = {"name": receipt["cashier"]}
    if correction:
        info = _get(receipt, "correction_info", section, dict)
        task["correctionType"] = _choice(
            info.get("type", "self"), {"self", "instruction"}, f"{section}.correction_info.type"
        )
        date = _get(info, "base_date", f"{section}.correction_info", str)
        parts = date.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ReceiptRejected(f"{section}.correction_info.base_date: expected dd.mm.yyyy")
        task["correctionBaseDate"] = f"{parts[2]}.{parts[1]}.{parts[0]}"
        if isinstance(info.get("base_number"), str):
            task["correctionBaseNumber"] = info["base_number"]
    return task


def report_payload(record: dict[str, Any]) -> dict[str, Any] | None:
    params = record.get("fiscalParams")
    if not isinstance(params, dict):
        return None
    return {
        "total": params.get("total"),
        "fns_site": params.get("fnsUrl", "www.nalog.gov.ru"),
        "fn_number": str(params.get("fnNumber", "")),
        "shift_number": params.get("shiftNumber"),
        "receipt_datetime": str(params.get("fiscalDocumentDateTime", "")),
        "fiscal_receipt_number": params.get("fiscalReceiptNumber"),
        "fiscal_document_number": params.get("fiscalDocumentNumber"),
        "ecr_registration_number": str(params.get("registrationNumber", "")),
        "fiscal_document_attribute": params.get("fiscalDocumentSign"),
    }


def error_body(code: int, text: str, kind: str = "system") -> dict[str, Any]:
    return {"error_id": f"kassa-relay-{code}", "code": code, "text": text, "type": kind}


def report(
    uuid: str, record: dict[str, Any] | None, *, group_code: str, external_id: str | None
) -> dict[str, Any]:
    status = "wait"
    error: dict[str, Any] | None = None
    payload = None
    if record is not None and record.get("status") == "done":
        status = "done"
        payload = report_payload(record)
    elif record is not None and record.get("status") == "error":
        status = "fail"
        error = error_body(2, str(record.get("error") or "the register refused it"), "driver")
    return {
        "uuid": uuid,
        "error": error,
        "status": status,
        "payload": payload,
        "timestamp": atol_timestamp(),
        "group_code": group_code,
        "daemon_code": "kassa-relay",
        "device_code": group_code,
        "external_id": external_id or (record or {}).get("external_id"),
        "callback_url": (record or {}).get("callback_url", ""),
    }
