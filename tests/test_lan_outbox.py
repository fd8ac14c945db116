"""LAN jobs in the Bitrix24 journal: the ``outbox`` sender against the Bitrix24 emulator,
and end to end through the daemon (LAN request → receipt → KASSAJOB record) once the
reply-delivery worker runs in the daemon (skipped while it does not)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bitrix_support import oauth_client
from kassa_appliance.appliance.config import (
    BitrixConfig,
    Config,
    KassaConfig,
    RegisterConfig,
    save_config,
)
from kassa_appliance.appliance.daemon import daemon_command, read_status_file
from kassa_appliance.bitrix.protocol import JOB_ENTITY
from kassa_appliance.bitrix.storage import ensure_storage
from kassa_appliance.channels.delivery.protocol import Delivery, Outcome
from kassa_appliance.channels.lan.outbox import OutboxSender
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings
from lan_support import AUTH, free_port, lan_config
from sample_tasks import sell

PAIRING_KEYS = ("portal", "client_id", "client_secret", "refresh_token", "token_url")


@pytest.fixture
async def portal() -> AsyncIterator[Emulator]:
    push = PushServer(PushSettings(buffer_delay=(0.0, 0.0)))
    await push.start("127.0.0.1", 0)
    emulator = Emulator(push=push)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()
        await push.stop()


def records(emulator: Emulator, name: str) -> list[Any]:
    entity = emulator.state.entities.get(JOB_ENTITY)
    return [] if entity is None else [i for i in entity.items.values() if i.name == name]


async def test_the_outbox_sender_writes_a_final_record_and_finds_it(
    portal: Emulator, tmp_path: Path
) -> None:
    rest = oauth_client(portal, tmp_path / "tokens.json")
    try:
        await ensure_storage(rest)
        sender = OutboxSender(rest, "kassa-7")
        params = {"fiscalDocumentNumber": 5, "total": 150.0}
        outcome = Outcome("lan:o1", "done", sell(), {"fiscalParams": params}, "t=1&s=150.00")
        delivery = Delivery("lan:o1", {"kind": "outbox"}, "lan:o1:outbox", 1, outcome)
        assert await sender.find_sent(delivery) is None
        reference = await sender.send(delivery)
        assert await sender.find_sent(delivery) == reference
        (item,) = records(portal, "lan:o1")
        assert item.properties["STATE"] == "done" and item.properties["SOURCE"] == "lan"
        assert item.properties["KASSA"] == "kassa-7"
        result = json.loads(item.properties["RESULT"])
        assert result == {"fiscalParams": params, "qr": "t=1&s=150.00"}
        failed = Outcome(
            "kkm:o2", "failed", sell(), error_code="atol-44", error_message="Нет бумаги"
        )
        await sender.send(Delivery("kkm:o2", {"kind": "outbox"}, "kkm:o2:outbox", 1, failed))
        (bad,) = records(portal, "kkm:o2")
        assert bad.properties["STATE"] == "failed"
        assert json.loads(bad.properties["ERROR"]) == {"code": "atol-44", "message": "Нет бумаги"}
    finally:
        await rest.aclose()


async def test_a_lan_receipt_shows_in_the_bitrix24_journal(
    portal: Emulator, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    pairing = portal.credentials()
    port = free_port()
    save_config(
        data_dir,
        Config(
            register=RegisterConfig(driver="simulator"),
            bitrix=BitrixConfig.model_validate({key: pairing[key] for key in PAIRING_KEYS}),
            kassa=KassaConfig(id="kassa-7"),
            lan=lan_config(port),
        ),
    )
    process = await asyncio.create_subprocess_exec(
        *daemon_command(data_dir, "warning"), env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        deadline = time.monotonic() + 30
        while not ((read_status_file(data_dir) or {}).get("lan") or {}).get("listening"):
            assert process.returncode is None and time.monotonic() < deadline
            await asyncio.sleep(0.05)
        if not read_status_file(data_dir)["lan"]["mirrored_to_bitrix24"]:  # type: ignore[index]
            pytest.skip("the reply-delivery worker does not run in the daemon yet")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", auth=AUTH) as client:
            answer = await client.post("/api/v2/requests", json={"uuid": "m1", "request": sell()})
            assert answer.status_code == 201
        while not any(r.properties.get("STATE") == "done" for r in records(portal, "lan:m1")):
            assert time.monotonic() < deadline + 30, "the LAN receipt never reached KASSAJOB"
            await asyncio.sleep(0.05)
        (item,) = records(portal, "lan:m1")
        assert "&s=150.00&" in json.loads(item.properties["RESULT"])["qr"]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
