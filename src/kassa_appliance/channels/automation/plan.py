"""From a page of offline events to the jobs they mean (none, most of the time).

``ONCRMDEALADD``/``ONCRMDEALUPDATE`` → the deal now: in a rule's stage (sell) or return
stage (return), and the ledger (:mod:`.ledger`) says this stage entry has no receipt yet →
a job. ``ONPAYMENTENTITYSAVED`` → the payment now: paid, not a return, of a deal (in the
rule's pipeline, if it names one), and no job for it yet → a job. Each deal and payment is
looked at once per page, however many of its events the page holds. The receipt itself is
built by :mod:`.receipt_build`; a refusal becomes a job too (answered ``failed``), so the
reason reaches the deal's timeline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kassa_appliance.channels.automation.ledger import (
    Operation,
    deal_ledger,
    next_deal_job,
    payment_job_id,
)
from kassa_appliance.channels.automation.outbox import PlannedJob
from kassa_appliance.channels.automation.reading import CrmReader, DealRead
from kassa_appliance.channels.automation.receipt_build import (
    DealSnapshot,
    ReceiptRefused,
    build_task,
    decimal,
)
from kassa_appliance.channels.automation.rules import (
    DealStageTrigger,
    PaymentTrigger,
    Rule,
    RuleSet,
)

log = logging.getLogger(__name__)

DEAL_EVENTS = frozenset({"ONCRMDEALADD", "ONCRMDEALUPDATE"})
PAYMENT_EVENTS = frozenset({"ONPAYMENTENTITYSAVED"})


def event_ids(events: Iterable[Mapping[str, Any]], names: frozenset[str]) -> list[int]:
    ids: list[int] = []
    for event in events:
        if str(event.get("EVENT_NAME") or "").upper() not in names:
            continue
        data = event.get("EVENT_DATA")
        fields = data.get("FIELDS") if isinstance(data, Mapping) else None
        raw = fields.get("ID") if isinstance(fields, Mapping) else None
        if str(raw or "").isdigit() and int(str(raw)) not in ids:
            ids.append(int(str(raw)))
    return ids


@dataclass(frozen=True)
class _Wanted:
    rule: Rule
    operation: Operation
    job_id: str
    read: DealRead
    amount: Decimal | None = None
    """The payment's sum (payment trigger); None: the deal's amount."""
    currency: str | None = None
    payment_id: int | None = None


def target_of(wanted: _Wanted) -> dict[str, Any]:
    deal = wanted.read.deal or {}
    target: dict[str, Any] = {
        "kind": "crm",
        "entity_type": "deal",
        "entity_id": wanted.read.deal_id,
        "responsible_id": int(deal.get("assignedById") or 0) or None,
        "rule": wanted.rule.id,
        "operation": wanted.operation,
        "entry": str(deal.get("movedTime") or ""),
    }
    if wanted.payment_id is not None:
        target["payment_id"] = wanted.payment_id
    return target


def _stage_jobs(read: DealRead, rules: RuleSet) -> list[_Wanted]:
    deal = read.deal
    if deal is None:
        return []
    stage = str(deal.get("stageId") or "")
    category = int(deal.get("categoryId") or 0)
    out = []
    for rule in rules.stage_rules():
        trigger = rule.trigger
        assert isinstance(trigger, DealStageTrigger)
        if trigger.category_id != category:
            continue
        operation: Operation
        if stage == trigger.stage_id:
            operation = "sell"
        elif trigger.return_stage_id is not None and stage == trigger.return_stage_id:
            operation = "return"
        else:
            continue
        job_id = next_deal_job(
            deal_ledger(read.jobs, read.deal_id, rule.id),
            deal_id=read.deal_id,
            rule_id=rule.id,
            operation=operation,
            entry=str(deal.get("movedTime") or ""),
        )
        if job_id is not None:
            out.append(_Wanted(rule, operation, job_id, read))
    return out


class Planner:
    def __init__(self, reader: CrmReader) -> None:
        self._reader = reader

    async def plan(self, events: list[Mapping[str, Any]], rules: RuleSet) -> list[PlannedJob]:
        wanted: list[_Wanted] = []
        if rules.stage_rules():
            reads = await self._reader.deals(event_ids(events, DEAL_EVENTS))
            for read in reads.values():
                wanted.extend(_stage_jobs(read, rules))
        if rules.payment_rules():
            wanted.extend(await self._payment_jobs(event_ids(events, PAYMENT_EVENTS), rules))
        if not wanted:
            return []
        electronic = [w.read.deal for w in wanted if w.rule.electronic and w.read.deal]
        parties = await self._reader.parties(electronic) if electronic else {}
        return [self._job(w, w.read.snapshot(parties)) for w in wanted]

    async def _payment_jobs(self, payment_ids: list[int], rules: RuleSet) -> list[_Wanted]:
        if not payment_ids:
            return []
        reads = await self._reader.payments(payment_ids)
        paid = [
            r
            for r in reads
            if r.payment is not None
            and str(r.payment.get("paid") or "N") == "Y"
            and str(r.payment.get("isReturn") or "N") != "Y"
            and r.deal_id
        ]
        deals = await self._reader.deals([r.deal_id for r in paid if r.deal_id], ledger=False)
        out = []
        for read in paid:
            assert read.payment is not None and read.deal_id is not None
            deal = deals.get(read.deal_id)
            if deal is None or deal.deal is None:
                continue
            names = {str(item.get("NAME") or "") for item in read.jobs}
            for rule in rules.payment_rules():
                trigger = rule.trigger
                assert isinstance(trigger, PaymentTrigger)
                category = int(deal.deal.get("categoryId") or 0)
                if trigger.category_id is not None and trigger.category_id != category:
                    continue
                job_id = payment_job_id(read.payment_id, rule.id)
                if job_id in names:
                    continue
                try:
                    amount = decimal(read.payment.get("sum"), f"payment {read.payment_id} sum")
                except ReceiptRefused:
                    amount = Decimal(0)
                out.append(
                    _Wanted(
                        rule,
                        "sell",
                        job_id,
                        deal,
                        amount,
                        str(read.payment.get("currency") or ""),
                        read.payment_id,
                    )
                )
        return out

    def _job(self, wanted: _Wanted, snapshot: DealSnapshot) -> PlannedJob:
        target = target_of(wanted)
        deal = snapshot.deal
        if wanted.payment_id is not None:
            amount = wanted.amount or Decimal(0)
            what = f"payment {wanted.payment_id}"
            currency = wanted.currency or ""
        else:
            try:
                amount = decimal(deal.get("opportunity") or 0, "the deal's amount")
            except ReceiptRefused:
                amount = Decimal(0)
            what = f"the deal's amount (deal {snapshot.deal_id})"
            currency = str(deal.get("currencyId") or "")
        try:
            task = build_task(
                snapshot,
                wanted.rule,
                wanted.operation,
                amount=amount,
                amount_what=what,
                currency=currency,
            )
        except ReceiptRefused as refused:
            log.info("automation: %s refused: %s", wanted.job_id, refused)
            return PlannedJob(wanted.job_id, wanted.rule.kassa, None, target, str(refused))
        return PlannedJob(wanted.job_id, wanted.rule.kassa, task, target)
