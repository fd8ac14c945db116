"""The cashier workplace in headless Chromium against the emulator's portal page and the real
daemon process on the simulator (:class:`ApplianceStack`): a cash sale with change printed
and shown with its QR, a receipt the daemon refuses shown at the field it names, and a
double click that prints once. The live state comes over the SDK's pull client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app_browser import (
    CASHIER,
    BackgroundLoop,
    browser,
    by_test,
    enter_app,
    running_appliance,
    screenshot,
    set_value,
    wait_for,
)
from kassa_appliance.bitrix.protocol import JOB_ENTITY
from kassa_appliance.testbeds.demo_stack import StackSettings

DONE_WAIT = 30.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundLoop, Any]]:
    settings = StackSettings(root=tmp_path_factory.mktemp("stack"), push_buffer_delay=0.0)
    with running_appliance(settings) as running:
        yield running


def job_items(loop: BackgroundLoop, appliance: Any) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        entity = appliance.emulator.state.entities.get(JOB_ENTITY)
        if entity is None:
            return []
        return [{"name": i.name, **i.properties} for i in entity.items.values()]

    result: list[dict[str, Any]] = loop.call(read)
    return result


def open_cashier(driver: Any, appliance: Any) -> None:
    enter_app(driver, appliance.emulator.portal_page_url(CASHIER))
    wait_for(driver, lambda: by_test(driver, "page-cashier"), what="cashier page")
    picker = wait_for(driver, lambda: by_test(driver, "kassa-picker"), what="kassa picker")
    wait_for(
        driver,
        lambda: appliance.settings.kassa_id in picker.text,
        what="the kassa in the picker",
    )
    # The SDK's pull client holds its own push connection next to the daemon's.
    wait_for(
        driver,
        lambda: appliance.push.connection_count >= 2,
        what="the page's pull connection",
    )


def fill_sale(driver: Any, name: str, price: str, quantity: str, cash: str) -> None:
    set_value(driver, "name-0", name)
    set_value(driver, "price-0", price)
    set_value(driver, "quantity-0", quantity)
    set_value(driver, "cash", cash)


def final_state(driver: Any) -> str:
    status = wait_for(
        driver,
        lambda: (
            by_test(driver, "job-status").get_attribute("data-state")
            in ("done", "failed", "cancelled")
            and by_test(driver, "job-status")
        ),
        timeout=DONE_WAIT,
        what="the job's final state",
    )
    return str(status.get_attribute("data-state"))


def test_cash_sale_with_change_is_printed_and_shown_with_its_qr(
    stack: tuple[BackgroundLoop, Any], tmp_path: Path
) -> None:
    loop, appliance = stack
    before = len(job_items(loop, appliance))
    with browser(tmp_path / "profile", height=1150) as driver:
        open_cashier(driver, appliance)
        fill_sale(driver, "Кофе американо", "150", "2", "500")
        wait_for(driver, lambda: by_test(driver, "change").text, what="change")
        assert by_test(driver, "total").text.replace("\u00a0", " ").startswith("300")
        assert by_test(driver, "change").text.replace("\u00a0", " ").startswith("200")
        by_test(driver, "send").click()
        assert final_state(driver) == "done", by_test(driver, "job-status").text
        wait_for(driver, lambda: by_test(driver, "qr").is_displayed(), what="QR code")
        fns = by_test(driver, "fns-link").get_attribute("href") or ""
        assert fns.startswith("https://check.nalog.ru/"), fns
        assert by_test(driver, "fd").text.strip() and by_test(driver, "fp").text.strip()
        screenshot(driver, "cashier-sale-done")
    items = job_items(loop, appliance)
    assert len(items) == before + 1
    assert items[-1]["STATE"] == "done" and items[-1]["SOURCE"] == "app"


def test_a_refused_receipt_shows_the_reason_at_the_field(
    stack: tuple[BackgroundLoop, Any], tmp_path: Path
) -> None:
    loop, appliance = stack
    with browser(tmp_path / "profile") as driver:
        open_cashier(driver, appliance)
        # The page accepts the quantity; the daemon refuses it (at most 99999.999999).
        fill_sale(driver, "Гвозди", "1", "100000", "100000")
        by_test(driver, "send").click()
        assert final_state(driver) == "failed"
        error = job_items(loop, appliance)[-1].get("ERROR")
        field = wait_for(
            driver,
            lambda: by_test(driver, "position-0").find_element(
                "xpath", ".//*[contains(text(), '99999')]"
            ),
            what=f"the reason at the quantity field (the daemon wrote {error})",
        )
        assert field.is_displayed()
        screenshot(driver, "cashier-refused-at-field")
    assert job_items(loop, appliance)[-1]["STATE"] == "failed"


def test_a_double_click_prints_once(stack: tuple[BackgroundLoop, Any], tmp_path: Path) -> None:
    loop, appliance = stack
    before = len(job_items(loop, appliance))
    with browser(tmp_path / "profile") as driver:
        open_cashier(driver, appliance)
        fill_sale(driver, "Круассан", "95.50", "1", "100")
        send = by_test(driver, "send")
        driver.execute_script("arguments[0].click(); arguments[0].click();", send)
        assert final_state(driver) == "done"
        screenshot(driver, "cashier-double-click")
    items = job_items(loop, appliance)
    assert len(items) == before + 1, items[before:]
    assert items[-1]["STATE"] == "done"
