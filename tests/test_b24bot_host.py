"""The bot host (channels/b24bot) against the in-process Bitrix24 emulator on loopback:
registration idempotent across restarts, the Event.get offset persisted (a restart resumes
and handles no event twice), the adaptive poll pace within the app's REST budget, keyboards
that come back as button presses, and the b24chat sender: one reply, found again by
find_sent, the QR image that zbar decodes, permanent errors as DeliveryFailed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from b24bot_support import plain_render, wait_until, zbar_decode
from bitrix_support import oauth_client
from kassa_appliance.bitrix.budget import RestBudget
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.channels.b24bot.host import BotHost
from kassa_appliance.channels.b24bot.sender import trace_line
from kassa_appliance.channels.b24bot.settings import B24BotConfig
from kassa_appliance.channels.b24bot.state import STATE_FILE_NAME
from kassa_appliance.channels.conversation.transport import Button, Incoming
from kassa_appliance.channels.delivery.protocol import Delivery, DeliveryFailed, Outcome
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.rest_imbot_state import imbot_portal
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID

QR = "t=20261201T1030&s=1500.00&fn=9999078900012345&i=42&fp=2718281828&n=1"
USER = str(CASHIER_USER_ID)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator() as running:
        yield running


@pytest.fixture
async def rest(emulator: Emulator, tmp_path: Path) -> AsyncIterator[RestClient]:
    async with oauth_client(emulator, tmp_path / "token.json") as client:
        yield client


def config(**changes: Any) -> B24BotConfig:
    return B24BotConfig.model_validate({"enabled": True, **changes})


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Incoming] = []

    async def __call__(self, incoming: Incoming) -> None:
        self.seen.append(incoming)


@contextlib.asynccontextmanager
async def running(host: BotHost) -> AsyncIterator[BotHost]:
    task = asyncio.create_task(host.run())
    try:
        await asyncio.wait_for(host.registered.wait(), 20)
        yield host
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def outcome(state: str = "done") -> Outcome:
    if state == "done":
        return Outcome("job-1", "done", {"type": "sell"}, {"fiscalDocumentNumber": 42}, qr=QR)
    return Outcome("job-1", "failed", {}, error_code="231", error_message="нет бумаги")


def delivery(bot_id: int, key: str = "job-1:b24chat:0", state: str = "done") -> Delivery:
    target = {"kind": "b24chat", "bot_id": bot_id, "dialog_id": USER}
    return Delivery("job-1", target, key, 1, outcome(state))


async def test_registration_is_idempotent_across_restarts(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    first = BotHost(rest, tmp_path / "a", config())
    (tmp_path / "a").mkdir()
    await first.register()
    bot_id = first.state.bot_id
    assert bot_id is not None and first.state.command_id is not None
    assert emulator.api.calls["imbot.v2.bot.register"] == 1
    again = BotHost(rest, tmp_path / "a", config())
    await again.register()
    assert again.state.bot_id == bot_id
    assert emulator.api.calls["imbot.v2.bot.register"] == 1, "a restart must not register again"
    assert "imbot.v2.bot.get" in emulator.api.calls
    (tmp_path / "b").mkdir()  # a replacement appliance: no saved state, found by code
    replacement = BotHost(rest, tmp_path / "b", config())
    await replacement.register()
    assert replacement.state.bot_id == bot_id
    assert emulator.api.calls["imbot.v2.bot.register"] == 1
    saved = json.loads((tmp_path / "a" / STATE_FILE_NAME).read_text())
    assert saved["bot_id"] == bot_id
    assert (tmp_path / "a" / STATE_FILE_NAME).stat().st_mode & 0o777 == 0o600
    portal = imbot_portal(emulator.state)
    del portal.bots[bot_id]  # deleted in Bitrix24: registered anew
    await again.register()
    assert again.state.bot_id not in (None, bot_id)


async def test_the_offset_is_persisted_and_no_event_is_handled_twice(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    portal = imbot_portal(emulator.state)
    recorder = Recorder()
    host = BotHost(rest, tmp_path, config(active_poll_seconds=1.0))
    host.handle = recorder
    async with running(host):
        bot = host.state.bot_id
        assert bot is not None
        for n in range(3):
            portal.user_writes(bot, CASHIER_USER_ID, f"Кран {n} х 350")
        await wait_until(lambda: len(recorder.seen) == 3, "three messages handled")
        await wait_until(lambda: not portal.bots[bot].events, "the events confirmed")
    saved = json.loads((tmp_path / STATE_FILE_NAME).read_text())
    assert saved["offset"] == host.state.offset and saved["offset"] > 0
    for n in range(3, 5):
        portal.user_writes(bot, CASHIER_USER_ID, f"Кран {n} х 350")
    restarted = BotHost(rest, tmp_path, config(active_poll_seconds=1.0))
    restarted.handle = recorder
    async with running(restarted):
        await wait_until(lambda: len(recorder.seen) == 5, "the two new messages handled")
        await asyncio.sleep(1.2)  # a few more polls: nothing comes again
    texts = [i.text for i in recorder.seen]
    assert texts == [f"Кран {n} х 350" for n in range(5)]
    assert len({i.update_id for i in recorder.seen}) == 5
    assert recorder.seen[0].department_ids == (1,) and recorder.seen[0].chat_id == USER


async def test_a_failing_handler_keeps_its_event_for_the_next_poll(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    portal = imbot_portal(emulator.state)
    seen: list[str] = []

    async def flaky(incoming: Incoming) -> None:
        seen.append(incoming.text)
        if incoming.text == "два" and seen.count("два") == 1:
            raise RuntimeError("engine busy")

    host = BotHost(rest, tmp_path, config(active_poll_seconds=1.0))
    host.handle = flaky
    async with running(host):
        bot = host.state.bot_id
        assert bot is not None
        for text in ("раз", "два", "три"):
            portal.user_writes(bot, CASHIER_USER_ID, text)
        await wait_until(lambda: "три" in seen, "the batch handled after the retry")
    assert seen == ["раз", "два", "два", "три"]


async def test_the_poll_pace_adapts_and_stays_within_the_rest_budget(
    emulator: Emulator, tmp_path: Path
) -> None:
    portal = imbot_portal(emulator.state)
    budget = RestBudget()
    client = oauth_client(emulator, tmp_path / "token.json")
    client.budget = budget
    async with client:
        host = BotHost(
            client,
            tmp_path,
            config(active_poll_seconds=1.0, idle_poll_seconds=3.0, active_window_seconds=4.0),
        )
        host.handle = Recorder()
        async with running(host):
            bot = host.state.bot_id
            assert bot is not None
            loop = asyncio.get_running_loop()
            start, polls = loop.time(), host.poller.stats.polls
            await asyncio.sleep(6.5)
            idle_rate = (host.poller.stats.polls - polls) / (loop.time() - start)
            assert idle_rate <= 1 / 3.0 + 0.16, f"idle polls {idle_rate:.2f}/s"
            portal.user_writes(bot, CASHIER_USER_ID, "Замена смесителя 1500")
            await wait_until(lambda: host.poller.active, "the conversation opened")
            start, polls = loop.time(), host.poller.stats.polls
            calls_before = sum(emulator.api.calls.values())
            await asyncio.sleep(3.2)
            window = loop.time() - start
            active_rate = (host.poller.stats.polls - polls) / window
            assert 0.6 <= active_rate <= 1 / 1.0 + 0.35, f"active polls {active_rate:.2f}/s"
            all_rate = (sum(emulator.api.calls.values()) - calls_before) / window
            assert all_rate <= 2.0, f"{all_rate:.2f} REST requests/s, over the app's 2/s"
            await wait_until(lambda: not host.poller.active, "the conversation closed", 10)
            assert host.poller.interval() == 3.0
    assert budget.snapshot()["limited_answers"] == 0


async def test_buttons_go_out_as_a_keyboard_and_come_back_as_presses(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    portal = imbot_portal(emulator.state)
    recorder = Recorder()
    host = BotHost(rest, tmp_path, config(active_poll_seconds=1.0))
    host.handle = recorder
    async with running(host):
        bot = host.state.bot_id
        assert bot is not None
        keyboard = (
            (Button("Пробить", "confirm:d1"), Button("Изменить", "edit:d1")),
            (Button("Отмена", "cancel:d1"),),
        )
        sent = await host.transport.send_text(USER, "Итого 1500 ₽", keyboard=keyboard, key="k1")
        assert await host.transport.send_text(USER, "Итого", keyboard=keyboard, key="k1") == sent
        message = portal.messages[int(sent)]
        buttons = message.params["KEYBOARD"]["BUTTONS"]
        assert [b.get("TEXT") or b["TYPE"] for b in buttons] == [
            "Пробить",
            "Изменить",
            "NEWLINE",
            "Отмена",
        ]
        portal.user_presses(CASHIER_USER_ID, int(sent), "Пробить")
        portal.user_presses(CASHIER_USER_ID, int(sent), "Пробить")  # a repeated tap
        await wait_until(lambda: len(recorder.seen) == 2, "both presses handled")
    press = recorder.seen[0]
    assert (press.action, press.chat_id, press.user_id) == ("confirm:d1", USER, USER)
    assert press.update_id == recorder.seen[1].update_id, "a repeated tap is the same update"


async def test_the_sender_delivers_once_and_find_sent_finds_it(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    portal = imbot_portal(emulator.state)
    host = BotHost(rest, tmp_path, config(), render=plain_render)
    await host.register()
    bot = host.state.bot_id
    assert bot is not None
    portal.user_writes(bot, CASHIER_USER_ID, "Пробить")
    await host.poller.poll_once()  # the dialog's newest message is the look-back anchor
    first = delivery(bot)
    assert await host.sender.find_sent(first) is None, "nothing was sent yet"
    reference = await host.sender.send(first)
    for n in range(3):
        portal.user_writes(bot, CASHIER_USER_ID, f"ещё {n}")
    assert await host.sender.find_sent(first) == reference
    restarted = BotHost(rest, tmp_path, config(), render=plain_render)
    await restarted.register()
    assert await restarted.sender.find_sent(first) == reference, "found after a restart"
    assert await host.sender.find_sent(delivery(bot, key="job-2:b24chat:0")) is None
    sent = portal.sent_by(bot, USER)
    assert len(sent) == 1 and sent[0].text.endswith(trace_line(first.key))
    assert "[url=https://" in sent[0].text
    png = portal.file_bytes(sent[0].params["FILE_ID"][0])
    assert zbar_decode(png) == QR
    refusal = delivery(bot, key="job-3:b24chat:0", state="failed")
    text_only = await host.sender.send(refusal)
    assert "FILE_ID" not in portal.messages[int(text_only)].params
    assert await host.sender.find_sent(refusal) == text_only


async def test_a_dialog_the_bot_may_not_write_to_fails_for_good(
    emulator: Emulator, rest: RestClient, tmp_path: Path
) -> None:
    portal = imbot_portal(emulator.state)
    host = BotHost(rest, tmp_path, config(), render=plain_render)
    await host.register()
    bot = host.state.bot_id
    assert bot is not None
    portal.denied.add((bot, portal.private_chat(bot, CASHIER_USER_ID).id))
    with pytest.raises(DeliveryFailed) as caught:
        await host.sender.send(delivery(bot))
    assert "dialog 2" in caught.value.reason and "ACCESS_DENIED" in caught.value.reason
    plain = BotHost(rest, tmp_path / "plain", config(code="plain_bot", bot_type="bot"))
    (tmp_path / "plain").mkdir()
    await plain.register()
    assert await plain.sender.find_sent(delivery(bot)) is None
