"""How a draft is shown in the chat: its numbered lines and the preview before printing."""

from __future__ import annotations

from kassa_appliance.channels.conversation import texts
from kassa_appliance.channels.conversation.access import Cashier
from kassa_appliance.channels.conversation.draft import Draft
from kassa_appliance.channels.conversation.positions import format_money, format_position

__all__ = ["draft_lines", "preview_text"]


def draft_lines(draft: Draft) -> str:
    return "\n".join(
        texts.DRAFT_LINE.format(
            number=number, line=format_position(p), amount=format_money(p.amount)
        )
        for number, p in enumerate(draft.positions, 1)
    )


def preview_text(draft: Draft, cashier: Cashier) -> str:
    """Every position, the total and every answer, as the receipt will carry them."""
    payment = {"cash": texts.PAYMENT_CASH, "card": texts.PAYMENT_CARD}.get(draft.payment or "", "—")
    return texts.PREVIEW.format(
        kind=texts.PREVIEW_KIND_RETURN if draft.kind == "sellReturn" else "",
        lines=draft_lines(draft),
        total=format_money(draft.total),
        payment=payment,
        contact=draft.contact or texts.NO_CONTACT,
        place=draft.place or texts.NO_PLACE,
        kassa=draft.kassa or "—",
        cashier=cashier.name + (f", ИНН {cashier.inn}" if cashier.inn else ""),
    )
