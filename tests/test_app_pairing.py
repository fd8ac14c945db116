"""Pairing a daemon from the code the Kassa app's *Pairing* page shows, end to end: the admin
types the kassa id and the app's client id and secret, the page makes the code from the
frame's own refresh tokens, the real configure hook (against the fake ``snapctl`` of
test_hooks) turns ``bitrix.pairing=<code>`` into ``config.json``, the real daemon starts on
it, and the page shows the kassa online once its first heartbeat (a KASSADEV item) lands."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app_browser import (
    ADMIN,
    BackgroundLoop,
    browser,
    by_test,
    enter_app,
    preinstall,
    running_portal,
    screenshot,
    set_value,
    wait_for,
)
from kassa_appliance.appliance.config import load_config, save_config
from kassa_appliance.appliance.daemon import daemon_command
from kassa_appliance.appliance.hooks.configure import configure
from kassa_appliance.appliance.hooks.snapctl import Snapctl
from kassa_appliance.bitrix.pairing_code import decode_pairing_code
from kassa_appliance.bitrix.protocol import DEVICE_ENTITY
from kassa_appliance.testbeds.bitrix24.app import Emulator
from test_hooks import SERVICE, FakeSnapd, data_dir, snapd

__all__ = ["data_dir", "snapd"]  # fixtures of test_hooks

KASSA = "shop-7"
ONLINE_WAIT = 60.0
"""The daemon starts, links up and sends its first heartbeat; the page looks every 5 s."""


@pytest.fixture
def portal() -> Iterator[tuple[BackgroundLoop, Emulator]]:
    with running_portal(preinstall) as running:
        yield running


@pytest.fixture
def daemon_log(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Daemons a test starts; each is stopped (SIGTERM, then killed) at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def start_daemon(data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    for variable in ("SNAP", "SNAP_DATA", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(variable, None)  # a plain process, not a snap service
    with open(log, "ab") as stderr:
        return subprocess.Popen(
            daemon_command(data_dir, "info"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**env, "PYTHONIOENCODING": "utf-8"},
        )


def test_a_daemon_paired_from_the_page_code_comes_online_on_the_page(
    portal: tuple[BackgroundLoop, Emulator],
    snapd: FakeSnapd,
    data_dir: Path,
    daemon_log: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    loop, emulator = portal
    app_credentials = loop.call(emulator.credentials)
    with browser(tmp_path / "profile", height=1000) as driver:
        enter_app(driver, emulator.portal_page_url(ADMIN))
        wait_for(driver, lambda: by_test(driver, "nav-pairing"), what="nav").click()
        wait_for(driver, lambda: by_test(driver, "page-pairing"), what="pairing page")
        set_value(driver, "pair-kassa", KASSA)
        set_value(driver, "pair-client-id", app_credentials["client_id"])
        set_value(driver, "pair-client-secret", app_credentials["client_secret"])
        by_test(driver, "pair-make").click()
        command = wait_for(
            driver,
            lambda: by_test(driver, "pair-command").get_attribute("value"),
            what="the pairing command",
        )
        prefix = "sudo snap set kassa-appliance bitrix.pairing="
        assert command.startswith(prefix), command
        code = command.removeprefix(prefix)
        assert app_credentials["client_secret"] not in by_test(driver, "page-pairing").text
        assert by_test(driver, "pair-waiting").is_displayed()

        pairing = decode_pairing_code(code)
        domain = emulator.url.split("://", 1)[1]
        assert (pairing.portal, pairing.client_id, pairing.kassa) == (
            f"https://{domain}",
            app_credentials["client_id"],
            KASSA,
        )
        # The page's tokens are the frame's own chains: not the ones the SDK keeps refreshing.
        frame_tokens = loop.call(
            lambda: [t for s in emulator.frames.sessions.values() for t in s.refresh_tokens]
        )
        assert pairing.refresh_token in frame_tokens

        # The appliance: `sudo snap set kassa-appliance bitrix.pairing=<code>` runs the real
        # configure hook, which checks every value by its key's rules and writes config.json.
        snapd.snap_set("register.driver=simulator", f"bitrix.pairing={code}")
        outcome = configure(Snapctl(), data_dir, service=SERVICE)
        assert outcome.written and any("bitrix.pairing: applied" in n for n in outcome.notes)
        config = load_config(data_dir, on_device=True)
        assert config.kassa.id == KASSA
        assert config.bitrix.refresh_token is not None
        tokens = config.bitrix.refresh_token.get_secret_value()
        assert tokens.split(",")[0] == pairing.refresh_token
        # Off a device only: the emulator speaks plain http on loopback and is its own
        # OAuth server (a device talks https to the portal and oauth.bitrix.info).
        bitrix = config.bitrix.model_copy(
            update={"portal": emulator.url, "token_url": emulator.token_url}
        )
        save_config(data_dir, config.model_copy(update={"bitrix": bitrix}))

        daemon_log.append(start_daemon(data_dir, tmp_path / "daemon.log"))

        def online() -> Any:
            process = daemon_log[0]
            if process.poll() is not None:
                log = (tmp_path / "daemon.log").read_text("utf-8", "replace")[-3000:]
                raise AssertionError(f"the daemon exited with {process.returncode}\n{log}")
            return by_test(driver, "pair-online").is_displayed()

        wait_for(driver, online, timeout=ONLINE_WAIT, what="the kassa online on the page")
        screenshot(driver, "pairing-online")

    def kassas() -> list[str]:
        entity = emulator.state.entities.get(DEVICE_ENTITY)
        return [] if entity is None else [item.name for item in entity.items.values()]

    assert loop.call(kassas) == [KASSA]
