"""Whole conversations on MAX with the real daemon (a subprocess on the simulator, paired with
the Bitrix24 emulator and its push server) and the MAX emulator: a technician writes
positions, taps through payment and the electronic-copy question and confirms the preview;
the job goes through the Bitrix24 outbox to the register, and the QR image that reaches the
MAX chat decodes (zbar) to exactly the QR string the register returned. A re-delivered tap
prints nothing twice, a user not on the list is refused, a SIGKILL between sending the
reply and recording it still gives one reply, and all the traffic matches the schema."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.testbeds.maxapi.stack import MaxOffice, MaxOfficeSettings
from kassa_appliance.testbeds.maxapi.user import EmulatedMaxUser
from maxbot_support import TOKEN, USER_ID, Emulator, decode_qr

WAIT = 60.0
CASHIERS = f"{USER_ID}=Мастер Иванов И.И."


async def until(probe: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := probe()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[MaxOffice]:
    settings = MaxOfficeSettings(tmp_path, TOKEN, CASHIERS, poll_timeout=5)
    async with MaxOffice(settings) as running:
        yield running


async def confirm_receipt(user: EmulatedMaxUser, lines: str) -> dict[str, Any]:
    await user.say(lines)
    await user.tap("Пробить")
    await user.tap("Наличными")
    await user.tap("Без электронного чека")
    preview = (await user.bot_messages())[-1]["body"]["text"]
    assert "Проверьте чек" in preview
    return await user.tap("Пробить")


def emulator_of(office: MaxOffice) -> Emulator:
    assert office.max is not None
    return Emulator(office.max_url, office.max)


async def test_a_receipt_from_a_max_chat_comes_back_as_a_readable_qr(
    office: MaxOffice, tmp_path: Path
) -> None:
    stranger = EmulatedMaxUser(office.max_url, 999)
    await stranger.say("Кран 2 х 350")
    await stranger.wait_for_messages(1)
    assert "999" in (await stranger.bot_messages())[0]["body"]["text"]

    user = EmulatedMaxUser(office.max_url, USER_ID)
    confirm = await confirm_receipt(user, "Замена смесителя 1500\nКран 2 х 350")
    [item] = await until(office.jobs, "the KASSAJOB item")
    await until(lambda: item.properties.get("STATE") in ("done", "failed"), "the print")
    assert item.properties["STATE"] == "done", item.properties.get("ERROR")
    qr = json.loads(item.properties["RESULT"])["qr"]
    [reply] = await user.wait_for_receipts(1)
    assert decode_qr(await user.image_of(reply), tmp_path) == qr
    assert reply["body"]["text"].rsplit("\n", 1)[-1].startswith("ref ")

    # the confirming tap delivered again (MAX lost a commit): nothing more is printed
    emulator = emulator_of(office)
    copy = await asyncio.to_thread(emulator.redeliver, confirm["marker"])
    await until(lambda: emulator.state()["committed"] > copy["marker"], "the copy to be taken")
    await asyncio.sleep(0.5)
    assert len(office.jobs()) == 1 and len(await user.receipts()) == 1
    await user.aclose()
    await stranger.aclose()
    assert await office.stop_daemon() == 0
    assert TOKEN not in office.log_path.read_text(encoding="utf-8", errors="replace")
    await asyncio.to_thread(emulator.assert_traffic_valid)


async def test_sigkill_between_the_reply_and_its_record_gives_one_reply(tmp_path: Path) -> None:
    marker = tmp_path / "pause-after-send"
    settings = MaxOfficeSettings(
        tmp_path,
        TOKEN,
        CASHIERS,
        poll_timeout=5,
        environment={
            "KASSA_DEBUG_HOOKS": "1",
            "KASSA_DEBUG_PAUSE_AFTER_DELIVERY_SEND": str(marker),
        },
    )
    async with MaxOffice(settings) as office:
        marker.touch()
        user = EmulatedMaxUser(office.max_url, USER_ID)
        await confirm_receipt(user, "доставка 300 р")
        await user.wait_for_receipts(1)
        await until(lambda: "debug hook: paused" in office.log_tail(200), "the pause")
        await office.kill_daemon()
        marker.unlink()
        await office.start_daemon()
        await until(lambda: "was sent before" in office.log_tail(400), "the look before sending")
        await asyncio.sleep(1.0)
        assert len(await user.receipts()) == 1
        assert len(office.jobs()) == 1
        await user.aclose()
        await asyncio.to_thread(emulator_of(office).assert_traffic_valid)
