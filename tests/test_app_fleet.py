"""The Kassa app's *Fleet* page against the real daemon on the simulator: an FN that expires
in 10 days and documents the OFD has not had for 26 days (set with the simulator's own CLI,
``kassa-appliance simulator fn-expiry`` / ``ofd-backlog``) reach the page through the
daemon's KASSADEV heartbeat and show as alerts with their severity, worst first; the fleet
itself is sorted worst first (an offline kassa and a healthy one beside it)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
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
    running_appliance,
    screenshot,
    wait_for,
)
from kassa_appliance.bitrix.protocol import DEVICE_ENTITY
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_faults import OfdBacklog, read_control, set_ofd_backlog
from kassa_appliance.testbeds.bitrix24.state import ADMIN_USER_ID
from kassa_appliance.testbeds.demo_stack import StackSettings

FN_DAYS = 10
OFD_DAYS = 26
OFD_COUNT = 3
FACTS_WAIT = 45.0


def simulator_cli(data_dir: Path, *args: str) -> str:
    """``kassa-appliance --data-dir <data_dir> simulator …`` as an admin would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "kassa_appliance", "--data-dir", str(data_dir), "simulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def set_up_register(data_dir: Path) -> None:
    """The register's problems, before the daemon's first look at it."""
    assert "FN valid until" in simulator_cli(data_dir, "fn-expiry", "--days", str(FN_DAYS))
    out = simulator_cli(data_dir, "ofd-backlog", "--days", str(OFD_DAYS), "--count", str(OFD_COUNT))
    assert f"{OFD_COUNT} documents unsent" in out
    control = read_control(data_dir / "simulator")
    assert control.fn_validity == str(date.today() + timedelta(days=FN_DAYS))
    assert control.ofd_backlog is not None and control.ofd_backlog.count == OFD_COUNT


def test_the_simulators_ofd_backlog_is_reported_until_the_link_is_back(tmp_path: Path) -> None:
    """No browser: ``ofd-backlog`` makes ``ofdExchangeStatus`` report the documents and
    their oldest time, keeps new documents unsent meanwhile, and ``--off`` sends them all."""
    state_dir = tmp_path / "simulator"
    register = SimulatorRegister(state_dir)
    register.open()
    try:
        since = "2026-11-05T10:00:00+03:00"
        set_ofd_backlog(state_dir, OfdBacklog(count=2, since=since))
        register.process({"type": "openShift", "operator": {"name": "Иванов И.И."}})
        register.process({"type": "reportX"})
        status = register.process({"type": "ofdExchangeStatus"})["status"]
        assert status["notSentCount"] >= 3, status  # the backlog and the shift's opening
        assert status["notSentFirstDocDateTime"] == since
        simulator_cli(tmp_path, "ofd-backlog", "--off")
        register.process({"type": "reportX"})  # the link is back: sent with the next task
        status = register.process({"type": "ofdExchangeStatus"})["status"]
        assert status["notSentCount"] == 0, status
    finally:
        register.close()
    with pytest.raises(ValueError, match="count must be an integer >= 1"):
        OfdBacklog(count=0, since=since)


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundLoop, Any]]:
    settings = StackSettings(root=tmp_path_factory.mktemp("stack"), push_buffer_delay=0.0)
    with running_appliance(settings, before_start=set_up_register) as running:
        yield running


def heartbeat_status(loop: BackgroundLoop, appliance: Any) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        entity = appliance.emulator.state.entities.get(DEVICE_ENTITY)
        for item in [] if entity is None else entity.items.values():
            if item.name == appliance.settings.kassa_id:
                status: dict[str, Any] = json.loads(item.properties.get("STATUS") or "{}")
                return status
        return {}

    result: dict[str, Any] = loop.call(read)
    return result


async def other_kassas(appliance: Any) -> None:
    """Two more kassas' heartbeats, as their daemons would write them: one silent for two
    hours (offline), one healthy."""
    emulator = appliance.emulator
    state = emulator.state
    rotated = state.rotate(state.issue_refresh_token(ADMIN_USER_ID))
    assert rotated is not None
    now = time.time()
    healthy = {"register_online": True, "queue_depth": 0, "paper": True, "shift_state": "closed"}
    for name, seen in (("kassa-healthy", now), ("kassa-silent", now - 7200)):
        values = {
            "KASSA": name,
            "STATUS": json.dumps(healthy),
            "SEEN": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(seen)),
        }
        status, body = await emulator.api.handle(
            "entity.item.add",
            {"ENTITY": DEVICE_ENTITY, "NAME": name, "PROPERTY_VALUES": values, "auth": rotated[0]},
        )
        assert status == 200, body


def test_fleet_shows_fn_expiry_and_ofd_backlog_as_alerts_worst_first(
    stack: tuple[BackgroundLoop, Any], tmp_path: Path
) -> None:
    loop, appliance = stack
    kassa = appliance.settings.kassa_id
    expiry = str(date.today() + timedelta(days=FN_DAYS))

    # The daemon's heartbeat carries the register's facts, as the fleet page's fields.
    status = wait_for(
        None,
        lambda: (s := heartbeat_status(loop, appliance)).get("ofd_unsent") and s,
        timeout=FACTS_WAIT,
        what="the register's facts in the heartbeat",
    )
    assert status["fn_expiry"] == expiry, status
    assert status["ofd_unsent"] == OFD_COUNT, status
    assert status["ofd_oldest_unsent"], status
    loop.run(other_kassas(appliance))

    with browser(tmp_path / "profile", height=1000) as driver:
        enter_app(driver, appliance.emulator.portal_page_url(ADMIN))
        wait_for(driver, lambda: by_test(driver, "nav-fleet"), what="nav").click()
        cards = wait_for(
            driver,
            lambda: (
                len(all_by_test(driver, "fleet-kassa")) == 3 and all_by_test(driver, "fleet-kassa")
            ),
            what="three kassas",
        )
        order = [c.get_attribute("data-kassa") for c in cards]
        assert order == [kassa, "kassa-silent", "kassa-healthy"], order

        ours = cards[0]
        badges = ours.find_elements("css selector", "[data-severity]")
        found = [(b.get_attribute("data-test"), b.get_attribute("data-severity")) for b in badges]
        # Worst first: the OFD backlog (26 days: the FN blocks at 30) is critical, the FN
        # expiring in 10 days a warning (critical from 7).
        assert found == [("problem-ofd-backlog", "critical"), ("problem-fn-expiry", "warning")], (
            found
        )
        ofd_text = badges[0].text
        assert f"{OFD_COUNT} док." in ofd_text and f"{OFD_DAYS} дн." in ofd_text, ofd_text
        assert "4 дн." in ofd_text, ofd_text  # blocking in 30 - 26 days
        fn_text = badges[1].text
        assert f"через {FN_DAYS} дн." in fn_text, fn_text  # calendar days to the date
        facts = ours.text
        assert status["fn_number"] in facts and status["serial"] in facts, facts
        assert str(OFD_COUNT) in facts

        silent = cards[1].find_elements("css selector", "[data-severity]")
        assert [
            (b.get_attribute("data-test"), b.get_attribute("data-severity")) for b in silent
        ] == [("problem-offline", "critical")]
        assert cards[2].find_elements("css selector", '[data-test="problem-none"]')
        screenshot(driver, "fleet-alerts")
