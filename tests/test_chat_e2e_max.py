"""Whole conversations with the MAX bot, end to end: a technician in the MAX Bot API
emulator (its user controls), the real daemon process long-polling it and printing on the
simulator what the chat sent to the Bitrix24 KASSAJOB outbox, and the QR image coming back
into the MAX chat through reply delivery — decoded with zbar and compared with the QR string
the register returned. Every Bot API exchange is checked against the official schema.

One appliance serves the whole module (each test is its own technician); the tests that
restart or SIGKILL the daemon leave it running again.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from chat_e2e_support import (
    MAX_TOKEN,
    ChatStack,
    MaxChat,
    chat_stack,
    item_result,
    item_task,
    max_api,
    wait_until,
)
from kassa_appliance.bitrix.jobs import STATE_DONE, STATE_FAILED
from kassa_appliance.fiscal.journal_deliveries import SENT
from kassa_appliance.registers.factory import simulator_state_dir
from kassa_appliance.registers.simulator_faults import Fault, clear_faults, set_fault
from kassa_appliance.testbeds.demo_chat import zbar_decode
from kassa_appliance.testbeds.maxapi.server import MaxApiEmulator
from kassa_appliance.testbeds.maxapi.user import EmulatedMaxUser
from maxbot_support import Emulator

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

FIRST_USER = 4100017
CASHIERS = ",".join(f"{FIRST_USER + n}=Мастер {n} И.И." for n in range(12))
STRANGER = 4199999
SPACE = "\u202f"  # the thousands separator of the bot's amounts


@dataclass
class Office:
    appliance: ChatStack
    max: MaxApiEmulator
    users: list[EmulatedMaxUser] = field(default_factory=list)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def office(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Office]:
    root = tmp_path_factory.mktemp("chat-max")
    async with max_api() as emulator:
        bot = {
            "enabled": True,
            "token": MAX_TOKEN,
            "api_url": emulator.url,
            "poll_timeout": 5,
            "cashiers": CASHIERS,
        }
        async with chat_stack(root, {"maxbot": bot}) as appliance:
            office = Office(appliance, emulator)
            try:
                yield office
            finally:
                for user in office.users:
                    await user.aclose()
        # every request the daemon made and every answer, against the official OpenAPI schema
        Emulator(emulator.url, emulator).assert_traffic_valid()


def technician(office: Office, number: int) -> MaxChat:
    """A technician of their own (``number`` in the cashier list); closed with the office."""
    chat = MaxChat(EmulatedMaxUser(office.max.url, FIRST_USER + number))
    office.users.append(chat.user)
    return chat


def of(chat: MaxChat) -> Callable[[dict[str, Any]], bool]:
    """The reply targets of one technician's chat with the bot."""
    return lambda t: t.get("kind") == "maxchat" and t["chat_id"] == str(chat.user.chat_id)


async def up_to_preview(chat: MaxChat, *, card: bool = False) -> str:
    await chat.write("Замена смесителя 1500\nКран 2 х 350", until="Черновик чека")
    await chat.press("Пробить", until="Как платит")
    if card:
        await chat.press("Картой", until="электронный чек")
        await chat.write("8 916 123-45-67", until="Где вы принимаете")
    else:
        await chat.press("Наличными", until="электронный чек")
        await chat.press("Без электронного чека", until="Где вы принимаете")
    return await chat.write("г. Москва, ул. Ленина, д. 5, кв. 12", until="Проверьте чек")


async def printed_once(office: Office, chat: MaxChat, sells_before: int) -> None:
    """The chat's one job is done, printed once, and its one reply recorded as sent."""
    appliance = office.appliance
    await wait_until(lambda: len(appliance.jobs(of(chat))) == 1, "the job in KASSAJOB")
    [item] = appliance.jobs(of(chat))
    await wait_until(lambda: item.properties.get("STATE") == STATE_DONE, "the job done")
    await wait_until(
        lambda: appliance.deliveries(item.name) == [("maxchat", SENT)], "the reply recorded"
    )
    [(text, png)] = await chat.images()
    assert zbar_decode(png) == item_result(item)["qr"]
    assert "https://kkt-online.nalog.ru/?" in text
    assert appliance.sells() == sells_before + 1


async def wait_for_image(chat: MaxChat) -> None:
    await chat.user.wait_for_receipts(1, timeout=45)


