"""The receipt a deal prints, built from the emulated portal's product rows (the same JSON the
REST methods answer), and the rules that say how: discounts, VAT included and excluded, the
amount check, the client's contact, returns, prepayments, and the rule set's validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from automation_support import won_rule
from kassa_appliance.channels.automation.ledger import LedgerEntry, next_deal_job
from kassa_appliance.channels.automation.receipt_build import (
    DealSnapshot,
    ReceiptRefused,
    build_task,
)
from kassa_appliance.channels.automation.rules import (
    Rule,
    RulesRefused,
    parse_rules,
    parse_rules_text,
)
from kassa_appliance.fiscal.receipt import parse_task
from kassa_appliance.testbeds.bitrix24.rest_crm_state import CONTACT, CrmPortal
from kassa_appliance.testbeds.bitrix24.rest_events import OfflineEvents


def rule(**changes: Any) -> Rule:
    return parse_rules({"rules": [won_rule(**changes)]}).rules[0]


def snapshot(rows: list[dict[str, Any]], *, email: str | None = "buyer@example.ru") -> DealSnapshot:
    crm = CrmPortal(OfflineEvents())
    contact = crm.add_party(CONTACT, "Buyer", **({"email": email} if email else {}))
    deal_id = crm.add_deal("Order", rows, contact_id=contact)
    deal = crm.deal_json(crm.deals[deal_id], original_uf_names=False)
    return DealSnapshot(
        deal,
        [r.as_json() for r in crm.rows[deal_id]],
        crm.party_json(crm.party(CONTACT, contact)),  # type: ignore[arg-type]
    )


def build(
    snap: DealSnapshot, the_rule: Rule, operation: str = "sell", amount: Any = None
) -> dict[str, Any]:
    total = Decimal(str(amount if amount is not None else snap.deal["opportunity"]))
    return build_task(
        snap,
        the_rule,
        operation,
        amount=total,
        amount_what="the deal's amount",
        currency="RUB",  # type: ignore[arg-type]
    )


def test_a_discount_goes_to_the_register_as_price_before_and_amount_after_it() -> None:
    snap = snapshot(
        [
            {
                "productName": "iPhone",
                "price": 90000,
                "quantity": 3,
                "discountTypeId": 2,
                "discountRate": 10,
                "taxRate": 10,
                "taxIncluded": "Y",
            }
        ]
    )
    task = build(snap, rule())
    line = task["items"][0]
    assert line["price"] == 100000 and line["quantity"] == 3 and line["amount"] == 270000
    assert line["tax"] == {"type": "vat10"} and task["total"] == 270000
    parse_task(task)  # the fiscal core takes it


def test_vat_included_and_excluded_both_print_what_the_buyer_pays_with_the_rate() -> None:
    included = snapshot([{"productName": "A", "price": 120, "quantity": 1, "taxRate": 20}])
    excluded = snapshot(
        [
            {
                "productName": "A",
                "priceExclusive": 100,
                "quantity": 1,
                "taxRate": 20,
                "taxIncluded": "N",
            }
        ]
    )
    assert excluded.rows[0]["price"] == 120 and excluded.rows[0]["taxIncluded"] == "N"
    for snap in (included, excluded):
        task = build(snap, rule())
        assert task["items"][0]["amount"] == 120 and task["items"][0]["tax"] == {"type": "vat20"}
        assert task["total"] == 120


def test_a_row_without_a_rate_takes_the_rules_vat_and_a_service_row_is_a_service() -> None:
    snap = snapshot(
        [{"productName": "Монтаж", "price": 500, "quantity": 1, "type": 7, "measureCode": 356}]
    )
    task = build(snap, rule(vat_default="vat22"))
    line = task["items"][0]
    assert line["tax"] == {"type": "vat22"} and line["paymentObject"] == "service"
    assert line["measurementUnit"] == "hour"


def test_the_total_is_checked_against_the_deals_amount_with_both_numbers() -> None:
    snap = snapshot([{"productName": "A", "price": 100, "quantity": 2}])
    with pytest.raises(ReceiptRefused, match=r"add up to 200\.00 RUB.*is 250\.00 RUB"):
        build(snap, rule(), amount="250")


def test_an_electronic_receipt_without_a_client_contact_is_refused_with_the_way_out() -> None:
    snap = snapshot([{"productName": "A", "price": 100, "quantity": 1}], email=None)
    with pytest.raises(
        ReceiptRefused, match=r"contact \d+ has no e-mail or phone.*electronic: false"
    ):
        build(snap, rule())
    paper = build(snap, rule(electronic=False))
    assert "clientInfo" not in paper and "electronically" not in paper


def test_a_return_an_advance_and_a_credit_receipt() -> None:
    snap = snapshot([{"productName": "A", "price": 100, "quantity": 1, "taxRate": 20}])
    assert build(snap, rule(), "return")["type"] == "sellReturn"
    advance = build(snap, rule(receipt_type="advance", vat_default="vat20"), amount="40")
    assert advance["total"] == 40 and advance["items"][0]["tax"] == {"type": "vat120"}
    credit = build(snap, rule(receipt_type="credit", payment_type="credit"))
    assert credit["items"][0]["paymentMethod"] == "credit"
    assert credit["payments"] == [{"type": "credit", "sum": 100}]


def test_a_bad_rule_set_is_refused_whole_with_every_problem_named() -> None:
    bad = won_rule(id="Bad Id", payment_type="card", receipt_type="credit")
    bad["trigger"] = {
        "kind": "deal_stage",
        "category_id": 2,
        "stage_id": "C1:WON",
        "return_stage_id": "C1:WON",
    }
    with pytest.raises(RulesRefused) as refused:
        parse_rules({"rules": [bad, won_rule(), won_rule()]})
    text = str(refused.value)
    assert "rules[0].id" in text and "rules[0].payment_type" in text
    assert "pipeline 1, not of pipeline 2" in text
    with pytest.raises(RulesRefused, match="used twice"):
        parse_rules({"rules": [won_rule(), won_rule()]})
    with pytest.raises(RulesRefused, match=r"expected a JSON object"):
        parse_rules_text("[1, 2]")
    assert parse_rules_text("").rules == []


def test_the_ledger_rule_for_stage_entries() -> None:
    def entry(seq: int, operation: str, state: str = "done", moved: str = "t1") -> LedgerEntry:
        return LedgerEntry(f"x:{seq}", seq, operation, state, moved)  # type: ignore[arg-type]

    def decide(ledger: list[LedgerEntry], operation: str, moved: str = "t1") -> str | None:
        return next_deal_job(ledger, deal_id=7, rule_id="won", operation=operation, entry=moved)  # type: ignore[arg-type]

    assert decide([], "sell") == "auto:deal:7:won:1:sell"
    assert decide([], "return") is None
    assert decide([entry(1, "sell")], "sell", "t2") is None  # out and back in: same sale
    assert decide([entry(1, "sell", "new")], "return") == "auto:deal:7:won:2:return"
    assert decide([entry(1, "sell"), entry(2, "return")], "sell") == "auto:deal:7:won:3:sell"
    assert decide([entry(1, "sell"), entry(2, "return", "failed")], "sell") is None
    assert decide([entry(1, "sell", "failed")], "sell", "t1") is None  # same entry refused
    assert decide([entry(1, "sell", "failed")], "sell", "t2") == "auto:deal:7:won:2:sell"
    assert decide([entry(1, "sell", "failed")], "return") is None
