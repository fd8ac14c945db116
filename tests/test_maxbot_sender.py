"""The ``maxchat`` reply sender and the image upload flow against the MAX emulator: the QR
reaches the chat once (zbar reads it back), ``attachment.not.ready`` is waited out,
``find_sent`` finds an earlier send by its trace, a blocked bot or a deleted chat fails
for good, and every request and answer is valid against the official schema."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from kassa_appliance.channels.delivery.protocol import (
    Delivery,
    DeliveryFailed,
    DeliveryRetry,
    Outcome,
)
from kassa_appliance.channels.maxbot.sender import MaxChatSender, has_trace, trace_line
from maxbot_support import QR, Emulator, decode_qr, max_emulator, qr_png

__all__ = ["max_emulator"]

CHECK_URL = "https://check.ofd.example/?fn=9999078900012345&i=17&fp=1234567890"


@dataclass(frozen=True)
class Rendered:
    text: str
    png: bytes | None
    check_url: str | None


def render(outcome: Outcome) -> Rendered:
    if outcome.state == "done":
        return Rendered(f"Чек напечатан: {outcome.job_id}\nИтого 1500.00", qr_png(), CHECK_URL)
    return Rendered(f"Чек не напечатан: {outcome.error_message}", None, None)


def delivery(chat_id: int, *, state: str = "done", attempt: int = 1) -> Delivery:
    outcome = Outcome(
        job_id="max-job-1",
        state=state,  # type: ignore[arg-type]
        task={"type": "sell"},
        qr=QR if state == "done" else None,
        error_message=None if state == "done" else "нет бумаги",
    )
    return Delivery(
        job_id="max-job-1",
        target={"kind": "maxchat", "chat_id": str(chat_id)},
        key="max-job-1:maxchat:0",
        attempt=attempt,
        outcome=outcome,
    )


async def test_the_receipt_reaches_the_chat_once_with_a_readable_qr(
    max_emulator: Emulator, tmp_path: Path
) -> None:
    chat_id = max_emulator.write("Пробить")["chat_id"]
    max_emulator.faults(attachment_ready_after=1.2)
    client = max_emulator.client()
    sender = MaxChatSender(client, render=render)
    item = delivery(chat_id)
    assert await sender.find_sent(item) is None
    reference = await sender.send(item)
    sent = max_emulator.bot_messages(chat_id)
    assert len(sent) == 1 and sent[0]["body"]["mid"] == reference
    body = sent[0]["body"]
    assert body["text"].endswith(trace_line(item.key)) and "Итого 1500.00" in body["text"]
    image = next(a for a in body["attachments"] if a["type"] == "image")
    assert decode_qr(max_emulator.download(image["payload"]["url"]), tmp_path) == QR
    keyboard = next(a for a in body["attachments"] if a["type"] == "inline_keyboard")
    assert keyboard["payload"]["buttons"][0][0] == {
        "type": "link",
        "text": "Чек на сайте ФНС",
        "url": CHECK_URL,
    }
    traffic = max_emulator.traffic()
    sends = [e for e in traffic if e["method"] == "POST" and e["path"] == "/messages"]
    assert [e["status"] for e in sends][-1] == 200
    assert any(e["response_json"]["code"] == "attachment.not.ready" for e in sends[:-1])
    uploads = [e for e in traffic if e["kind"] == "upload" and e["method"] == "POST"]
    assert len(uploads) == 1 and not uploads[0]["authorized"]  # no token to the upload host

    # the worker died before recording: it looks first, and finds the send
    assert await sender.find_sent(delivery(chat_id, attempt=2)) == reference
    assert len(max_emulator.bot_messages(chat_id)) == 1
    await client.aclose()
    assert max_emulator.assert_traffic_valid() >= 4


async def test_a_refusal_is_text_only_and_found_again(max_emulator: Emulator) -> None:
    chat_id = max_emulator.write("Пробить")["chat_id"]
    client = max_emulator.client()
    sender = MaxChatSender(client, render=render)
    item = delivery(chat_id, state="failed")
    reference = await sender.send(item)
    (message,) = max_emulator.bot_messages(chat_id)
    assert message["body"]["attachments"] is None
    assert message["body"]["text"] == f"Чек не напечатан: нет бумаги\n{trace_line(item.key)}"
    assert has_trace(message, item.key) and not has_trace(message, item.key + "x")
    max_emulator.write("спасибо")
    assert await sender.find_sent(item) == reference
    await client.aclose()
    max_emulator.assert_traffic_valid()


async def test_blocked_bot_and_deleted_chat_fail_for_good(max_emulator: Emulator) -> None:
    chat_id = max_emulator.write("Пробить")["chat_id"]
    client = max_emulator.client()
    sender = MaxChatSender(client, render=render)
    max_emulator.block()
    with pytest.raises(DeliveryFailed, match="blocked the bot"):
        await sender.send(delivery(chat_id, state="failed"))
    assert await sender.find_sent(delivery(chat_id)) is None

    other = max_emulator.write("Пробить", user_id=555)["chat_id"]
    max_emulator.delete_chat(other)
    with pytest.raises(DeliveryFailed, match="no longer exists"):
        await sender.send(delivery(other, state="failed"))
    with pytest.raises(DeliveryFailed, match="no chat_id"):
        await sender.send(Delivery("j", {"kind": "maxchat"}, "k", 1, delivery(other).outcome))
    await client.aclose()
    max_emulator.assert_traffic_valid()


async def test_temporary_failures_are_retries(max_emulator: Emulator) -> None:
    chat_id = max_emulator.write("Пробить")["chat_id"]
    client = max_emulator.client()
    sender = MaxChatSender(client, render=render)
    max_emulator.faults(unavailable=10)
    with pytest.raises(DeliveryRetry):
        await sender.send(delivery(chat_id, state="failed"))
    max_emulator.faults(unavailable=0)
    max_emulator.set_token("revoked-and-replaced-token-000")
    with pytest.raises(DeliveryRetry, match="rejected the bot token") as raised:
        await sender.send(delivery(chat_id, state="failed"))
    assert raised.value.retry_after is not None and raised.value.retry_after >= 60
    with pytest.raises(DeliveryRetry):
        await sender.find_sent(delivery(chat_id))
    assert max_emulator.bot_messages(chat_id) == []
    await client.aclose()
    max_emulator.assert_traffic_valid()


async def test_messages_into_one_chat_stay_under_two_per_second(max_emulator: Emulator) -> None:
    chat_id = max_emulator.write("Пробить")["chat_id"]
    client = max_emulator.client()
    for index in range(5):
        await client.send_message(str(chat_id), {"text": f"строка {index}"})
    sends = [e for e in max_emulator.traffic() if e["path"] == "/messages"]
    assert [e["status"] for e in sends] == [200] * 5  # the emulator refuses a 3rd in 1 s
    await client.aclose()
