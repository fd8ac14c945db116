"""Central settings from the Kassa app's *Settings* page against the real daemon: a good
version is applied without a restart; a bad INN is refused (by the page at the field, and by
the daemon when a version carrying it reaches the kassa anyway), the page shows the
daemon's reason at the INN field, and the old version stays in force. Who may create jobs
(allowed departments, picked from the portal's structure) and who hears of problems
(notified users, picked from ``user.get``) are saved from the same page and applied."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from app_browser import (
    ADMIN,
    BackgroundLoop,
    browser,
    by_test,
    enter_app,
    running_appliance,
    screenshot,
    set_value,
    wait_for,
)
from kassa_appliance.bitrix.central_settings import CONFIG_COMMAND, SETTINGS_ENTITY
from kassa_appliance.testbeds.bitrix24.state import ADMIN_USER_ID, User
from kassa_appliance.testbeds.demo_stack import StackSettings

GOOD_INN = "500100732259"
BAD_INN = "500100732258"  # the last check digit is wrong
APPLY_WAIT = 30.0
TAPE: list[str] = []
"""The simulator's paper tape (each receipt prints its operator)."""
SALE = {
    "type": "sell",
    "items": [
        {
            "type": "position",
            "name": "Чай",
            "price": 100,
            "quantity": 1,
            "amount": 100,
            "tax": {"type": "none"},
        }
    ],
    "payments": [{"type": "cash", "sum": 100}],
}


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundLoop, Any]]:
    settings = StackSettings(
        root=tmp_path_factory.mktemp("stack"), push_buffer_delay=0.0, tape=TAPE.append
    )
    with running_appliance(settings) as running:
        yield running


def stored(loop: BackgroundLoop, appliance: Any) -> dict[str, Any]:
    """The kassa's KASSACFG item's values, straight from the emulator."""

    def read() -> dict[str, Any]:
        entity = appliance.emulator.state.entities.get(SETTINGS_ENTITY)
        items = [] if entity is None else list(entity.items.values())
        return {"ID": items[-1].id, **items[-1].properties} if items else {}

    result: dict[str, Any] = loop.call(read)
    return result


def cfg_state(driver: Any) -> str:
    return str(by_test(driver, "cfg-state").get_attribute("data-cfg"))


async def write_version(
    appliance: Any, item_id: int, settings: dict[str, Any], version: int
) -> None:
    """A version saved past the page's checks (another client of KASSACFG, an older app),
    with its doorbell, as the admin."""
    emulator = appliance.emulator
    state = emulator.state
    rotated = state.rotate(state.issue_refresh_token(ADMIN_USER_ID))
    assert rotated is not None
    values = {"SETTINGS": json.dumps(settings), "VERSION": str(version), "ERROR": ""}
    status, body = await emulator.api.handle(
        "entity.item.update",
        {"ENTITY": SETTINGS_ENTITY, "ID": item_id, "PROPERTY_VALUES": values, "auth": rotated[0]},
    )
    assert status == 200, body
    kassa = appliance.settings.kassa_id
    status, body = await emulator.api.handle(
        "pull.application.event.add",
        {
            "COMMAND": CONFIG_COMMAND,
            "PARAMS": {"kassa": kassa, "version": version},
            "auth": rotated[0],
        },
    )
    assert status == 200, body


