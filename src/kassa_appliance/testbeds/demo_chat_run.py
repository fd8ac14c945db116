"""The chat part of ``make demo``: a technician composes a receipt in the Bitrix24 messenger.

The daemon of the demo hosts the Bitrix24 chat bot (``b24bot.enabled``, fetch mode: it
polls ``imbot.v2.Event.get`` on the emulated portal). This process plays the technician
(:class:`~kassa_appliance.testbeds.demo_chat.BotChat`): writes positions as people write
them, taps the bot's buttons, and waits for the QR image the reply delivery brings back.
Everything is printed as a chat transcript; the image is read with ``zbarimg`` and compared
with the QR string the register wrote to the job's KASSAJOB item.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from kassa_appliance.bitrix.jobs import JOB_ENTITY, STATE_DONE, STATE_FAILED
from kassa_appliance.cli import describe_fiscal_params
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID
from kassa_appliance.testbeds.demo_chat import (
    BotChat,
    ChatLine,
    transcript_lines,
    wait_for,
    zbar_decode,
)
from kassa_appliance.testbeds.demo_stack import ApplianceStack

CASHIER = "Мастер Иванов И.И.:500100732259"
BOT_SECTION: dict[str, Any] = {
    "enabled": True,
    "active_poll_seconds": 1,
    "idle_poll_seconds": 2,
    "cashiers": f"{CASHIER_USER_ID}={CASHIER}",
}
"""The daemon's ``b24bot`` section in the demo: the portal's cashier user may print."""
CHAT_TIMEOUT = 30.0
RESULT_POLL_SECONDS = 0.1
TRANSCRIPT_HEADER = "=== chat: a technician composes a receipt in the Bitrix24 messenger"

_URL = re.compile(r"\[url=([^\]]+)\]([^\[]*)\[/url\]")
_TAG = re.compile(r"\[/?(?:size|color|b|i)(?:=[^\]]*)?\]")


def plain(text: str) -> str:
    """The message as the messenger shows it: ``[url=…]text[/url]`` as "text: url", the
    size and colour tags dropped."""
    return _TAG.sub("", _URL.sub(lambda m: f"{m.group(2)}: {m.group(1)}", text))


def show(line: ChatLine) -> None:
    shown = ChatLine(line.author, plain(line.text), line.buttons, line.file_id, line.message_id)
    for row in transcript_lines(shown):
        print(f"  {row}".rstrip(), flush=True)


async def converse(chat: BotChat) -> None:
    """The conversation of docs/chat-bots.md: positions, card, the buyer's phone, the
    place, the preview, [Пробить]."""
    await chat.write("Замена смесителя 1500\nКран 2 х 350", until="Черновик чека")
    await chat.press("Пробить", until="Как платит")
    await chat.press("Картой", until="электронный чек")
    await chat.write("8 916 123-45-67", until="Где вы принимаете")
    await chat.write("г. Москва, ул. Ленина, д. 5, кв. 12", until="Проверьте чек")
    await chat.press("Пробить", until="отправлен на кассу")
    await wait_for(lambda: bool(chat.images()), CHAT_TIMEOUT, "the QR image in the chat")
    chat.catch_up()


async def run_chat_demo(stack: ApplianceStack) -> bool:
    """One conversation against the daemon's bot; True if the QR in the chat is the
    register's. Prints the transcript as it happens."""
    assert stack.emulator is not None
    print(f"\n{TRANSCRIPT_HEADER} (bot «Касса», imbot.v2 fetch mode)", flush=True)
    chat = BotChat(stack.emulator, CASHIER_USER_ID, on_line=show)
    await chat.wait_for_bot(CHAT_TIMEOUT)
    await converse(chat)
    [image] = chat.images()
    job_id = _chat_job(stack)
    result = await _result_of(stack, job_id) if job_id else {}
    qr = result.get("qr")
    print(f"<<< chat receipt {job_id}: {'done' if qr else 'no result'}", flush=True)
    if isinstance(result.get("fiscalParams"), dict):
        print("    " + describe_fiscal_params(result["fiscalParams"]), flush=True)
    print(
        "    (an electronic receipt: the office kassa prints no paper, the OFD sends it to "
        "the buyer's phone; the technician shows the QR code)",
        flush=True,
    )
    decoded = zbar_decode(chat.file_bytes(image.file_id or 0))
    if decoded is None:
        print(f"    QR decoded: (zbarimg is not installed) register's QR: {qr}", flush=True)
        return bool(qr)
    same = decoded == qr
    verdict = "the register's QR string" if same else f"!!! the register's is {qr}"
    print(f"    QR decoded: {decoded} — {verdict}", flush=True)
    return same


async def _result_of(stack: ApplianceStack, job_id: str) -> dict[str, Any]:
    """The job's RESULT once the kassa has written it back to KASSAJOB (the reply in the
    chat may come a moment before the write-back); {} if it does not come in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CHAT_TIMEOUT
    while loop.time() < deadline:
        item = await stack.fetch_item(job_id)
        values = (item or {}).get("PROPERTY_VALUES") or {}
        if values.get("STATE") in (STATE_DONE, STATE_FAILED):
            result = json.loads(values.get("RESULT") or "null")
            return result if isinstance(result, dict) else {}
        await asyncio.sleep(RESULT_POLL_SECONDS)
    return {}


def _chat_job(stack: ApplianceStack) -> str | None:
    """The newest KASSAJOB item with a Bitrix24 chat as its reply target (the demo has one)."""
    assert stack.emulator is not None
    entity = stack.emulator.state.entities.get(JOB_ENTITY)
    names = [
        item.name
        for item in ([] if entity is None else entity.items.values())
        if '"b24chat"' in (item.properties.get("REPLY") or "")
    ]
    return names[-1] if names else None
