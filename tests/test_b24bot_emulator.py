"""The emulated ``imbot.v2`` methods against the docs (b24restdocs chat-bots-v2): idempotent
registration by code, the Event.get queue and its offset, keyboards and their command
events, messages only in dialogs the bot may write to, getContext only for reading bot types,
File.upload whose bytes come back, and the documented error codes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bitrix_support import FAST_RETRY, oauth_client
from kassa_appliance.bitrix.auth import WebhookAuth
from kassa_appliance.bitrix.errors import AccessDenied, BitrixError, InvalidArgument, NotFound
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.rest_imbot_state import ImbotPortal, imbot_portal
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID

FIELDS = {"code": "kassa_bot", "type": "personal", "properties": {"name": "Касса"}}


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator() as running:
        yield running


@pytest.fixture
async def rest(emulator: Emulator, tmp_path: Path) -> AsyncIterator[RestClient]:
    async with oauth_client(emulator, tmp_path / "token.json") as client:
        yield client


def portal_of(emulator: Emulator) -> ImbotPortal:
    return imbot_portal(emulator.state)


async def register(rest: RestClient, **fields: Any) -> int:
    answer = await rest.result("imbot.v2.Bot.register", {"fields": {**FIELDS, **fields}})
    return int(answer["bot"]["id"])


async def test_register_is_idempotent_by_code_and_list_finds_the_bot(rest: RestClient) -> None:
    first = await register(rest)
    again = await register(rest, properties={"name": "Другое имя"})
    assert again == first
    listed = await rest.result("imbot.v2.Bot.list", {})
    assert [b["code"] for b in listed["bots"]] == ["kassa_bot"]
    got = await rest.result("imbot.v2.Bot.get", {"code": "kassa_bot"})
    assert got["bot"]["id"] == first and got["bot"]["eventMode"] == "fetch"


async def test_register_errors_are_the_documented_ones(rest: RestClient) -> None:
    cases = [
        ({"code": ""}, "BOT_CODE_REQUIRED"),
        ({"properties": {}}, "BOT_PROPERTIES_REQUIRED"),
        ({"type": "robot"}, "BOT_INVALID_TYPE"),
        ({"eventMode": "push"}, "BOT_INVALID_EVENT_MODE"),
        ({"eventMode": "webhook"}, "BOT_WEBHOOK_URL_REQUIRED"),
        ({"botToken": "x" * 41}, "BOT_TOKEN_INVALID_LENGTH"),
    ]
    for fields, code in cases:
        with pytest.raises(BitrixError) as caught:
            await register(rest, **fields)
        assert caught.value.code == code


async def test_webhook_calls_need_the_bot_token(emulator: Emulator, rest: RestClient) -> None:
    hook = RestClient(WebhookAuth(emulator.webhook_url()), retry=FAST_RETRY)
    async with hook:
        with pytest.raises(BitrixError) as caught:
            await hook.result("imbot.v2.Bot.register", {"fields": FIELDS})
        assert caught.value.code == "BOT_TOKEN_NOT_SPECIFIED"
        fields = {**FIELDS, "code": "hook_bot", "botToken": "t" * 40}
        bot_id = (await hook.result("imbot.v2.Bot.register", {"fields": fields}))["bot"]["id"]
        with pytest.raises(BitrixError) as caught:
            await hook.result("imbot.v2.Event.get", {"botId": bot_id})
        assert caught.value.code == "BOT_TOKEN_NOT_SPECIFIED"
        with pytest.raises(AccessDenied):  # BOT_OWNERSHIP_ERROR
            await hook.result("imbot.v2.Event.get", {"botId": bot_id, "botToken": "u" * 40})
        assert await hook.result("imbot.v2.Event.get", {"botId": bot_id, "botToken": "t" * 40})
    with pytest.raises(AccessDenied):  # the application does not own the webhook's bot
        await rest.result("imbot.v2.Event.get", {"botId": bot_id})


async def test_event_get_keeps_events_until_an_offset_confirms_them(
    emulator: Emulator, rest: RestClient
) -> None:
    bot = await register(rest)
    portal = portal_of(emulator)
    for n in range(3):
        portal.user_writes(bot, CASHIER_USER_ID, f"сообщение {n}")
    first = await rest.result("imbot.v2.Event.get", {"botId": bot, "limit": 2})
    assert [e["data"]["message"]["text"] for e in first["events"]] == ["сообщение 0", "сообщение 1"]
    assert first["hasMore"] is True
    assert first["events"][0]["type"] == "ONIMBOTV2MESSAGEADD"
    assert first["events"][0]["data"]["chat"]["dialogId"] == str(CASHIER_USER_ID)
    again = await rest.result("imbot.v2.Event.get", {"botId": bot, "limit": 2})
    assert again["events"] == first["events"], "nothing is confirmed without an offset"
    rest_of = await rest.result("imbot.v2.Event.get", {"botId": bot, "offset": first["nextOffset"]})
    assert [e["data"]["message"]["text"] for e in rest_of["events"]] == ["сообщение 2"]
    assert rest_of["hasMore"] is False
    done = await rest.result("imbot.v2.Event.get", {"botId": bot, "offset": rest_of["nextOffset"]})
    assert done["events"] == [] and portal.bots[bot].events == []
    with pytest.raises(NotFound):
        await rest.result("imbot.v2.Event.get", {"botId": 999999})
    with pytest.raises(InvalidArgument) as caught:
        await rest.result("imbot.v2.Event.get", {})
    assert caught.value.code == "BOT_ID_REQUIRED"


async def test_a_keyboard_command_comes_back_as_a_command_event(
    emulator: Emulator, rest: RestClient
) -> None:
    bot = await register(rest)
    await rest.result(
        "imbot.v2.Command.register", {"botId": bot, "fields": {"command": "kassa", "hidden": True}}
    )
    keyboard = {
        "BOT_ID": bot,
        "BUTTONS": [
            {"TEXT": "Пробить", "COMMAND": "kassa", "COMMAND_PARAMS": "confirm"},
            {"TYPE": "NEWLINE"},
            {"TEXT": "Отмена", "COMMAND": "kassa", "COMMAND_PARAMS": "cancel"},
        ],
    }
    sent = await rest.result(
        "imbot.v2.Chat.Message.send",
        {
            "botId": bot,
            "dialogId": str(CASHIER_USER_ID),
            "fields": {"message": "Итог", "keyboard": keyboard},
        },
    )
    portal = portal_of(emulator)
    portal.user_presses(CASHIER_USER_ID, sent["id"], "Пробить")
    events = (await rest.result("imbot.v2.Event.get", {"botId": bot}))["events"]
    assert events[0]["type"] == "ONIMBOTV2COMMANDADD"
    command = events[0]["data"]["command"]
    assert (command["command"], command["params"], command["context"]) == (
        "/kassa",
        "confirm",
        "keyboard",
    )
    with pytest.raises(BitrixError) as caught:
        await rest.result(
            "imbot.v2.Chat.Message.send",
            {
                "botId": bot,
                "dialogId": "2",
                "fields": {"message": "x", "keyboard": [{"TEXT": "?"}]},
            },
        )
    assert caught.value.code == "KEYBOARD_ERROR"


async def test_messages_only_where_the_bot_may_write(emulator: Emulator, rest: RestClient) -> None:
    bot = await register(rest)
    portal = portal_of(emulator)
    group = portal.group_chat({1, CASHIER_USER_ID})
    for dialog in (f"chat{group.id}", "chat999", "424242"):
        with pytest.raises(AccessDenied):
            await rest.result(
                "imbot.v2.Chat.Message.send",
                {"botId": bot, "dialogId": dialog, "fields": {"message": "привет"}},
            )
    with pytest.raises(BitrixError) as caught:
        await rest.result(
            "imbot.v2.Chat.Message.send",
            {"botId": bot, "dialogId": "2", "fields": {"message": " "}},
        )
    assert caught.value.code == "EMPTY_MESSAGE"
    portal.denied.add((bot, portal.private_chat(bot, CASHIER_USER_ID).id))
    with pytest.raises(AccessDenied):
        await rest.result(
            "imbot.v2.Chat.Message.send",
            {"botId": bot, "dialogId": "2", "fields": {"message": "x"}},
        )


async def test_get_context_reads_the_dialog_for_personal_bots_only(
    emulator: Emulator, rest: RestClient
) -> None:
    personal = await register(rest)
    plain = await register(rest, code="plain_bot", type="bot")
    portal = portal_of(emulator)
    first = portal.user_writes(personal, CASHIER_USER_ID, "раз")
    reply = await rest.result(
        "imbot.v2.Chat.Message.send",
        {"botId": personal, "dialogId": "2", "fields": {"message": "два", "templateId": "u-1"}},
    )
    window = await rest.result(
        "imbot.v2.Chat.Message.getContext", {"botId": personal, "messageId": first, "range": 5}
    )
    assert [(m["text"], m["authorId"]) for m in window["messages"]] == [
        ("раз", CASHIER_USER_ID),
        ("два", personal),
    ]
    assert window["messages"][1]["uuid"] == "u-1" and reply["id"] == window["messages"][1]["id"]
    with pytest.raises(AccessDenied) as caught:
        await rest.result("imbot.v2.Chat.Message.getContext", {"botId": plain, "messageId": first})
    assert caught.value.code == "BOT_TYPE_NOT_ALLOWED"
    with pytest.raises(NotFound):
        await rest.result(
            "imbot.v2.Chat.Message.getContext", {"botId": personal, "messageId": 9999}
        )


async def test_file_upload_posts_the_file_and_its_bytes_come_back(
    emulator: Emulator, rest: RestClient
) -> None:
    bot = await register(rest)
    content = b"\x89PNG\r\n\x1a\n fake"
    answer = await rest.result(
        "imbot.v2.File.upload",
        {
            "botId": bot,
            "dialogId": "2",
            "fields": {
                "name": "qr.png",
                "content": base64.b64encode(content).decode(),
                "message": "QR",
            },
        },
    )
    assert answer["file"]["extension"] == "png" and answer["dialogId"] == "2"
    portal = portal_of(emulator)
    assert portal.file_bytes(answer["file"]["id"]) == content
    message = portal.messages[answer["messageId"]]
    assert message.text == "QR" and message.params["FILE_ID"] == [answer["file"]["id"]]
    link = await rest.result(
        "imbot.v2.File.download", {"botId": bot, "fileId": answer["file"]["id"]}
    )
    assert "downloadUrl" in link
    for fields, code in (
        ({"name": "qr.png", "content": "@@@"}, "FILE_INVALID_CONTENT"),
        ({"name": "", "content": "AA=="}, "FILE_EMPTY"),
    ):
        with pytest.raises(BitrixError) as caught:
            await rest.result(
                "imbot.v2.File.upload", {"botId": bot, "dialogId": "2", "fields": fields}
            )
        assert caught.value.code == code
