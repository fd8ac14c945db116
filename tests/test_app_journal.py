"""The receipt journal in headless Chromium over 120 stored jobs on the emulator: 50 a page,
paging to the last page, and the state and source filters (entity.item.get FILTER)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app_browser import (
    ADMIN,
    BackgroundLoop,
    all_by_test,
    browser,
    by_test,
    enter_app,
    preinstall,
    running_portal,
    screenshot,
    wait_for,
)
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.state import ADMIN_USER_ID

JOBS = 120


def job_values(number: int) -> dict[str, Any]:
    failed = number % 3 == 0
    task = {
        "type": "sell",
        "items": [
            {
                "type": "position",
                "name": f"Товар {number}",
                "price": number,
                "quantity": 1,
                "amount": number,
                "tax": {"type": "none"},
            }
        ],
        "payments": [{"type": "cash", "sum": number}],
    }
    values = {
        "KASSA": "k-1" if number % 2 else "k-2",
        "STATE": "failed" if failed else "done",
        "TASK": json.dumps(task, ensure_ascii=False),
        "SOURCE": "app" if number % 4 else "bitrix",
        "REPLY": json.dumps({"app": "kassa", "user": 2}),
    }
    if failed:
        values["ERROR"] = json.dumps({"code": "invalid-task", "message": "invalid task: x"})
    return values


async def seed_journal(emulator: Emulator) -> None:
    """An installed portal holding JOBS stored jobs of two kassas."""
    await preinstall(emulator)
    state = emulator.state
    rotated = state.rotate(state.issue_refresh_token(ADMIN_USER_ID))
    assert rotated is not None
    for number in range(1, JOBS + 1):
        status, body = await emulator.api.handle(
            "entity.item.add",
            {
                "ENTITY": "KASSAJOB",
                "NAME": f"job-{number:03d}",
                "PROPERTY_VALUES": job_values(number),
                "auth": rotated[0],
            },
        )
        assert status == 200, body


@pytest.fixture
def journal_portal() -> Iterator[tuple[BackgroundLoop, Emulator]]:
    with running_portal(seed_journal) as running:
        yield running


def label(driver: Any) -> str:
    return str(by_test(driver, "page-label").text)


def test_journal_pages_120_jobs_by_50_and_filters_them(
    journal_portal: tuple[BackgroundLoop, Emulator], tmp_path: Path
) -> None:
    _loop, emulator = journal_portal
    with browser(tmp_path / "profile", height=1000) as driver:
        enter_app(driver, emulator.portal_page_url(ADMIN))
        wait_for(
            driver,
            lambda: driver.find_element(
                "xpath", "//*[self::a or self::button][normalize-space()='Журнал']"
            ),
            what="nav",
        ).click()
        wait_for(driver, lambda: "(120)" in label(driver), what="120 jobs in the pager")
        assert "1" in label(driver) and "3" in label(driver), label(driver)
        assert len(all_by_test(driver, "journal-row")) == 50
        screenshot(driver, "journal-first-page")

        by_test(driver, "page-next").click()
        wait_for(driver, lambda: " 2 " in f" {label(driver)} ", what="page 2")
        by_test(driver, "page-next").click()
        wait_for(driver, lambda: len(all_by_test(driver, "journal-row")) == 20, what="last page")
        assert not by_test(driver, "page-next").is_enabled()

        # 40 of the 120 failed; of those, every fourth number came from a bizproc (bitrix).
        driver.execute_script(
            "const s = arguments[0]; s.value = 'failed'; s.dispatchEvent(new Event('change'));",
            by_test(driver, "filter-state"),
        )
        by_test(driver, "filter-apply").click()
        wait_for(driver, lambda: "(40)" in label(driver), what="40 failed jobs")
        states = {
            r.get_attribute("data-state")
            for r in driver.find_elements(
                "css selector", '[data-test="journal-row"] td[data-state]'
            )
        }
        assert states == {"failed"}
        driver.execute_script(
            "const s = arguments[0]; s.value = 'bitrix'; s.dispatchEvent(new Event('change'));",
            by_test(driver, "filter-source"),
        )
        by_test(driver, "filter-apply").click()
        wait_for(driver, lambda: "(10)" in label(driver), what="10 failed jobs from bitrix")
        all_by_test(driver, "journal-row")[0].click()
        wait_for(driver, lambda: by_test(driver, "detail-error").is_displayed(), what="detail")
        screenshot(driver, "journal-filtered-detail")
