"""The cashier workplace at a phone's viewport (390 × 844, mobile emulation in headless
Chromium) against the real daemon: a cash sale completes with its QR, and neither the
portal page nor the app inside it scrolls sideways at any step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app_browser import (
    PHONE,
    BackgroundLoop,
    browser,
    by_test,
    horizontal_overflow,
    screenshot,
    wait_for,
)
from test_app_cashier import fill_sale, final_state, job_items, open_cashier, stack

__all__ = ["stack"]  # the fixture: emulator + daemon on the simulator


def assert_no_overflow(driver: Any, step: str) -> None:
    inner = horizontal_overflow(driver)
    driver.switch_to.default_content()
    outer = horizontal_overflow(driver)
    driver.switch_to.frame(driver.find_element("css selector", "iframe#app"))
    assert inner is None, f"the app scrolls sideways {step}: {inner}"
    assert outer is None, f"the portal page scrolls sideways {step}: {outer}"


def test_a_cash_sale_at_a_phone_viewport_fits_the_screen(
    stack: tuple[BackgroundLoop, Any], tmp_path: Path
) -> None:
    loop, appliance = stack
    before = len(job_items(loop, appliance))
    with browser(tmp_path / "profile", phone=True) as driver:
        open_cashier(driver, appliance)
        assert driver.execute_script("return window.innerWidth") == PHONE["width"]
        assert_no_overflow(driver, "on the empty cashier page")
        fill_sale(driver, "Кофе латте", "180", "1", "200")
        wait_for(driver, lambda: by_test(driver, "change").text, what="change")
        assert_no_overflow(driver, "with a position and a payment")
        send = by_test(driver, "send")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", send)
        send.click()
        assert final_state(driver) == "done", by_test(driver, "job-status").text
        qr = wait_for(driver, lambda: by_test(driver, "qr"), what="QR code")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", qr)
        assert qr.is_displayed()
        assert_no_overflow(driver, "on the done view")
        screenshot(driver, "cashier-phone-done")
    items = job_items(loop, appliance)
    assert len(items) == before + 1
    assert items[-1]["STATE"] == "done"