async def test_the_happy_path_prints_once_and_brings_the_qr_back(office: Office) -> None:
    chat = technician(office, 0)
    draft = await chat.write(
        "Замена смесителя 1500\nКран 2 х 350\nдоставка 300 р\nПрокладка\n2 шт по 99,90",
        until="Черновик чека",
    )
    for line in (
        f"1. Замена смесителя — 1 шт × 1{SPACE}500,00 ₽ = 1{SPACE}500,00 ₽",
        "2. Кран — 2 шт × 350,00 ₽ = 700,00 ₽",
        "3. доставка — 1 шт × 300,00 ₽ = 300,00 ₽",
        "4. Прокладка — 2 шт × 99,90 ₽ = 199,80 ₽",
        f"Итого: 2{SPACE}699,80 ₽",
    ):
        assert line in draft
    await chat.press("Пробить", until="Как платит")
    await chat.press("Картой", until="электронный чек")
    await chat.write("8 916 123-45-67", until="Где вы принимаете")
    preview = await chat.write("г. Москва, ул. Ленина, д. 5, кв. 12", until="Проверьте чек")
    assert "Электронный чек: +79161234567" in preview and "Касса: office-1" in preview
    assert office.appliance.jobs(of(chat)) == []  # nothing before [Пробить]
    sells = office.appliance.sells()
    await chat.press("Пробить", until="отправлен на кассу")
    await wait_for_image(chat)
    await printed_once(office, chat, sells)
    [item] = office.appliance.jobs(of(chat))
    task = item_task(item)
    names = [position["name"] for position in task["items"]]
    assert names == ["Замена смесителя", "Кран", "доставка", "Прокладка"]
    assert task["clientInfo"]["emailOrPhone"] == "+79161234567"
    assert task["paymentsPlace"] == "г. Москва, ул. Ленина, д. 5, кв. 12"
    assert task["operator"]["name"] == "Мастер 0 И.И."


async def test_an_edit_changes_what_is_printed(office: Office) -> None:
    chat = technician(office, 1)
    await up_to_preview(chat)
    await chat.press("Изменить", until="Что изменить")
    removed = await chat.press("Убрать 1.", until="Проверьте чек")
    assert "Позиция 1 «Замена смесителя» убрана" in removed
    await chat.press("Изменить", until="Что изменить")
    await chat.press("Оплата", until="Как платит")
    await chat.press("Картой", until="Проверьте чек")
    sells = office.appliance.sells()
    await chat.press("Пробить", until="отправлен на кассу")
    await wait_for_image(chat)
    await printed_once(office, chat, sells)
    [item] = office.appliance.jobs(of(chat))
    task = item_task(item)
    assert [position["name"] for position in task["items"]] == ["Кран"]
    assert task["payments"][0]["type"] == "electronically"


async def test_cancel_drops_the_draft_and_creates_nothing(office: Office) -> None:
    chat = technician(office, 2)
    await chat.write("Замена смесителя 1500", until="Черновик чека")
    await chat.press("Пробить", until="Как платит")
    await chat.press("Наличными", until="электронный чек")
    await chat.press("Отмена", until="Черновик выброшен")
    await chat.write("/отмена", until="Черновика нет")
    assert await chat.images() == [] and office.appliance.jobs(of(chat)) == []


async def test_a_malformed_line_and_an_invalid_contact_are_explained(office: Office) -> None:
    chat = technician(office, 3)
    await chat.write("Замена смесителя 1500", until="Черновик чека")
    answer = await chat.write("Кран 350\nФильтр пара штук", until="Строка 2")
    assert "Строка 2 «Фильтр пара штук»" in answer and "Например" in answer
    draft = await chat.write("Фильтр 2 шт по 120", until="Черновик чека")
    assert "1. Замена смесителя" in draft and "2. Фильтр" in draft and "Кран" not in draft
    await chat.press("Пробить", until="Как платит")
    await chat.press("Картой", until="электронный чек")
    answer = await chat.write("ivanov@", until="не e-mail")
    assert "«ivanov@» — не e-mail и не телефон" in answer
    await chat.write("ivanov@example.ru", until="Где вы принимаете")