def test_a_bad_inn_is_refused_and_the_old_settings_stay_applied(
    stack: tuple[BackgroundLoop, Any], tmp_path: Any
) -> None:
    loop, appliance = stack
    kassa = appliance.settings.kassa_id
    with browser(tmp_path / "profile", height=1000) as driver:
        enter_app(driver, appliance.emulator.portal_page_url(ADMIN))
        wait_for(driver, lambda: by_test(driver, "nav-settings"), what="nav").click()
        wait_for(driver, lambda: kassa in by_test(driver, "kassa-picker").text, what="kassa")
        assert cfg_state(driver) == "none"

        # Version 1: good; the daemon takes it without a restart and the page says so.
        set_value(driver, "cfg-name", "Иванова А.В.")
        set_value(driver, "cfg-vatin", GOOD_INN)
        by_test(driver, "cfg-save").click()
        wait_for(driver, lambda: cfg_state(driver) == "applied", timeout=APPLY_WAIT, what="applied")
        assert "1" in by_test(driver, "cfg-state").text
        item = stored(loop, appliance)
        assert (item["VERSION"], item["APPLIED"], item["ERROR"]) == ("1", "1", "")

        # The page itself refuses a wrong check digit at the field: nothing is written.
        set_value(driver, "cfg-vatin", BAD_INN)
        by_test(driver, "cfg-save").click()
        wait_for(
            driver,
            lambda: "INN" in by_test(driver, "cfg-vatin-field").text,
            what="the page's reason at the INN field",
        )
        assert stored(loop, appliance)["VERSION"] == "1"

        # The same INN reaching the kassa anyway (written past the page): the daemon
        # refuses it with its reason, keeps version 1, and the page shows why at the field.
        bad = {"operator.name": "Петров П.П.", "operator.vatin": BAD_INN}
        loop.run(write_version(appliance, int(item["ID"]), bad, 2))
        wait_for(
            None,
            lambda: stored(loop, appliance)["ERROR"],
            timeout=APPLY_WAIT,
            what="the daemon's reason in ERROR",
        )
        item = stored(loop, appliance)
        assert item["APPLIED"] == "1", item
        assert item["ERROR"].startswith("operator.vatin:"), item["ERROR"]
        assert BAD_INN in item["ERROR"] or "check digit" in item["ERROR"]

        driver.refresh()
        enter_app(driver, appliance.emulator.portal_page_url(ADMIN))
        wait_for(driver, lambda: by_test(driver, "nav-settings"), what="nav").click()
        wait_for(driver, lambda: cfg_state(driver) == "refused", what="refused on the page")
        assert "2" in by_test(driver, "cfg-state").text
        field = by_test(driver, "cfg-vatin-field").text
        assert "check digits" in field, field
        screenshot(driver, "settings-refused")

    # The next receipt still carries version 1's operator.
    printed = len(TAPE)
    item_id = loop.run(appliance.publish("after-refusal", SALE))

    def done() -> bool:
        found = appliance.stored_item(item_id)
        return found is not None and found.properties.get("STATE") == "done"

    wait_for(None, lambda: loop.call(done), timeout=APPLY_WAIT, what="the receipt after it")
    tape = wait_for(
        None,
        lambda: "Иванова" in "\n".join(TAPE[printed:]) and "\n".join(TAPE[printed:]),
        what="the receipt on the tape with version 1's operator",
    )
    assert "Петров" not in tape, tape
    item = stored(loop, appliance)
    assert item["APPLIED"] == "1" and item["VERSION"] == "2"


SALES_DEPARTMENT = 5
SHOP_DEPARTMENT = 12
NOTIFIED_USER = 7


def test_notified_users_and_allowed_departments_are_saved_and_applied(
    stack: tuple[BackgroundLoop, Any], tmp_path: Any
) -> None:
    from selenium.webdriver.support.ui import Select

    loop, appliance = stack
    emulator = appliance.emulator

    def structure() -> None:
        company = emulator.portal_extras.company
        company.add(SALES_DEPARTMENT, "Продажи")
        company.add(SHOP_DEPARTMENT, "Магазин на Ленина", parent=SALES_DEPARTMENT)
        emulator.state.users[NOTIFIED_USER] = User(NOTIFIED_USER, "Мария Петрова", admin=False)

    loop.call(structure)
    with browser(tmp_path / "profile", height=1000) as driver:
        enter_app(driver, emulator.portal_page_url(ADMIN))
        wait_for(driver, lambda: by_test(driver, "nav-settings"), what="nav").click()
        pick = wait_for(
            driver,
            lambda: (
                "Магазин на Ленина" in by_test(driver, "cfg-departments-pick").text
                and by_test(driver, "cfg-departments-pick")
            ),
            what="the department tree from department.get",
        )
        Select(pick).select_by_value(str(SALES_DEPARTMENT))
        notify = wait_for(
            driver,
            lambda: (
                "Петрова" in by_test(driver, "cfg-notify-pick").text
                and by_test(driver, "cfg-notify-pick")
            ),
            what="the users from user.get",
        )
        Select(notify).select_by_value(str(NOTIFIED_USER))
        wait_for(
            driver,
            lambda: (
                "Продажи" in by_test(driver, "cfg-departments-field").text
                and "Петрова" in by_test(driver, "cfg-notify-field").text
            ),
            what="the picked names under the fields",
        )
        by_test(driver, "cfg-save").click()
        wait_for(driver, lambda: cfg_state(driver) == "applied", timeout=APPLY_WAIT, what="applied")
        screenshot(driver, "settings-departments-notify")

    item = stored(loop, appliance)
    assert (item["VERSION"], item["APPLIED"], item["ERROR"]) == ("1", "1", ""), item
    assert json.loads(item["SETTINGS"]) == {
        "bitrix.allowed-departments": [SALES_DEPARTMENT],
        "bitrix.notify-users": [NOTIFIED_USER],
    }
    # In force: the cashier works in the company's own department, not in Sales.
    item_id = loop.run(appliance.publish("outside-sales", SALE))

    def state() -> Any:
        found = appliance.stored_item(item_id)
        return found is not None and found.properties.get("STATE") in ("done", "failed") and found

    refused = wait_for(None, lambda: loop.call(state), timeout=APPLY_WAIT, what="the job's end")
    assert refused.properties["STATE"] == "failed", refused.properties
    assert "creator-not-allowed" in str(refused.properties.get("ERROR")), refused.properties
