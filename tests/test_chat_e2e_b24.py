"""Whole conversations with the Bitrix24 chat bot, end to end: a person in the emulated
Bitrix24 messenger (``imbot.v2`` events the real daemon fetches with ``Event.get``), the real
daemon process on the simulator printing what the chat sent to the KASSAJOB outbox, and the
QR image coming back into the dialog through reply delivery — decoded with zbar and compared
with the QR string the register returned.

One appliance serves the whole module (each test is its own technician, so their dialogs
do not meet); the tests that restart or SIGKILL the daemon leave it running again.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from chat_e2e_support import ChatStack, chat_stack, item_result, item_task, wait_until
from kassa_appliance.bitrix.jobs import STATE_DONE, STATE_FAILED
from kassa_appliance.fiscal.journal_deliveries import SENT
from kassa_appliance.registers.factory import simulator_state_dir
from kassa_appliance.registers.simulator_faults import Fault, clear_faults, set_fault
from kassa_appliance.testbeds.bitrix24.rest_imbot_state import imbot_portal
from kassa_appliance.testbeds.demo_chat import BotChat, zbar_decode

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

CASHIERS = ",".join(f"{user}=Мастер {user} И.И." for user in range(17, 30))
STRANGER = 99
SPACE = "\u202f"  # the thousands separator of the bot's amounts


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def appliance(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ChatStack]:
    root = tmp_path_factory.mktemp("chat-b24")
    bot = {"enabled": True, "active_poll_seconds": 1, "idle_poll_seconds": 1, "cashiers": CASHIERS}
    async with chat_stack(root, {"b24bot": bot}) as running:
        yield running


async def technician(appliance: ChatStack, user_id: int) -> BotChat:
    assert appliance.stack.emulator is not None
    chat = BotChat(appliance.stack.emulator, user_id)
    await chat.wait_for_bot()
    return chat


def of(user_id: int) -> Callable[[dict[str, Any]], bool]:
    """The reply targets of one technician's dialog with the bot."""
    return lambda target: target.get("kind") == "b24chat" and target["dialog_id"] == str(user_id)


async def up_to_preview(chat: BotChat, *, card: bool = False) -> str:
    await chat.write("Замена смесителя 1500\nКран 2 х 350", until="Черновик чека")
    await chat.press("Пробить", until="Как платит")
    if card:
        await chat.press("Картой", until="электронный чек")
        await chat.write("8 916 123-45-67", until="Где вы принимаете")
    else:
        await chat.press("Наличными", until="электронный чек")
        await chat.press("Без электронного чека", until="Где вы принимаете")
    return await chat.write("г. Москва, ул. Ленина, д. 5, кв. 12", until="Проверьте чек")


async def printed_once(appliance: ChatStack, chat: BotChat, sells_before: int) -> None:
    """The chat's one job is done, printed once, and its one reply recorded as sent."""
    [item] = appliance.jobs(of(chat.user_id))
    await wait_until(lambda: item.properties.get("STATE") == STATE_DONE, "the job done")
    await wait_until(
        lambda: appliance.deliveries(item.name) == [("b24chat", SENT)], "the reply recorded"
    )
    [image] = chat.images()
    assert zbar_decode(chat.file_bytes(image.file_id or 0)) == item_result(item)["qr"]
    assert "https://kkt-online.nalog.ru/?" in image.text
    assert appliance.sells() == sells_before + 1