async def test_a_refused_receipt_is_explained_without_a_qr(office: Office) -> None:
    chat = technician(office, 4)
    appliance = office.appliance
    await up_to_preview(chat)
    sells = appliance.sells()
    before = len(await chat.texts())
    set_fault(simulator_state_dir(appliance.data_dir), "fn_fault", Fault(count=1))
    try:
        await chat.press("Пробить", until="отправлен на кассу")
        refusal = await chat.answer(before, "не пробит")
    finally:
        clear_faults(simulator_state_dir(appliance.data_dir))
    assert "❌" in refusal
    [item] = appliance.jobs(of(chat))
    assert item.properties.get("STATE") == STATE_FAILED
    await wait_until(
        lambda: appliance.deliveries(item.name) == [("maxchat", SENT)], "the refusal recorded"
    )
    assert await chat.images() == [] and appliance.sells() == sells
    assert sum("не пробит" in text for text in await chat.texts()) == 1


async def test_a_restart_mid_conversation_continues(office: Office) -> None:
    chat = technician(office, 5)
    await chat.write("Замена смесителя 1500", until="Черновик чека")
    await chat.press("Пробить", until="Как платит")
    await chat.press("Наличными", until="электронный чек")
    await office.appliance.stack.restart_daemon()  # SIGTERM, then a new process
    await chat.press("Без электронного чека", until="Где вы принимаете", timeout=60)
    await chat.write("г. Москва, ул. Ленина, д. 5", until="Проверьте чек")
    sells = office.appliance.sells()
    await chat.press("Пробить", until="отправлен на кассу")
    await wait_for_image(chat)
    await printed_once(office, chat, sells)


async def test_a_redelivered_update_creates_no_second_job(office: Office) -> None:
    chat = technician(office, 6)
    await chat.write("Замена смесителя 1500", until="Черновик чека")
    written = chat.last_marker
    await chat.press("Пробить", until="Как платит")
    await chat.press("Наличными", until="электронный чек")
    await chat.press("Без электронного чека", until="Где вы принимаете")
    await chat.write("г. Москва, ул. Ленина, д. 5", until="Проверьте чек")
    sells = office.appliance.sells()
    await chat.press("Пробить", until="отправлен на кассу")
    confirmed = chat.last_marker
    await wait_for_image(chat)
    await printed_once(office, chat, sells)
    messages = len(await chat.texts())
    # MAX gives the same updates again (a commit it lost): the first text and the confirm
    again = [
        int((await chat.user.http.post(f"/_emulator/updates/{marker}/redeliver")).json()["marker"])
        for marker in (written, confirmed)
    ]
    marker_file = office.appliance.data_dir / "maxbot" / "marker.json"
    await wait_until(lambda: saved_marker(marker_file) > max(again), "the updates handled")
    assert len(office.appliance.jobs(of(chat))) == 1
    assert len(await chat.images()) == 1 and office.appliance.sells() == sells + 1
    assert (await chat.texts())[messages:] == []


def saved_marker(path: Path) -> int:
    """The marker the bot saved after handling a batch (the next one it asks for); 0."""
    try:
        return int(json.loads(path.read_text())["marker"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


async def test_sigkill_between_printing_and_replying_replies_once(office: Office) -> None:
    chat = technician(office, 7)
    appliance = office.appliance
    await up_to_preview(chat, card=True)
    sells = appliance.sells()
    appliance.marker.write_text("pause")
    try:
        await chat.press("Пробить", until="отправлен на кассу")
        await wait_for_image(chat)
        await wait_until(lambda: "paused after sending delivery" in appliance.log(), "the pause")
        [item] = appliance.jobs(of(chat))
        assert appliance.deliveries(item.name) != [("maxchat", SENT)]  # sent, not recorded
        await appliance.stack.kill_daemon()
    finally:
        appliance.marker.unlink(missing_ok=True)
    await appliance.stack.restart_daemon()
    await printed_once(office, chat, sells)


async def test_a_user_not_on_the_list_is_refused_and_nothing_is_created(office: Office) -> None:
    user = EmulatedMaxUser(office.max.url, STRANGER)
    try:
        chat = MaxChat(user)
        answer = await chat.write("Кран 350", until="ваш номер")
        assert "Здравствуйте" in answer and f"ваш номер: {STRANGER}" in answer
        assert await user.buttons() == {}
        assert office.appliance.jobs(of(chat)) == []
    finally:
        await user.aclose()
