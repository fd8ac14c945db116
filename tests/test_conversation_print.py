"""From the chat to the register and back: the conversation creates the KASSAJOB item, the
real Bitrix24 link and engine print it on the simulator, and the rendered reply carries a
QR image that zbar decodes to exactly the QR string the register returned."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bitrix_support import oauth_client
from conversation_support import Chat, ConversationWorld, conversation_world
from kassa_appliance.bitrix.jobs import EngineAdapter, JobLink
from kassa_appliance.channels.conversation.render import render_outcome
from kassa_appliance.channels.delivery.protocol import Outcome
from kassa_appliance.fiscal.engine import Engine, EngineSettings
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.fiscal_qr import parse_qr_string
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_faults import Fault, set_fault
from kassa_appliance.testbeds.bitrix24.state import Item

KASSA = "office-1"
FAST_ENGINE = EngineSettings(
    retry_interval=0.01, max_retry_interval=0.05, journal_poll_interval=0.02, call_timeout=5.0
)


@dataclass
class Office:
    world: ConversationWorld
    simulator: Path


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Office]:
    async with conversation_world(tmp_path, kassas=(KASSA,), ask_place=False) as world:
        journal = Journal(tmp_path / "journal.sqlite3")
        engine = Engine(journal, SimulatorRegister(tmp_path / "simulator"), FAST_ENGINE)
        worker = asyncio.create_task(engine.run())
        appliance_rest = oauth_client(world.emulator, tmp_path / "appliance" / "tokens.json")
        link = JobLink(
            appliance_rest,
            EngineAdapter(engine),
            kassa_id=KASSA,
            sweep_interval=0.05,
            retry_base=0.01,
            retry_max=0.05,
            heartbeat_min_gap=0.05,
            reconcile_interval=0.1,
        )
        running = asyncio.create_task(link.run())
        try:
            yield Office(world, tmp_path / "simulator")
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            await engine.stop()
            await asyncio.wait_for(worker, 30)
            await appliance_rest.aclose()
            journal.close()


async def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


def outcome_of(item: Item) -> Outcome:
    """The outcome as the delivery worker reads it from a final KASSAJOB item."""
    props = item.properties
    task = json.loads(props["TASK"] or "")
    state = props["STATE"]
    if state == "done":
        result = json.loads(props["RESULT"] or "")
        return Outcome(item.name, "done", task, result, result.get("qr"), kassa=props["KASSA"])
    error = json.loads(props["ERROR"] or "{}")
    return Outcome(
        item.name,
        "failed",
        task,
        error_code=error.get("code"),
        error_message=error.get("message"),
        kassa=props["KASSA"],
    )


def zbar(png: bytes, path: Path) -> str:
    path.write_bytes(png)
    answer = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return answer.stdout.rstrip("\n")


async def print_receipt(chat: Chat, lines: str, payment: str = "Наличными") -> Item:
    world = chat.world
    before = {i.name for i in world.jobs()}
    await chat.say(lines)
    await chat.tap("Пробить")
    await chat.tap(payment)
    preview = await chat.tap("Без электронного чека")
    assert "Проверьте чек" in preview and f"Касса: {KASSA}" in preview
    await chat.tap("Пробить")
    [item] = [i for i in world.jobs() if i.name not in before]
    await wait_until(lambda: item.properties.get("STATE") in ("done", "failed"))
    return item


async def test_a_chat_receipt_is_printed_and_its_qr_image_decodes_to_the_registers_qr(
    office: Office, tmp_path: Path
) -> None:
    chat = Chat(office.world)
    item = await print_receipt(chat, "Замена смесителя 1500\nКран 2 х 350")
    assert item.properties["STATE"] == "done"
    outcome = outcome_of(item)
    assert outcome.qr and parse_qr_string(outcome.qr)["total"] == 2200
    reply = render_outcome(outcome)
    assert reply.png is not None and reply.png.startswith(b"\x89PNG\r\n\x1a\n")
    assert zbar(reply.png, tmp_path / "qr.png") == outcome.qr
    params = outcome.result["fiscalParams"] if outcome.result else {}
    assert f"ФД № {params['fiscalDocumentNumber']}" in reply.text
    assert f"ФН {params['fnNumber']}" in reply.text and "2\u202f200,00 ₽" in reply.text
    assert reply.check_url and f"fd={params['fiscalDocumentNumber']}" in reply.check_url


async def test_last_receipts_and_a_return_of_one_of_them(office: Office) -> None:
    chat = Chat(office.world)
    sold = await print_receipt(chat, "Замена смесителя 1500")
    recent = await chat.say("/чеки")
    assert "Ваши последние чеки" in recent and "пробит, ФД №" in recent
    pick = await chat.say("/возврат")
    assert "Какой чек вернуть" in pick
    preview = await chat.tap("Возврат чека от")
    assert "Проверьте чек возврата прихода" in preview and "Замена смесителя" in preview
    await chat.tap("Пробить")
    [returned] = [i for i in office.world.jobs() if i.name != sold.name]
    await wait_until(lambda: returned.properties.get("STATE") in ("done", "failed"))
    assert returned.properties["STATE"] == "done"
    task = json.loads(returned.properties["TASK"] or "")
    assert task["type"] == "sellReturn" and task["total"] == 1500.0
    outcome = outcome_of(returned)
    assert outcome.qr and outcome.qr.endswith("&n=2")
    assert render_outcome(outcome).text.startswith("✅ Возврат прихода пробит")
    assert "Нет пробитых чеков" in await chat.say("возврат")  # returned once only
    job = office.world.store.job(returned.name)
    assert job is not None and job.return_of == sold.name


async def test_a_refused_receipt_is_explained_in_russian(office: Office) -> None:
    set_fault(office.simulator, "fn_fault", Fault(count=1))
    item = await print_receipt(Chat(office.world), "Замена смесителя 1500")
    assert item.properties["STATE"] == "failed"
    text = render_outcome(outcome_of(item)).text
    assert text.startswith("❌ Чек на 1\u202f500,00 ₽ не пробит на кассе «office-1»")
    assert "фискальный накопитель" in text and "другой кассе" in text


async def test_the_kassa_command_reads_the_heartbeats(office: Office) -> None:
    answer = await Chat(office.world).say("/кассы")
    assert "Кассы:" in answer and "office-1: " in answer and "обновлено" in answer