async def test_the_happy_path_prints_once_and_brings_the_qr_back(appliance: ChatStack) -> None:
    chat = await technician(appliance, 17)
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
    assert "Как платит покупатель" in await chat.press("Пробить", until="Как платит")
    await chat.press("Картой", until="электронный чек")
    await chat.write("8 916 123-45-67", until="Где вы принимаете")
    preview = await chat.write("г. Москва, ул. Ленина, д. 5, кв. 12", until="Проверьте чек")
    assert "Электронный чек: +79161234567" in preview and "Касса: office-1" in preview
    assert appliance.jobs(of(17)) == []  # nothing before [Пробить]
    sells = appliance.sells()
    await chat.press("Пробить", until="отправлен на кассу")
    await wait_until(lambda: bool(chat.images()), "the QR image in the chat")
    await printed_once(appliance, chat, sells)
    [item] = appliance.jobs(of(17))
    task = item_task(item)
    assert [position["name"] for position in task["items"]] == [
        "Замена смесителя",
        "Кран",
        "доставка",
        "Прокладка",
    ]
    assert task["clientInfo"]["emailOrPhone"] == "+79161234567"
    assert task["paymentsPlace"] == "г. Москва, ул. Ленина, д. 5, кв. 12"
    assert task["operator"]["name"] == "Мастер 17 И.И."
    [image] = chat.images()
    assert f"Итого: 2{SPACE}699,80 ₽" in image.text and "ФД №" in image.text


async def test_an_edit_changes_what_is_printed(appliance: ChatStack) -> None:
    chat = await technician(appliance, 18)
    await up_to_preview(chat)
    assert "Что изменить" in await chat.press("Изменить", until="Что изменить")
    removed = await chat.press("Убрать 1.", until="Проверьте чек")
    assert "Позиция 1 «Замена смесителя» убрана" in removed
    await chat.press("Изменить", until="Что изменить")
    await chat.press("Оплата", until="Как платит")
    preview = await chat.press("Картой", until="Проверьте чек")
    assert "Замена смесителя" not in preview.rsplit("Проверьте чек", 1)[1]
    sells = appliance.sells()
    await chat.press("Пробить", until="отправлен на кассу")
    await wait_until(lambda: bool(chat.images()), "the QR image in the chat")
    await printed_once(appliance, chat, sells)
    [item] = appliance.jobs(of(18))
    task = item_task(item)
    assert [position["name"] for position in task["items"]] == ["Кран"]
    assert task["payments"][0]["type"] == "electronically"


async def test_cancel_drops_the_draft_and_creates_nothing(appliance: ChatStack) -> None:
    chat = await technician(appliance, 19)
    await chat.write("Замена смесителя 1500", until="Черновик чека")
    await chat.press("Пробить", until="Как платит")
    await chat.press("Наличными", until="электронный чек")
    assert "Черновик выброшен" in await chat.press("Отмена", until="Черновик выброшен")
    assert "Черновика нет" in await chat.write("/отмена", until="Черновика нет")
    assert chat.images() == [] and appliance.jobs(of(19)) == []


async def test_a_malformed_line_is_explained_and_the_draft_kept(appliance: ChatStack) -> None:
    chat = await technician(appliance, 20)
    await chat.write("Замена смесителя 1500", until="Черновик чека")
    answer = await chat.write("Кран 350\nФильтр пара штук", until="Строка 2")
    assert "Строка 2 «Фильтр пара штук»" in answer and "Например" in answer
    draft = await chat.write("Фильтр 2 шт по 120", until="Черновик чека")
    assert "1. Замена смесителя" in draft and "2. Фильтр" in draft and "Кран" not in draft


async def test_an_invalid_buyer_contact_is_asked_again(appliance: ChatStack) -> None:
    chat = await technician(appliance, 21)
    await chat.write("Замена смесителя 1500", until="Черновик чека")
    await chat.press("Пробить", until="Как платит")
    await chat.press("Картой", until="электронный чек")
    answer = await chat.write("ivanov@", until="не e-mail")
    assert "«ivanov@» — не e-mail и не телефон" in answer
    assert "Где вы принимаете" in await chat.write("ivanov@example.ru", until="Где вы")


async def test_a_refused_receipt_is_explained_without_a_qr(appliance: ChatStack) -> None:
    chat = await technician(appliance, 22)
    await up_to_preview(chat)
    sells = appliance.sells()
    set_fault(simulator_state_dir(appliance.data_dir), "fn_fault", Fault(count=1))
    try:
        await chat.press("Пробить", until="отправлен на кассу")
        refusal = await chat.answer("не пробит", 45.0, "the refusal")
    finally:
        clear_faults(simulator_state_dir(appliance.data_dir))
    assert "❌" in refusal
    [item] = appliance.jobs(of(22))
    assert item.properties.get("STATE") == STATE_FAILED
    await wait_until(
        lambda: appliance.deliveries(item.name) == [("b24chat", SENT)], "the refusal recorded"
    )
    assert chat.images() == [] and appliance.sells() == sells
    assert sum("не пробит" in m.text for m in chat.bot_messages()) == 1


