"""The emulated CRM's data: pipelines (categories) and stages, deals, product rows, contacts
and companies with their e-mail/phone multifields, timeline comments, deal user fields,
orders and payments — plus the test controls that act as a portal user would (move a deal
to a stage, mark a payment paid), raising the same events a user's action raises.

Field names and derived values follow b24restdocs ``crm/universal/`` (``crm.item.*``,
``product-rows``), ``crm/data-types.md#crm_item_product_row`` (``price`` is the final unit
price with discount and tax; ``priceExclusive`` after discount without tax; ``priceNetto``
without both; ``priceBrutto`` without discount with tax) and ``crm/status/`` (stage ids
``WON`` in the default pipeline, ``C<n>:WON`` in pipeline ``n``; semantics ``S``/``F``/``P``).
Memory only: the CRM is not written to the emulator's state file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_crm_rows import ProductRow, money, number, product_row
from kassa_appliance.testbeds.bitrix24.rest_events import OfflineEvents
from kassa_appliance.testbeds.bitrix24.state import ADMIN_USER_ID, iso

DEAL, CONTACT, COMPANY = 2, 3, 4
DEFAULT_STAGES = (
    ("NEW", "New", "P"),
    ("PREPARATION", "Preparation", "P"),
    ("EXECUTING", "In progress", "P"),
    ("WON", "Deal won", "S"),
    ("LOSE", "Deal lost", "F"),
)


@dataclass
class Stage:
    status_id: str
    name: str
    semantics: str
    category_id: int
    sort: int


@dataclass
class Multifield:
    id: int
    type_id: str
    value: str
    value_type: str = "WORK"


@dataclass
class Party:
    """A contact (3) or company (4)."""

    id: int
    entity_type_id: int
    name: str
    fm: list[Multifield] = field(default_factory=list)


@dataclass
class Deal:
    id: int
    title: str
    category_id: int
    stage_id: str
    currency_id: str
    assigned_by_id: int
    contact_ids: list[int]
    company_id: int
    created: float
    moved_time: float
    moved_by: int
    updated_by: int
    manual_opportunity: Decimal | None = None
    uf: dict[str, Any] = field(default_factory=dict)


@dataclass
class Comment:
    id: int
    entity_type: str
    entity_id: int
    author_id: int
    created: float
    text: str


@dataclass
class UserField:
    id: int
    field_name: str
    user_type_id: str
    label: str


@dataclass
class Payment:
    id: int
    order_id: int
    deal_id: int
    sum: Decimal
    currency: str
    paid: str = "N"
    date_paid: float | None = None
    emp_paid_id: int | None = None
    is_return: str = "N"
    pay_system_id: int = 1
    pay_system_name: str = "Cash"


class CrmPortal:
    """The CRM of the emulated portal; raises events into :class:`OfflineEvents`."""

    def __init__(self, events: OfflineEvents, clock: Any = time.time) -> None:
        self.events = events
        self.clock = clock
        self.categories: dict[int, str] = {0: "General"}
        self.stages: dict[str, Stage] = {}
        for sort, (status, name, semantics) in enumerate(DEFAULT_STAGES):
            self.stages[status] = Stage(status, name, semantics, 0, (sort + 1) * 10)
        self.deals: dict[int, Deal] = {}
        self.parties: dict[int, Party] = {}
        self.rows: dict[int, list[ProductRow]] = {}
        self.comments: dict[int, Comment] = {}
        self.user_fields: dict[str, UserField] = {}
        self.payments: dict[int, Payment] = {}
        self._ids: dict[str, int] = {}

    def next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    # -- test controls (what a portal user does) ------------------------------------------

    def add_category(self, name: str, stages: list[tuple[str, str, str]]) -> int:
        """A pipeline with its stages ``(code, name, semantics)``; ids ``C<n>:<code>``."""
        category_id = max(self.categories) + 1
        self.categories[category_id] = name
        for sort, (code, title, semantics) in enumerate(stages):
            status = f"C{category_id}:{code}"
            self.stages[status] = Stage(status, title, semantics, category_id, (sort + 1) * 10)
        return category_id

    def add_party(self, entity_type_id: int, name: str, **multifields: str) -> int:
        """A contact or company; ``email=…``, ``phone=…`` become its multifields."""
        party = Party(self.next_id(f"party{entity_type_id}"), entity_type_id, name)
        for kind, value in multifields.items():
            party.fm.append(Multifield(self.next_id("fm"), kind.upper(), value))
        self.parties[party.id * 10 + entity_type_id] = party
        return party.id

    def party(self, entity_type_id: int, party_id: int) -> Party | None:
        return self.parties.get(party_id * 10 + entity_type_id)

    def add_deal(
        self,
        title: str,
        rows: list[dict[str, Any]],
        *,
        category_id: int = 0,
        stage_id: str | None = None,
        contact_id: int = 0,
        company_id: int = 0,
        currency_id: str = "RUB",
        assigned_by_id: int = ADMIN_USER_ID,
        opportunity: Decimal | None = None,
        user_id: int = ADMIN_USER_ID,
    ) -> int:
        stage = stage_id or next(
            s.status_id for s in self.stages.values() if s.category_id == category_id
        )
        now = self.clock()
        deal = Deal(
            self.next_id("deal"),
            title,
            category_id,
            stage,
            currency_id,
            assigned_by_id,
            [contact_id] if contact_id else [],
            company_id,
            now,
            now,
            user_id,
            user_id,
            opportunity,
        )
        self.deals[deal.id] = deal
        self.set_rows(deal.id, rows, raise_event=False)
        self.events.raise_event("ONCRMDEALADD", {"FIELDS": {"ID": deal.id}}, user_id=user_id)
        return deal.id

    def set_rows(
        self,
        deal_id: int,
        rows: list[dict[str, Any]],
        *,
        raise_event: bool = True,
        user_id: int = ADMIN_USER_ID,
        connector: str | None = None,
    ) -> list[ProductRow]:
        made = [
            product_row(self.next_id("row"), deal_id, row, sort=(i + 1) * 10)
            for i, row in enumerate(rows)
        ]
        self.rows[deal_id] = made
        if raise_event:
            self.deal_changed(deal_id, user_id, connector)
        return made

    def opportunity(self, deal: Deal) -> Decimal:
        if deal.manual_opportunity is not None:
            return deal.manual_opportunity
        return money(sum((r.price * r.quantity for r in self.rows.get(deal.id, [])), Decimal(0)))

    def move_deal(
        self,
        deal_id: int,
        stage_id: str,
        *,
        user_id: int = ADMIN_USER_ID,
        connector: str | None = None,
    ) -> None:
        """A user drags the deal to ``stage_id`` (one ``ONCRMDEALUPDATE``)."""
        deal = self.deals[deal_id]
        if stage_id not in self.stages:
            raise ValueError(f"no stage {stage_id}")
        if deal.stage_id != stage_id:
            deal.stage_id = stage_id
            deal.category_id = self.stages[stage_id].category_id
            deal.moved_time = self.clock()
            deal.moved_by = user_id
        self.deal_changed(deal_id, user_id, connector)

    def deal_changed(self, deal_id: int, user_id: int, connector: str | None) -> None:
        self.deals[deal_id].updated_by = user_id
        self.events.raise_event(
            "ONCRMDEALUPDATE",
            {"FIELDS": {"ID": deal_id}},
            user_id=user_id,
            auth_connector=connector,
        )

    def add_payment(self, deal_id: int, amount: Decimal, *, currency: str = "RUB") -> int:
        payment_id = self.next_id("payment")
        self.payments[payment_id] = Payment(
            payment_id, 1000 + deal_id, deal_id, money(amount), currency
        )
        self.payment_saved(payment_id, ADMIN_USER_ID, None)
        return payment_id

    def pay(
        self, payment_id: int, *, user_id: int = ADMIN_USER_ID, connector: str | None = None
    ) -> None:
        """A manager marks the payment paid (``crm.item.payment.pay``)."""
        payment = self.payments[payment_id]
        payment.paid = "Y"
        payment.date_paid = self.clock()
        payment.emp_paid_id = user_id
        self.payment_saved(payment_id, user_id, connector)

    def payment_saved(self, payment_id: int, user_id: int, connector: str | None) -> None:
        self.events.raise_event(
            "ONPAYMENTENTITYSAVED",
            {"FIELDS": {"ID": payment_id}},
            user_id=user_id,
            auth_connector=connector,
        )

    # -- JSON shapes ----------------------------------------------------------------------

    def deal_json(self, deal: Deal, *, original_uf_names: bool) -> dict[str, Any]:
        stage = self.stages.get(deal.stage_id)
        data: dict[str, Any] = {
            "id": deal.id,
            "title": deal.title,
            "categoryId": deal.category_id,
            "stageId": deal.stage_id,
            "stageSemanticId": stage.semantics if stage else "P",
            "opportunity": number(self.opportunity(deal)),
            "isManualOpportunity": "Y" if deal.manual_opportunity is not None else "N",
            "currencyId": deal.currency_id,
            "assignedById": deal.assigned_by_id,
            "contactId": deal.contact_ids[0] if deal.contact_ids else 0,
            "contactIds": list(deal.contact_ids),
            "companyId": deal.company_id,
            "createdTime": iso(deal.created),
            "movedTime": iso(deal.moved_time),
            "movedBy": deal.moved_by,
            "updatedBy": deal.updated_by,
            "entityTypeId": DEAL,
        }
        for name in self.user_fields:
            value = deal.uf.get(name)
            data[name if original_uf_names else camel_uf(name)] = value
        return data

    def party_json(self, party: Party) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": party.id,
            "entityTypeId": party.entity_type_id,
            "fm": [
                {"id": f.id, "valueType": f.value_type, "value": f.value, "typeId": f.type_id}
                for f in party.fm
            ],
        }
        data["title" if party.entity_type_id == COMPANY else "name"] = party.name
        for kind in ("EMAIL", "PHONE"):
            first = next((f.value for f in party.fm if f.type_id == kind), "")
            data[kind.lower()] = first
            data[f"has{kind.title()}"] = "Y" if first else "N"
        return data


def camel_uf(name: str) -> str:
    """``UF_CRM_KASSA_FD`` → ``ufCrmKassaFd``; ``UF_CRM_1_1639669411830`` →
    ``ufCrm1_1639669411830`` (crm-item-update.md ``useOriginalUfNames``)."""
    rest = name.removeprefix("UF_CRM_")
    parts = rest.split("_")
    out = "ufCrm"
    for i, part in enumerate(parts):
        if part.isdigit():
            out += ("_" if i else "") + part
        else:
            out += part.title()
    return out
