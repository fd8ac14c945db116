"""What Bitrix24 hands the automation is untrusted: any rule-set text, any event payload and
any deal/row JSON either gives a valid receipt (one the fiscal core takes) or a refusal in
words — never another exception."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from automation_support import won_rule
from kassa_appliance.channels.automation.plan import DEAL_EVENTS, event_ids
from kassa_appliance.channels.automation.receipt_build import (
    DealSnapshot,
    ReceiptRefused,
    build_task,
)
from kassa_appliance.channels.automation.rules import RulesRefused, parse_rules, parse_rules_text
from kassa_appliance.fiscal.receipt import parse_task

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
RULE_KEYS = list(won_rule())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | values.map(lambda v: json.dumps(v, default=str)))
def test_any_rules_text_is_taken_or_refused_in_words(text: str) -> None:
    try:
        parse_rules_text(text)
    except RulesRefused as refused:
        assert str(refused)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(RULE_KEYS), values, max_size=4))
def test_a_rule_with_any_field_values_is_taken_or_refused(changes: dict[str, Any]) -> None:
    try:
        parse_rules({"rules": [won_rule(**changes)]})
    except RulesRefused as refused:
        assert "rules[0]" in str(refused)


@settings(max_examples=200, deadline=None)
@given(st.lists(values, max_size=5))
def test_any_event_payload_gives_ids_or_nothing(events: list[Any]) -> None:
    shaped = [{"EVENT_NAME": "ONCRMDEALUPDATE", "EVENT_DATA": e} for e in events]
    for deal_id in event_ids(shaped, DEAL_EVENTS):
        assert isinstance(deal_id, int) and deal_id >= 0


row_fields = st.fixed_dictionaries(
    {},
    optional={
        "productName": st.text(max_size=30) | scalars,
        "price": st.decimals(-10, 10**6, places=2, allow_nan=False).map(float) | scalars,
        "priceBrutto": st.decimals(0, 10**6, places=2, allow_nan=False).map(float) | scalars,
        "quantity": st.decimals(-1, 1000, places=3, allow_nan=False).map(float) | scalars,
        "taxRate": st.sampled_from([None, 0, 10, 20, 22, 18, 7.5]) | scalars,
        "measureCode": st.sampled_from([796, 166, 112, 999, "x", None]),
        "type": st.sampled_from([1, 7, "7", None]),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(row_fields, max_size=4),
    st.decimals(-10, 10**6, places=2, allow_nan=False),
    st.sampled_from(["RUB", "USD", ""]),
    st.none() | st.fixed_dictionaries({"id": st.just(1), "fm": values}),
)
def test_any_deal_gives_a_valid_receipt_or_a_refusal(
    rows: list[dict[str, Any]], amount: Decimal, currency: str, contact: Any
) -> None:
    rule = parse_rules({"rules": [won_rule()]}).rules[0]
    snapshot = DealSnapshot({"id": 1, "title": "T", "opportunity": amount}, rows, contact)
    try:
        task = build_task(
            snapshot, rule, "sell", amount=amount, amount_what="the amount", currency=currency
        )
    except ReceiptRefused as refused:
        assert str(refused)
        return
    parse_task(task)
    assert json.loads(json.dumps(task)) == task