async def test_a_restart_mid_conversation_continues(appliance: ChatStack) -> None:
    chat = await technician(appliance, 23)
    await chat.write("Замена смесителя 1500", until="Черновик чека")
    await chat.press("Пробить", until="Как платит")
    await chat.press("Наличными", until="электронный чек")
    await appliance.stack.restart_daemon()  # SIGTERM, then a new process
    await chat.press("Без электронного чека", until="Где вы принимаете", timeout=60)
    await chat.write("г. Москва, ул. Ленина, д. 5", until="Проверьте чек")
    sells = appliance.sells()
    await chat.press("Пробить", until="отправлен на кассу")
    await wait_until(lambda: bool(chat.images()), "the QR image in the chat")
    await printed_once(appliance, chat, sells)


async def test_a_redelivered_update_creates_no_second_job(appliance: ChatStack) -> None:
    chat = await technician(appliance, 24)
    portal = imbot_portal(chat.emulator.state)
    bot = chat.bot
    await chat.write("Замена смесителя 1500", until="Черновик чека")
    written = portal.messages[chat.lines[0].message_id]
    await chat.press("Пробить", until="Как платит")
    await chat.press("Наличными", until="электронный чек")
    await chat.press("Без электронного чека", until="Где вы принимаете")
    await chat.write("г. Москва, ул. Ленина, д. 5", until="Проверьте чек")
    sells = appliance.sells()
    preview, _ = chat.button_message("Пробить")
    await chat.press("Пробить", until="отправлен на кассу")
    await wait_until(lambda: bool(chat.images()), "the QR image in the chat")
    await printed_once(appliance, chat, sells)
    messages = len(chat.bot_messages())
    # Event.get gives the same updates again (as after a lost offset): the text and the tap
    dialog = portal.chats[written.chat_id]
    payload = portal._payload(bot, dialog, written, 24)  # the data of the event it queued
    again = [
        portal.queue_event(bot, "ONIMBOTV2MESSAGEADD", payload),
        portal.user_presses(24, preview.id, "Пробить"),
    ]
    await wait_until(
        lambda: not {e["eventId"] for e in bot.events} & set(again), "the updates handled"
    )
    assert len(appliance.jobs(of(24))) == 1
    assert len(chat.images()) == 1 and appliance.sells() == sells + 1
    assert [m.text for m in chat.bot_messages()[messages:]] == []


async def test_sigkill_between_printing_and_replying_replies_once(appliance: ChatStack) -> None:
    chat = await technician(appliance, 25)
    await up_to_preview(chat, card=True)
    sells = appliance.sells()
    appliance.marker.write_text("pause")
    try:
        await chat.press("Пробить", until="отправлен на кассу")
        await wait_until(lambda: bool(chat.images()), "the QR image sent")
        await wait_until(lambda: "paused after sending delivery" in appliance.log(), "the pause")
        [item] = appliance.jobs(of(25))
        assert appliance.deliveries(item.name) != [("b24chat", SENT)]  # sent, not recorded
        await appliance.stack.kill_daemon()
    finally:
        appliance.marker.unlink(missing_ok=True)
    await appliance.stack.restart_daemon()
    await printed_once(appliance, chat, sells)
    assert len(chat.images()) == 1


async def test_a_user_not_on_the_list_is_refused_and_nothing_is_created(
    appliance: ChatStack,
) -> None:
    chat = await technician(appliance, STRANGER)
    answer = await chat.write("Кран 350", until="ваш номер")
    assert "Здравствуйте" in answer and re.search(rf"ваш номер: {STRANGER}\b", answer)
    assert "Черновик" not in answer and all(not line.buttons for line in chat.lines)
    assert appliance.jobs(of(STRANGER)) == []
