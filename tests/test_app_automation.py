"""CRM automation rules edited in the Kassa app's *Automation* page against the real daemon
(automation host, ``automation.enabled``) on the simulator: a rule made on the page (the
pipeline and its stages loaded from ``crm.category.list``/``crm.status.list``) is saved as
version 1 and the page shows the host applied it; a second version with a bad rule (a
credit receipt paid in cash) is refused by the host — the page shows its reason at the
rule's payment type and says version 1 stays in force — and a deal entering the stage still
prints by version 1's rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from app_browser import (
    ADMIN,
    BackgroundLoop,
    all_by_test,
    browser,
    by_test,
    enter_app,
    running_appliance,
    screenshot,
    set_value,
    wait_for,
)
from kassa_appliance.bitrix.central_settings import SETTINGS_ENTITY
from kassa_appliance.bitrix.protocol import JOB_ENTITY
from kassa_appliance.channels.automation.rules_store import RULES_ITEM
from kassa_appliance.testbeds.demo_stack import StackSettings

ANSWER_WAIT = 40.0
PIPELINE = "Магазин"
ROWS = [{"productName": "Кабель USB-B", "price": 350, "quantity": 2, "taxRate": 20}]


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundLoop, Any]]:
    settings = StackSettings(
        root=tmp_path_factory.mktemp("stack"),
        push_buffer_delay=0.0,
        sections={"automation": {"enabled": True, "poll_seconds": 1.0}},
    )
    with running_appliance(settings) as running:
        yield running


def rules_item(loop: BackgroundLoop, appliance: Any) -> dict[str, str]:
    def read() -> dict[str, str]:
        entity = appliance.emulator.state.entities.get(SETTINGS_ENTITY)
        for item in [] if entity is None else entity.items.values():
            if item.name == RULES_ITEM:
                return {k: str(v or "") for k, v in item.properties.items()}
        return {}

    result: dict[str, str] = loop.call(read)
    return result


def deal_jobs(loop: BackgroundLoop, appliance: Any, deal_id: int) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        entity = appliance.emulator.state.entities.get(JOB_ENTITY)
        items = [] if entity is None else entity.items.values()
        prefix = f"auto:deal:{deal_id}:"
        return [{"NAME": i.name, **i.properties} for i in items if i.name.startswith(prefix)]

    result: list[dict[str, Any]] = loop.call(read)
    return result


def rules_state(driver: Any) -> str:
    return str(by_test(driver, "rules-state").get_attribute("data-state"))


def choose(driver: Any, card: Any, name: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(card.find_element("css selector", f'[data-test="{name}"]')).select_by_value(value)


def test_rules_saved_in_the_app_are_applied_and_a_bad_one_is_refused_with_the_old_kept(
    stack: tuple[BackgroundLoop, Any], tmp_path: Any
) -> None:
    loop, appliance = stack
    kassa = appliance.settings.kassa_id
    crm = appliance.emulator.crm
    category = loop.call(
        lambda: crm.add_category(
            PIPELINE, [("NEW", "Новая", "P"), ("WON", "Продано", "S"), ("BACK", "Возврат", "F")]
        )
    )
    with browser(tmp_path / "profile", height=1200) as driver:
        enter_app(driver, appliance.emulator.portal_page_url(ADMIN))
        wait_for(driver, lambda: by_test(driver, "nav-automation"), what="nav").click()
        wait_for(driver, lambda: rules_state(driver) == "none", what="no rules yet")
        assert by_test(driver, "no-rules")

        # Rule 1, made on the page: the shop pipeline's won stage prints a paper receipt.
        by_test(driver, "rule-add").click()
        card = wait_for(driver, lambda: all_by_test(driver, "rule-card")[0], what="rule form")
        set_value(driver, "rule-id", "shop-won")
        choose(driver, card, "rule-pipeline", str(category))
        wait_for(
            driver,
            lambda: "Продано" in card.find_element("css selector", '[data-test="rule-stage"]').text,
            what="the pipeline's stages",
        )
        choose(driver, card, "rule-stage", f"C{category}:WON")
        choose(driver, card, "rule-return-stage", f"C{category}:BACK")
        assert kassa in card.find_element("css selector", '[data-test="rule-kassa"]').text
        choose(driver, card, "rule-payment-type", "cash")
        choose(driver, card, "rule-taxation", "usnIncome")
        choose(driver, card, "rule-vat", "vat20")
        choose(driver, card, "rule-electronic", "false")
        by_test(driver, "rules-save").click()
        wait_for(
            driver, lambda: rules_state(driver) == "applied", timeout=ANSWER_WAIT, what="applied"
        )
        assert "1" in by_test(driver, "rules-state").text
        item = rules_item(loop, appliance)
        assert (item["VERSION"], item["APPLIED"], item["ERROR"]) == ("1", "1", "")
        saved = json.loads(item["SETTINGS"])["rules"]
        assert saved == [
            {
                "id": "shop-won",
                "kassa": kassa,
                "trigger": {
                    "kind": "deal_stage",
                    "category_id": category,
                    "stage_id": f"C{category}:WON",
                    "return_stage_id": f"C{category}:BACK",
                },
                "receipt_type": "full_payment",
                "payment_type": "cash",
                "taxation": "usnIncome",
                "vat_default": "vat20",
                "electronic": False,
            }
        ], saved
        assert "Продано" in all_by_test(driver, "rule-card")[0].text

        # Version 2 adds a credit receipt paid in cash: the host refuses the whole version.
        by_test(driver, "rule-add").click()
        card = wait_for(driver, lambda: all_by_test(driver, "rule-card")[1], what="second rule")
        set_value(driver, "rule-id", "paid-credit")
        choose(driver, card, "rule-trigger-kind", "payment_paid")
        choose(driver, card, "rule-receipt-type", "credit")
        choose(driver, card, "rule-payment-type", "cash")
        by_test(driver, "rules-save").click()
        wait_for(
            driver, lambda: rules_state(driver) == "refused", timeout=ANSWER_WAIT, what="refused"
        )
        item = rules_item(loop, appliance)
        assert (item["VERSION"], item["APPLIED"]) == ("2", "1"), item
        assert item["ERROR"].startswith("rules[1]: payment_type:"), item["ERROR"]
        state = by_test(driver, "rules-state").text
        assert "2" in state and "версия 1" in state, state
        field = wait_for(
            driver,
            lambda: (
                all_by_test(driver, "rule-card")[1]
                .find_element("css selector", '[data-test="rule-payment-type-field"]')
                .text
            ),
            what="the host's reason at the payment type",
        )
        assert "credit" in field and "cash" in field, field
        assert all_by_test(driver, "rule-card")[0].get_attribute("data-problems") == "0"
        in_force = by_test(driver, "rules-in-force").text
        assert "shop-won" in in_force and "paid-credit" not in in_force, in_force
        screenshot(driver, "automation-refused")

    # Version 1's rule is still the one in force: a deal entering the stage prints by it.
    deal = loop.call(
        lambda: crm.add_deal("Заказ", ROWS, category_id=category, stage_id=f"C{category}:NEW")
    )
    loop.call(lambda: crm.move_deal(deal, f"C{category}:WON"))
    jobs = wait_for(
        None,
        lambda: (
            (found := deal_jobs(loop, appliance, deal))
            and found[0].get("STATE") == "done"
            and found
        ),
        timeout=ANSWER_WAIT,
        what="the deal's receipt printed",
    )
    assert [j["NAME"] for j in jobs] == [f"auto:deal:{deal}:shop-won:1:sell"], jobs
    task = json.loads(jobs[0]["TASK"])
    assert task["payments"] == [{"type": "cash", "sum": 700}], task
    assert task["taxationType"] == "usnIncome" and task.get("electronically") is not True
