"""The Kassa app in headless Chromium on the emulator's portal page: install on an empty
portal (as the admin) and what a cashier sees before that. No daemon: the app alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app_browser import (
    ADMIN,
    CASHIER,
    ROOT,
    BackgroundLoop,
    all_by_test,
    browser,
    by_test,
    enter_app,
    running_portal,
    screenshot,
    wait_for,
)
from kassa_appliance.testbeds.bitrix24.app import Emulator


@pytest.fixture
def portal() -> Iterator[tuple[BackgroundLoop, Emulator]]:
    with running_portal() as running:
        yield running


def storage_definitions() -> list[dict[str, Any]]:
    path = ROOT / "src/kassa_appliance/bitrix/storage.json"
    entities: list[dict[str, Any]] = json.loads(path.read_text("utf-8"))["entities"]
    return entities


def test_install_on_an_empty_portal_creates_storages_binds_placements_and_finishes(
    portal: tuple[BackgroundLoop, Emulator], tmp_path: Path
) -> None:
    loop, emulator = portal
    assert emulator.state.entities == {}
    with browser(tmp_path / "profile") as driver:
        enter_app(driver, emulator.portal_page_url(ADMIN))
        # In install mode the admin lands on the install page.
        wait_for(driver, lambda: by_test(driver, "install").is_displayed(), what="install button")
        by_test(driver, "install").click()
        wait_for(driver, lambda: by_test(driver, "install-done"), what="install done")
        steps = by_test(driver, "install-steps").text
        screenshot(driver, "install-done")

    def snapshot() -> dict[str, Any]:
        return {
            "entities": {c: set(e.properties) for c, e in emulator.state.entities.items()},
            "placements": [p["placement"] for p in emulator.portal_extras.placements],
            "handlers": [p["handler"] for p in emulator.portal_extras.placements],
            "installed": emulator.frames.installed,
            "finish_calls": emulator.frames.install_finish_calls,
            "commands": emulator.frames.commands(),
        }

    seen = loop.call(snapshot)
    for entity in storage_definitions():
        assert entity["entity"] in seen["entities"], steps
        assert set(entity["properties"]) <= seen["entities"][entity["entity"]]
    assert sorted(seen["placements"]) == ["CRM_DEAL_DETAIL_TAB", "LEFT_MENU"]
    assert all("/_app/index.html?placement=" in h for h in seen["handlers"]), seen["handlers"]
    assert seen["installed"] and seen["finish_calls"] == 1
    assert seen["commands"][0] == "getInitData"
    assert "setInstallFinish" in seen["commands"]


def test_install_again_only_reports_what_is_there(
    portal: tuple[BackgroundLoop, Emulator], tmp_path: Path
) -> None:
    loop, emulator = portal
    with browser(tmp_path / "profile") as driver:
        enter_app(driver, emulator.portal_page_url(ADMIN))
        wait_for(driver, lambda: by_test(driver, "install").is_displayed(), what="install button")
        by_test(driver, "install").click()
        wait_for(driver, lambda: by_test(driver, "install-done"), what="first install")
        by_test(driver, "install").click()  # "install again": idempotent
        wait_for(
            driver,
            lambda: (
                "создан" not in by_test(driver, "install-steps").text.lower()
                and by_test(driver, "install-steps").text
            ),
            what="second install reporting only present parts",
        )
    assert loop.call(lambda: len(emulator.portal_extras.placements)) == 2
    assert loop.call(lambda: emulator.frames.install_finish_calls) == 1


def test_a_cashier_before_install_is_told_an_admin_must_install(
    portal: tuple[BackgroundLoop, Emulator], tmp_path: Path
) -> None:
    loop, emulator = portal
    with browser(tmp_path / "profile") as driver:
        enter_app(driver, emulator.portal_page_url(CASHIER))
        alert = wait_for(driver, lambda: by_test(driver, "not-admin"), what="not-admin alert")
        assert alert.text.strip()
        assert not all_by_test(driver, "install")
        screenshot(driver, "install-cashier-before")
    assert loop.call(lambda: emulator.state.entities) == {}
