"""Whole conversations through ConversationService: a recording transport, the real
Bitrix24 emulator as the outbox (KASSAJOB) and the heartbeat items (KASSADEV), the real
SQLite store. Each test types and taps the way a technician would."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conversation_support import CHAT, Chat, ConversationWorld, conversation_world
from kassa_appliance.channels.conversation.draft import Conversation, State
from kassa_appliance.channels.conversation.service import job_id_for
from kassa_appliance.fiscal.receipt import ReceiptTask, parse_task


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[ConversationWorld]:
    async with conversation_world(tmp_path) as world:
        yield world


def state_of(world: ConversationWorld, chat_id: str = CHAT) -> State:
    body = world.store.conversation(world.transport.messenger, chat_id)
    return State.IDLE if body is None else Conversation.loads(body).state


async def up_to_preview(chat: Chat) -> str:
    await chat.say("Замена смесителя 1500\nКран 2 х 350")
    assert "Пробить" in [b.text for row in chat.world.transport.sent[-1].keyboard for b in row]
    assert "Какой" not in await chat.tap("Пробить")
    await chat.tap("Наличными")
    await chat.say("8 916 123-45-67")
    await chat.say("г. Москва, ул. Ленина, д. 5, кв. 12")
    return await chat.tap("office-2")


async def test_the_happy_path_creates_one_valid_sell_job_with_the_chat_as_reply_target(
    world: ConversationWorld,
) -> None:
    chat = Chat(world)
    draft = await chat.say("Замена смесителя 1500\nКран 2 х 350\nдоставка 300 р")
    assert "1. Замена смесителя" in draft and "Итого: 2\u202f500,00 ₽" in draft
    assert "Как платит покупатель" in await chat.tap("Пробить")
    assert "электронный чек" in await chat.tap("Наличными")
    assert "Где вы принимаете оплату" in await chat.say("+79161234567")
    assert "На какой кассе" in await chat.say("г. Москва, ул. Ленина, д. 5, кв. 12")
    preview = await chat.tap("office-1")
    for expected in (
        "Замена смесителя",
        "Кран — 2 шт × 350,00 ₽ = 700,00 ₽",
        "Итого: 2\u202f500,00 ₽",
        "наличными",
        "+79161234567",
        "ул. Ленина",
        "office-1",
        "Мастер Иванов И.И., ИНН 500100732259",
    ):
        assert expected in preview
    assert world.jobs() == []  # nothing is created before the last [Пробить]
    confirm = chat.incoming(action=chat.button("Пробить"))
    await world.service.handle(confirm)
    assert "отправлен на кассу «office-1»" in world.transport.sent[-1].text
    # the button's answer does not repeat a text the chat gets as a message (Bitrix24 posts
    # a command's answer as a message: it would show twice)
    texts_sent = {sent.text for sent in world.transport.sent}
    assert all(notice not in texts_sent for _, notice in world.transport.answers)
    [item] = world.jobs()
    job_id = job_id_for("max", CHAT, confirm.update_id)
    assert item.name == job_id and len(job_id) <= 40
    assert item.properties["KASSA"] == "office-1"
    assert item.properties["STATE"] == "new" and item.properties["SOURCE"] == "chat-max"
    target = {"kind": "maxchat", "chat_id": CHAT}
    assert world.delivery.calls == [(job_id, [target], "office-1")]
    reply = item.properties["REPLY"] or ""
    assert '"targets":[{"kind":"maxchat","chat_id":"chat-100"}]' in reply
    task = parse_task(world.task_of(item))
    assert isinstance(task, ReceiptTask) and task.type == "sell"
    assert str(task.total) == "2500.00" and len(task.positions) == 3
    assert task.operator is not None and task.operator.vatin == "500100732259"
    assert task.operator.name == "Мастер Иванов И.И."
    assert task.electronically is True and task.clientInfo is not None
    assert task.clientInfo.emailOrPhone == "+79161234567"
    assert task.paymentsPlace == "г. Москва, ул. Ленина, д. 5, кв. 12"
    assert task.payments[0].type == "cash"
    assert state_of(world) is State.IDLE
    assert world.transport.answers[-1][0] == confirm.update_id


async def test_every_edit_path_changes_the_draft_and_comes_back_to_the_preview(
    world: ConversationWorld,
) -> None:
    chat = Chat(world)
    await up_to_preview(chat)
    assert "Что изменить" in await chat.tap("Изменить")
    removed = await chat.tap("Убрать 1.")
    assert "Позиция 1 «Замена смесителя» убрана" in removed
    assert "Замена смесителя" not in world.transport.sent[-1].text
    assert "Проверьте чек" in world.transport.sent[-1].text
    await chat.tap("Изменить")
    assert "вместо позиции 1" in await chat.tap("Заменить 1.")
    replaced = await chat.say("Кран латунный 3 х 400")
    assert "Кран латунный — 3 шт × 400,00 ₽" in replaced and "Итого: 1\u202f200,00 ₽" in replaced
    await chat.tap("Изменить")
    assert "Как платит" in await chat.tap("Оплата")
    assert "картой" in await chat.tap("Картой")
    await chat.tap("Изменить")
    assert "электронный чек" in await chat.tap("Эл. чек")
    assert "не отправлять" in await chat.tap("Без электронного чека")
    await chat.tap("Изменить")
    assert "Где вы принимаете" in await chat.tap("Место расчёта")
    assert "пос. Лесной, д. 1" in await chat.say("пос. Лесной, д. 1")
    await chat.tap("Изменить")
    assert "На какой кассе" in await chat.tap("Касса")
    assert "Касса: office-1" in await chat.tap("office-1")
    await chat.tap("Изменить")
    assert "Проверьте чек" in await chat.tap("Назад")
    await chat.tap("Пробить")
    [item] = world.jobs()
    task = parse_task(world.task_of(item))
    assert isinstance(task, ReceiptTask)
    assert [p.name for p in task.positions] == ["Кран латунный"]
    assert task.payments[0].type == "electronically" and task.electronically is None
    assert task.paymentsPlace == "пос. Лесной, д. 1" and item.properties["KASSA"] == "office-1"


async def test_adding_a_line_after_the_preview_invalidates_its_print_button(
    world: ConversationWorld,
) -> None:
    chat = Chat(world)
    await up_to_preview(chat)
    old_print = chat.button("Пробить")
    await chat.say("Прокладка 2 шт по 99,90")
    answer = await chat.press(old_print)
    assert "Чек изменился" in answer and "Прокладка" in answer
    assert world.jobs() == []
    await chat.tap("Пробить")
    [item] = world.jobs()
    assert len(world.task_of(item)["items"]) == 3


@pytest.mark.parametrize("step", range(6))
async def test_cancel_at_every_step_drops_the_draft_and_creates_nothing(
    world: ConversationWorld, step: int
) -> None:
    chat = Chat(world)
    actions = [
        lambda: chat.say("Замена смесителя 1500"),
        lambda: chat.tap("Пробить"),
        lambda: chat.tap("Наличными"),
        lambda: chat.tap("Без электронного чека"),
        lambda: chat.say("ул. Ленина, 5"),
        lambda: chat.tap("office-1"),
    ]
    for action in actions[: step + 1]:
        await action()
    assert "Черновик выброшен" in await chat.tap("Отмена")
    assert state_of(world) is State.IDLE
    assert "Черновика нет" in await chat.say("/отмена")
    assert world.jobs() == [] and world.delivery.calls == []
    assert "Черновик чека:\n1. Кран" in await chat.say("Кран 350")  # a new draft


async def test_cancel_from_the_edit_menu_and_after_printing(world: ConversationWorld) -> None:
    chat = Chat(world)
    await up_to_preview(chat)
    await chat.tap("Изменить")
    assert "Черновик выброшен" in await chat.tap("Отмена")
    await up_to_preview(chat)
    await chat.tap("Пробить")
    assert "Черновика нет" in await chat.tap("Отмена")
    assert len(world.jobs()) == 1


async def test_a_malformed_line_is_explained_and_the_draft_kept(world: ConversationWorld) -> None:
    chat = Chat(world)
    await chat.say("Замена смесителя 1500")
    answer = await chat.say("Кран 350\nФильтр пара штук")
    assert "Строка 2 «Фильтр пара штук»" in answer
    assert "Ожидаю" in answer and "Например" in answer
    assert state_of(world) is State.COMPOSING
    draft = await chat.say("Фильтр 2 шт по 120")
    assert "1. Замена смесителя" in draft and "2. Фильтр" in draft and "Кран" not in draft


async def test_an_invalid_buyer_contact_is_explained_and_asked_again(
    world: ConversationWorld,
) -> None:
    chat = Chat(world)
    await chat.say("Замена смесителя 1500")
    await chat.tap("Пробить")
    await chat.tap("Картой")
    answer = await chat.say("ivanov@")
    assert "«ivanov@» — не e-mail и не телефон" in answer and "+79161234567" in answer
    assert state_of(world) is State.CONTACT
    assert "Где вы принимаете" in await chat.say("ivanov@example.ru")


async def test_a_restart_mid_conversation_continues_where_it_was(
    world: ConversationWorld,
) -> None:
    chat = Chat(world)
    await chat.say("Замена смесителя 1500")
    await chat.tap("Пробить")
    await chat.tap("Наличными")
    world.restart()
    assert state_of(world) is State.CONTACT
    assert "Где вы принимаете" in await chat.say("+79161234567")
    await chat.say("ул. Ленина, 5")
    world.restart()
    assert "Проверьте чек" in await chat.tap("office-2")
    world.restart()
    await chat.tap("Пробить")
    [item] = world.jobs()
    assert world.task_of(item)["clientInfo"] == {"emailOrPhone": "+79161234567"}


async def test_a_redelivered_update_is_ignored(world: ConversationWorld) -> None:
    chat = Chat(world)
    first = chat.incoming(text="Замена смесителя 1500")
    await world.service.handle(first)
    await world.service.handle(first)
    world.restart()
    await world.service.handle(first)
    assert len(world.transport.sent) == 1
    await up_to_preview(chat)
    confirm = chat.incoming(action=chat.button("Пробить"))
    for _ in range(3):
        await world.service.handle(confirm)
    world.restart()
    await world.service.handle(confirm)
    assert len(world.jobs()) == 1 and len(world.delivery.calls) == 1


async def test_repeated_print_taps_create_one_job(world: ConversationWorld) -> None:
    chat = Chat(world)
    await up_to_preview(chat)
    action = chat.button("Пробить")
    await chat.press(action)
    again = await chat.press(action)
    assert "уже отправлен на кассу «office-2»" in again
    world.restart()
    await chat.press(action)
    assert len(world.jobs()) == 1 and len(world.delivery.calls) == 1


async def test_a_reply_that_could_not_be_sent_goes_out_once_later(
    world: ConversationWorld,
) -> None:
    chat = Chat(world)
    world.transport.fail_sends = 1
    update = chat.incoming(text="Замена смесителя 1500")
    with pytest.raises(ConnectionError):
        await world.service.handle(update)
    assert world.transport.sent == []
    world.restart()
    await world.service.resume()
    await world.service.handle(update)
    assert [m.text.startswith("Черновик чека") for m in world.transport.sent] == [True]


async def test_someone_not_on_the_allow_list_is_refused_politely_and_nothing_is_created(
    world: ConversationWorld,
) -> None:
    stranger = Chat(world, user_id="99", chat_id="chat-99")
    answer = await stranger.say("Замена смесителя 1500")
    assert "только сотрудники из списка кассиров" in answer and "99" in answer
    await stranger.press("go")
    assert world.store.conversation("max", "chat-99") is None
    assert world.jobs() == [] and world.delivery.calls == []


async def test_a_crash_after_the_item_was_added_finds_it_by_name(
    world: ConversationWorld,
) -> None:
    chat = Chat(world)
    await up_to_preview(chat)
    await chat.tap("Пробить")
    [item] = world.jobs()
    # As if the daemon died after entity.item.add answered, before "published" was stored.
    with sqlite3.connect(world.root / "conversations.sqlite3") as db:
        db.execute("UPDATE jobs SET stage='creating'")
    world.restart()
    await world.service.resume()
    assert [i.name for i in world.jobs()] == [item.name]
    job = world.store.job(item.name)
    assert job is not None and job.stage == "published" and job.attempts == 2


async def test_bitrix24_down_at_print_time_is_retried_without_a_second_tap(
    world: ConversationWorld,
) -> None:
    chat = Chat(world)
    await up_to_preview(chat)
    world.emulator.faults.add("error500", count=None, methods=["entity.item.add"])
    answer = await chat.tap("Пробить")
    assert "Битрикс24 сейчас не отвечает" in answer and world.jobs() == []
    world.emulator.faults.clear()
    world.restart()
    await world.service.resume()
    assert len(world.jobs()) == 1
    assert "отправлен на кассу" in world.transport.sent[-1].text


async def test_a_bitrix24_department_member_prints_as_the_departments_cashier(
    tmp_path: Path,
) -> None:
    async with conversation_world(tmp_path, kassas=("office-1",), messenger="b24") as world:
        chat = Chat(world, user_id="40", chat_id="chat40")
        chat.departments = (3, 5)
        await chat.say("Выезд мастера 1000")
        await chat.tap("Пробить")
        await chat.tap("Наличными")
        await chat.tap("Без электронного чека")
        preview = await chat.say("ул. Ленина, 5")
        assert "Касса: office-1" in preview and "Мастер Петров П.П." in preview
        await chat.tap("Пробить")
        [item] = world.jobs()
        assert world.task_of(item)["operator"] == {"name": "Мастер Петров П.П."}
        assert item.properties["SOURCE"] == "chat-b24"
        assert world.delivery.calls[0][1] == [
            {"kind": "b24chat", "bot_id": 7, "dialog_id": "chat40"}
        ]


async def test_a_kassa_without_a_recent_heartbeat_is_shown_as_not_connected(
    world: ConversationWorld,
) -> None:
    await world.rest.result(
        "entity.item.add",
        {
            "ENTITY": "KASSADEV",
            "NAME": "garage",
            "PROPERTY_VALUES": {
                "KASSA": "garage",
                "STATUS": "{}",
                "SEEN": "2025-01-02T10:00:00+0300",
            },
        },
    )
    answer = await Chat(world).say("кассы")
    assert "• garage: нет связи с 02.01 10:00" in answer
    assert "• office-1: на связи, смена открыта" in answer
