"""One chat's conversation as data: its state, the receipt being composed, and how it is
kept in the store (plain JSON, so a restart continues where it was)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from kassa_appliance.channels.conversation.positions import ReadPosition

__all__ = ["Conversation", "Draft", "Kind", "Payment", "State"]

_ZERO = Decimal("0.00")


class State(StrEnum):
    IDLE = "idle"
    """No draft (the start, after a cancel, after a receipt went to the kassa)."""
    COMPOSING = "composing"
    PAYMENT = "payment"
    CONTACT = "contact"
    PLACE = "place"
    KASSA = "kassa"
    PREVIEW = "preview"
    EDIT = "edit"
    REPLACE = "replace"
    """Waiting for the line that replaces position :attr:`Conversation.replace_index`."""
    RETURN_PICK = "return-pick"
    PRINTING = "printing"
    """[Пробить] pressed: the job is being created (store.jobs has it)."""


Payment = Literal["cash", "card"]
Kind = Literal["sell", "sellReturn"]


@dataclass
class Draft:
    positions: list[ReadPosition] = field(default_factory=list)
    kind: Kind = "sell"
    payment: Payment | None = None
    contact: str | None = None
    contact_done: bool = False
    place: str | None = None
    place_done: bool = False
    kassa: str | None = None
    return_of: str | None = None
    """The job id of the receipt a sellReturn returns."""

    @property
    def total(self) -> Decimal:
        return sum((p.amount for p in self.positions), _ZERO)

    def to_json(self) -> dict[str, Any]:
        return {
            "positions": [[p.name, str(p.quantity), str(p.price), p.unit] for p in self.positions],
            "kind": self.kind,
            "payment": self.payment,
            "contact": self.contact,
            "contact_done": self.contact_done,
            "place": self.place,
            "place_done": self.place_done,
            "kassa": self.kassa,
            "return_of": self.return_of,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Draft:
        return cls(
            positions=[
                ReadPosition(str(n), Decimal(q), Decimal(p), str(u))
                for n, q, p, u in data.get("positions", [])
            ],
            kind="sellReturn" if data.get("kind") == "sellReturn" else "sell",
            payment=data.get("payment") if data.get("payment") in ("cash", "card") else None,
            contact=data.get("contact"),
            contact_done=bool(data.get("contact_done")),
            place=data.get("place"),
            place_done=bool(data.get("place_done")),
            kassa=data.get("kassa"),
            return_of=data.get("return_of"),
        )


@dataclass
class Conversation:
    state: State = State.IDLE
    draft: Draft = field(default_factory=Draft)
    revision: int = 0
    """Grows with every change of the draft; the preview's [Пробить] carries it, so a tap
    on an older preview never prints a receipt the person has not seen."""
    confirmed: bool = False
    """[Пробить] was pressed once on this draft: after an edit, go on with the questions."""
    replace_index: int | None = None
    printing_job: str | None = None
    """The job [Пробить] created last, and the revision it printed."""
    printed_revision: int | None = None
    printed_kassa: str | None = None
    choices: list[str] = field(default_factory=list)
    """The kassas the last kassa question offered (its buttons carry the index)."""
    return_choices: list[str] = field(default_factory=list)
    """The job ids the last return question offered."""

    def changed(self) -> None:
        self.revision += 1

    def reset(self) -> None:
        self.draft = Draft()
        self.confirmed = False
        self.replace_index = None
        self.state = State.IDLE
        self.changed()

    def dumps(self) -> str:
        return json.dumps(
            {
                "state": self.state.value,
                "draft": self.draft.to_json(),
                "revision": self.revision,
                "confirmed": self.confirmed,
                "replace_index": self.replace_index,
                "printing_job": self.printing_job,
                "printed_revision": self.printed_revision,
                "printed_kassa": self.printed_kassa,
                "choices": self.choices,
                "return_choices": self.return_choices,
            },
            ensure_ascii=False,
        )

    @classmethod
    def loads(cls, text: str) -> Conversation:
        data = json.loads(text)
        return cls(
            state=State(data.get("state", State.IDLE.value)),
            draft=Draft.from_json(data.get("draft") or {}),
            revision=int(data.get("revision", 0)),
            confirmed=bool(data.get("confirmed")),
            replace_index=data.get("replace_index"),
            printing_job=data.get("printing_job"),
            printed_revision=data.get("printed_revision"),
            printed_kassa=data.get("printed_kassa"),
            choices=[str(c) for c in data.get("choices") or []],
            return_choices=[str(c) for c in data.get("return_choices") or []],
        )
