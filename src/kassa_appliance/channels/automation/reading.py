"""Reading what the drained events point at, in as few REST requests as Bitrix24 allows.

An offline event carries ids only (``{"FIELDS": {"ID": "759"}}``), so the drain reads the
current state: for every deal in one ``batch`` (50 commands a request) the deal
(``crm.item.get``), its product rows (``crm.item.productrow.list``) and its automation jobs
in the outbox (``entity.item.get`` by NAME prefix, the ledger); then, only for the deals
that will print, the contact and company (``crm.item.get`` 3/4) in a second batch. A
payment event reads ``sale.payment.get`` and, for the paid ones, the order's owner deal
(``crm.orderentity.list``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.errors import NotFound
from kassa_appliance.bitrix.protocol import JOB_ENTITY
from kassa_appliance.bitrix.rest import BatchItem, RestClient
from kassa_appliance.channels.automation.ledger import deal_prefix, payment_prefix
from kassa_appliance.channels.automation.receipt_build import DealSnapshot

DEAL, CONTACT, COMPANY = 2, 3, 4


@dataclass
class DealRead:
    deal_id: int
    deal: Mapping[str, Any] | None
    """None: the deal is gone (deleted) or unreadable."""
    rows: list[Mapping[str, Any]] = field(default_factory=list)
    jobs: list[Mapping[str, Any]] = field(default_factory=list)
    """Its automation items in KASSAJOB."""

    def snapshot(
        self, parties: Mapping[tuple[int, int], Mapping[str, Any]] | None = None
    ) -> DealSnapshot:
        assert self.deal is not None
        parties = parties or {}
        contact_id = int(self.deal.get("contactId") or 0)
        company_id = int(self.deal.get("companyId") or 0)
        return DealSnapshot(
            self.deal,
            self.rows,
            parties.get((CONTACT, contact_id)),
            parties.get((COMPANY, company_id)),
        )


@dataclass(frozen=True)
class PaymentRead:
    payment_id: int
    payment: Mapping[str, Any] | None
    jobs: list[Mapping[str, Any]]
    deal_id: int | None = None


def _raise_unless_missing(item: BatchItem) -> bool:
    """True when the command found its object; False for NOT_FOUND; raises otherwise."""
    if item.error is None:
        return True
    if isinstance(item.error, NotFound):
        return False
    raise item.error


def _list(value: Any, key: str | None = None) -> list[Mapping[str, Any]]:
    if key is not None:
        value = value.get(key) if isinstance(value, Mapping) else None
    if isinstance(value, Mapping):
        value = list(value.values())
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


class CrmReader:
    def __init__(self, rest: RestClient) -> None:
        self._rest = rest

    async def _batch(self, commands: Sequence[tuple[str, Mapping[str, Any]]]) -> list[BatchItem]:
        if not commands:
            return []
        return await self._rest.batch(commands, priority=Priority.JOB)

    async def deals(self, deal_ids: Iterable[int], *, ledger: bool = True) -> dict[int, DealRead]:
        ids = list(dict.fromkeys(deal_ids))
        per_deal = 3 if ledger else 2
        commands: list[tuple[str, Mapping[str, Any]]] = []
        for deal_id in ids:
            commands.append(("crm.item.get", {"entityTypeId": DEAL, "id": deal_id}))
            commands.append(
                (
                    "crm.item.productrow.list",
                    {"filter": {"=ownerType": "D", "=ownerId": deal_id}},
                )
            )
            if ledger:
                commands.append(
                    (
                        "entity.item.get",
                        {"ENTITY": JOB_ENTITY, "FILTER": {"%NAME": deal_prefix(deal_id)}},
                    )
                )
        answers = await self._batch(commands)
        out: dict[int, DealRead] = {}
        for index, deal_id in enumerate(ids):
            chunk = answers[index * per_deal : (index + 1) * per_deal]
            deal_item, rows_item = chunk[0], chunk[1]
            if not _raise_unless_missing(deal_item):
                out[deal_id] = DealRead(deal_id, None)
                continue
            deal = deal_item.result.get("item") if isinstance(deal_item.result, Mapping) else None
            rows: list[Mapping[str, Any]] = []
            if _raise_unless_missing(rows_item):
                rows = _list(rows_item.result, "productRows")
                if rows_item.total is not None and rows_item.total > len(rows):
                    rows = await self._all_rows(deal_id)
            jobs = _list(chunk[2].result) if ledger and _raise_unless_missing(chunk[2]) else []
            out[deal_id] = DealRead(
                deal_id, deal if isinstance(deal, Mapping) else None, rows, jobs
            )
        return out

    async def _all_rows(self, deal_id: int) -> list[Mapping[str, Any]]:
        rows: list[Mapping[str, Any]] = []
        start = 0
        while True:
            page = await self._rest.call(
                "crm.item.productrow.list",
                {"filter": {"=ownerType": "D", "=ownerId": deal_id}, "start": start},
                priority=Priority.JOB,
            )
            rows.extend(_list(page.result, "productRows"))
            if page.next is None or page.next <= start:
                return rows
            start = page.next

    async def parties(
        self, deals: Iterable[Mapping[str, Any]]
    ) -> dict[tuple[int, int], Mapping[str, Any]]:
        """The contacts and companies of ``deals``, by (entity type, id)."""
        wanted: list[tuple[int, int]] = []
        for deal in deals:
            for entity_type, field_name in ((CONTACT, "contactId"), (COMPANY, "companyId")):
                party_id = int(deal.get(field_name) or 0)
                if party_id and (entity_type, party_id) not in wanted:
                    wanted.append((entity_type, party_id))
        answers = await self._batch(
            [("crm.item.get", {"entityTypeId": t, "id": i}) for t, i in wanted]
        )
        found: dict[tuple[int, int], Mapping[str, Any]] = {}
        for key, answer in zip(wanted, answers, strict=True):
            if _raise_unless_missing(answer) and isinstance(answer.result, Mapping):
                item = answer.result.get("item")
                if isinstance(item, Mapping):
                    found[key] = item
        return found

    async def payments(self, payment_ids: Iterable[int]) -> list[PaymentRead]:
        ids = list(dict.fromkeys(payment_ids))
        commands: list[tuple[str, Mapping[str, Any]]] = []
        for payment_id in ids:
            commands.append(("sale.payment.get", {"id": payment_id}))
            commands.append(
                (
                    "entity.item.get",
                    {"ENTITY": JOB_ENTITY, "FILTER": {"%NAME": payment_prefix(payment_id)}},
                )
            )
        answers = await self._batch(commands)
        reads: list[PaymentRead] = []
        for index, payment_id in enumerate(ids):
            got, ledger = answers[2 * index], answers[2 * index + 1]
            payment = None
            if _raise_unless_missing(got) and isinstance(got.result, Mapping):
                raw = got.result.get("payment")
                payment = raw if isinstance(raw, Mapping) else None
            jobs = _list(ledger.result) if _raise_unless_missing(ledger) else []
            reads.append(PaymentRead(payment_id, payment, jobs))
        orders = sorted(
            {int(r.payment.get("orderId") or 0) for r in reads if r.payment is not None} - {0}
        )
        owners = await self._batch(
            [("crm.orderentity.list", {"filter": {"=orderId": order}}) for order in orders]
        )
        deal_of: dict[int, int] = {}
        for order, answer in zip(orders, owners, strict=True):
            if not _raise_unless_missing(answer):
                continue
            for link in _list(answer.result, "orderEntity"):
                if int(link.get("ownerTypeId") or 0) == DEAL:
                    deal_of[order] = int(link.get("ownerId") or 0)
        return [
            PaymentRead(
                r.payment_id,
                r.payment,
                r.jobs,
                deal_of.get(int(r.payment.get("orderId") or 0)) if r.payment else None,
            )
            for r in reads
        ]
