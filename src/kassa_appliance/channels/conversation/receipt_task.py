"""The Atol JSON ``sell``/``sellReturn`` task a chat's draft becomes.

Settlement away from the kassa (the technician at the customer's, the register in the
office; 54-FZ art. 1.2 p. 5.6, docs/chat-bots.md):

* ``operator`` — the cashier of the allow-list entry: position and surname of the person
  who takes the money (tag 1021) and that person's INN (tag 1203);
* ``paymentsPlace`` (tag 1187, place of settlement) — the address where the money is
  taken, as the technician wrote it (or the configured default);
* ``paymentsAddress`` (tag 1009, address of settlement) — left out by default, so the
  register writes the address it was registered with; the setting overrides it;
* ``clientInfo.emailOrPhone`` (tag 1008) with ``electronically: true`` when the buyer gave
  a contact: the OFD sends the electronic receipt and nothing is printed at the office;
  without a contact the office prints the paper copy and the buyer scans the QR code the
  bot shows on the technician's phone.

The task is checked by the fiscal core's own :func:`parse_task` and returned in the
driver's normalised form (:func:`to_driver_json`), so what reaches KASSAJOB is exactly
what every kassa takes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kassa_appliance.channels.conversation.access import Cashier
from kassa_appliance.channels.conversation.draft import Draft
from kassa_appliance.channels.conversation.settings import ConversationSettings
from kassa_appliance.fiscal.receipt import TaskValidationError, parse_task, to_driver_json

__all__ = ["TaskNotPrintable", "build_task"]

PAYMENT_TYPES = {"cash": "cash", "card": "electronically"}
"""The chat's payment choice → Atol ``payments[].type`` (tag 1031 / 1081)."""


class TaskNotPrintable(ValueError):
    """The fiscal core refused the task built from the draft (the reason is its message)."""


def build_task(draft: Draft, cashier: Cashier, settings: ConversationSettings) -> dict[str, Any]:
    if draft.payment is None:
        raise TaskNotPrintable("не выбрана оплата")
    items: list[dict[str, Any]] = [
        {
            "type": "position",
            "name": position.name,
            "price": position.price,
            "quantity": position.quantity,
            "amount": position.amount,
            "measurementUnit": position.unit,
            "paymentMethod": "fullPayment",
            "paymentObject": settings.payment_object,
            "tax": {"type": settings.vat},
        }
        for position in draft.positions
    ]
    total: Decimal = draft.total
    operator: dict[str, Any] = {"name": cashier.name}
    if cashier.inn:
        operator["vatin"] = cashier.inn
    task: dict[str, Any] = {
        "type": draft.kind,
        "operator": operator,
        "items": items,
        "payments": [{"type": PAYMENT_TYPES[draft.payment], "sum": total}],
        "total": total,
    }
    if settings.taxation_type:
        task["taxationType"] = settings.taxation_type
    if draft.contact:
        task["electronically"] = True
        task["clientInfo"] = {"emailOrPhone": draft.contact}
    if draft.place:
        task["paymentsPlace"] = draft.place
    if settings.payments_address:
        task["paymentsAddress"] = settings.payments_address
    try:
        parsed = parse_task(task)
    except TaskValidationError as error:
        raise TaskNotPrintable("; ".join(error.problems)) from None
    return to_driver_json(parsed)
