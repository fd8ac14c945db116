"""The bot host inside the real daemon (a subprocess on the simulator, paired with the
in-process emulator): with ``b24bot.enabled`` it registers the bot once, polls its events
(``b24bot`` in status.json), hands a message to the conversation engine, which answers in
the dialog, registers the ``b24chat`` sender with reply delivery, and after a restart finds
the same bot again instead of registering another."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from b24bot_support import wait_until
from kassa_appliance.appliance.config import (
    BitrixConfig,
    Config,
    KassaConfig,
    RegisterConfig,
    save_config,
)
from kassa_appliance.appliance.daemon import daemon_command, read_status_file
from kassa_appliance.channels.b24bot.settings import B24BotConfig
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.rest_imbot_state import imbot_portal
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID

PAIRING_KEYS = ("portal", "client_id", "client_secret", "refresh_token", "token_url")
WAIT = 60.0


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator() as running:
        yield running


def configure(data_dir: Path, pairing: dict[str, Any]) -> None:
    save_config(
        data_dir,
        Config(
            register=RegisterConfig(driver="simulator"),
            kassa=KassaConfig(id="kassa-bot"),
            bitrix=BitrixConfig.model_validate({k: pairing[k] for k in PAIRING_KEYS}),
            b24bot=B24BotConfig.model_validate(
                {"enabled": True, "idle_poll_seconds": 1.0, "cashiers": "2=Мастер Иванов И.И."}
            ),
        ),
    )


def clean_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("NOTIFY_", "WATCHDOG_", "SNAP", "KASSA_"))
    }
    return {**env, "PYTHONUNBUFFERED": "1"}


async def start_daemon(data_dir: Path) -> asyncio.subprocess.Process:
    with open(data_dir / "daemon.log", "ab") as log:
        return await asyncio.create_subprocess_exec(
            *daemon_command(data_dir, "info"),
            env=clean_env(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )


async def stop_daemon(daemon: asyncio.subprocess.Process) -> None:
    if daemon.returncode is None:
        daemon.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(daemon.wait(), WAIT) == 0


def bot_status(data_dir: Path) -> dict[str, Any]:
    status = read_status_file(data_dir) or {}
    section: dict[str, Any] = status.get("b24bot") or {}
    return section


async def test_the_daemon_registers_the_bot_once_and_polls_it(
    emulator: Emulator, tmp_path: Path
) -> None:
    configure(tmp_path, emulator.credentials())
    portal = imbot_portal(emulator.state)
    daemon = await start_daemon(tmp_path)
    try:
        await wait_until(lambda: len(portal.bots) == 1, "bot registered", WAIT)
        await wait_until(
            lambda: emulator.api.calls.get("imbot.v2.event.get", 0) >= 2, "polling", WAIT
        )
        (bot,) = portal.bots.values()
        portal.user_writes(bot.id, CASHIER_USER_ID, "Замена смесителя 1500")
        await wait_until(lambda: portal.sent_by(bot.id, "2"), "the bot answered", WAIT)
    finally:
        await stop_daemon(daemon)
    assert bot.code == "kassa_bot" and bot.type == "personal" and bot.event_mode == "fetch"
    status = read_status_file(tmp_path) or {}  # written at shutdown too
    assert bot_status(tmp_path)["registered"] is True and bot_status(tmp_path)["polls"] >= 2
    assert "b24chat" in (status.get("delivery") or {}).get("senders", [])
    registered = emulator.api.calls["imbot.v2.bot.register"]
    daemon = await start_daemon(tmp_path)
    try:
        polls = emulator.api.calls["imbot.v2.event.get"]
        await wait_until(
            lambda: emulator.api.calls["imbot.v2.event.get"] > polls + 1, "polling again", WAIT
        )
    finally:
        await stop_daemon(daemon)
    assert emulator.api.calls["imbot.v2.bot.register"] == registered == 1
    assert len(portal.bots) == 1
    log = (tmp_path / "daemon.log").read_text()
    assert bot.token not in log, "the bot token must never be logged"
    saved = json.loads((tmp_path / "b24bot.json").read_text())
    assert saved["bot_id"] == bot.id
