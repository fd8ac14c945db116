"""The conversation transport on MAX against the emulator: a user's text, a Start and a
button press become :class:`Incoming`; texts go out with inline keyboards, images through
the upload flow, presses are answered; a key asked twice sends once, across a restart."""

from __future__ import annotations

from pathlib import Path

from kassa_appliance.channels.conversation.transport import Button, Incoming
from kassa_appliance.channels.maxbot.poller import STALE_KEYBOARD_NOTICE, UpdatePoller
from kassa_appliance.channels.maxbot.transport import MaxTransport
from kassa_appliance.channels.maxbot.updates import incoming_of
from maxbot_support import QR, USER_ID, Emulator, decode_qr, max_emulator, qr_png

__all__ = ["max_emulator"]

KEYBOARD = (
    (Button("Пробить", "confirm"), Button("Изменить", "edit")),
    (Button("Отмена", "cancel"),),
)


async def test_a_conversation_turn_through_the_transport(
    max_emulator: Emulator, tmp_path: Path
) -> None:
    client = max_emulator.client()
    transport = MaxTransport(client, tmp_path)
    seen: list[Incoming] = []

    async def handle(incoming: Incoming) -> None:
        seen.append(incoming)
        if incoming.action is None:
            await transport.send_text(
                incoming.chat_id, "Проверьте чек", keyboard=KEYBOARD, key=f"k:{incoming.update_id}"
            )
        else:
            await transport.answer_action(incoming, "Отправлено на печать")

    poller = UpdatePoller(client, tmp_path, handle, poll_timeout=1)
    written = max_emulator.write("Замена смесителя 1500")
    await poller.poll_once()
    (bot_message,) = max_emulator.bot_messages(written["chat_id"])
    keyboard = bot_message["body"]["attachments"][0]
    assert keyboard["type"] == "inline_keyboard"
    assert [[b["payload"] for b in row] for row in keyboard["payload"]["buttons"]] == [
        ["confirm", "edit"],
        ["cancel"],
    ]

    pressed = max_emulator.press("confirm")
    await poller.poll_once()
    press = seen[-1]
    assert press.action == "confirm" and press.callback_id == pressed["callback_id"]
    assert press.update_id == pressed["callback_id"] and press.chat_id == str(written["chat_id"])
    assert press.user_id == str(USER_ID)
    (answer,) = max_emulator.answers()
    assert answer["notification"] == "Отправлено на печать"
    await client.aclose()
    assert max_emulator.assert_traffic_valid() == 4  # 2 polls, a send, an answer


async def test_a_key_sends_once_even_after_a_restart(
    max_emulator: Emulator, tmp_path: Path
) -> None:
    chat_id = str(max_emulator.write("Кран 2 х 350")["chat_id"])
    client = max_emulator.client()
    first = await MaxTransport(client, tmp_path).send_text(chat_id, "Итого 700.00", key="k1")
    again = await MaxTransport(client, tmp_path).send_text(chat_id, "Итого 700.00", key="k1")
    assert first == again and first.startswith("mid.")
    image = await MaxTransport(client, tmp_path).send_image(
        chat_id, qr_png(), caption="QR чека", key="k2"
    )
    assert image == await MaxTransport(client, tmp_path).send_image(
        chat_id, qr_png(), caption="QR чека", key="k2"
    )
    messages = max_emulator.bot_messages(int(chat_id))
    assert [m["body"]["text"] for m in messages] == ["Итого 700.00", "QR чека"]
    url = messages[1]["body"]["attachments"][0]["payload"]["url"]
    assert decode_qr(max_emulator.download(url), tmp_path) == QR
    assert (tmp_path / "sent.json").stat().st_mode & 0o777 == 0o600
    await client.aclose()
    max_emulator.assert_traffic_valid()


async def test_a_press_on_a_deleted_keyboard_is_answered(
    max_emulator: Emulator, tmp_path: Path
) -> None:
    client = max_emulator.client()
    handled: list[Incoming] = []

    async def handle(incoming: Incoming) -> None:
        handled.append(incoming)

    chat_id = str(max_emulator.write("Кран")["chat_id"])
    await MaxTransport(client, tmp_path).send_text(chat_id, "Проверьте", keyboard=KEYBOARD, key="k")
    pressed = max_emulator.press("cancel")
    update = {
        "update_type": "message_callback",
        "timestamp": 1,
        "callback": {
            "timestamp": 1,
            "callback_id": pressed["callback_id"],
            "payload": "cancel",
            "user": {"user_id": USER_ID, "first_name": "Иван", "is_bot": False},
        },
        "message": None,
    }
    poller = UpdatePoller(client, tmp_path, handle, poll_timeout=1)
    await poller._dispatch(update)
    assert handled == []
    assert max_emulator.answers()[-1]["notification"] == STALE_KEYBOARD_NOTICE
    await client.aclose()


def test_updates_that_are_not_for_the_engine() -> None:
    bot_sender = {
        "update_type": "message_created",
        "timestamp": 1,
        "message": {
            "sender": {"user_id": 1, "first_name": "Bot", "is_bot": True},
            "recipient": {"chat_id": 5, "chat_type": "dialog"},
            "timestamp": 1,
            "body": {"mid": "mid.1", "seq": 1, "text": "hi"},
        },
    }
    assert incoming_of(bot_sender) is None
    assert incoming_of({"update_type": "message_removed", "timestamp": 1}) is None
    assert incoming_of({"update_type": "message_created", "timestamp": 1, "message": None}) is None
    started = incoming_of(
        {
            "update_type": "bot_started",
            "timestamp": 77,
            "chat_id": 5,
            "user": {"user_id": 9, "first_name": "Анна", "last_name": "К", "is_bot": False},
        }
    )
    assert started is not None
    assert (started.text, started.chat_id, started.user_id, started.user_name) == (
        "/start",
        "5",
        "9",
        "Анна К",
    )
    assert started.update_id == "start:5:77"
