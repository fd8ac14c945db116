"""The daemon's Bitrix24 link end to end: emulator REST + push server (loopback), the
doorbell over a real WebSocket, the real engine and simulator."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from bitrix_support import oauth_client
from kassa_appliance.bitrix.jobs import JOB_ENTITY, publish_job
from kassa_appliance.bitrix.link import bitrix_link
from kassa_appliance.config import BitrixConfig, Config, KassaConfig
from kassa_appliance.emulator.app import Emulator
from kassa_appliance.emulator.push import PushServer, PushSettings
from kassa_appliance.emulator.state import CASHIER_USER_ID
from kassa_appliance.engine import Engine
from kassa_appliance.journal import JobState, Journal
from kassa_appliance.registers.simulator import SimulatorRegister
from test_jobs import FAST_ENGINE, sell

PAIRING_KEYS = ("portal", "client_id", "client_secret", "refresh_token", "token_url")


async def test_a_doorbell_over_push_gets_a_job_printed_and_reported(tmp_path: Path) -> None:
    push = PushServer(PushSettings(buffer_delay=(0.0, 0.0)))
    await push.start("127.0.0.1", 0)
    emulator = Emulator(push=push)
    await emulator.start()
    journal = Journal(tmp_path / "journal.sqlite3")
    engine = Engine(journal, SimulatorRegister(tmp_path / "simulator"), FAST_ENGINE)
    worker = asyncio.create_task(engine.run())
    pairing = emulator.credentials()
    config = Config(
        bitrix=BitrixConfig.model_validate(
            {
                key: pairing[key]
                for key in ("portal", "client_id", "client_secret", "refresh_token", "token_url")
            }
        ),
        kassa=KassaConfig(id="kassa-9"),
    )
    producer = oauth_client(
        emulator, tmp_path / "producer.json", pairing=emulator.credentials(CASHIER_USER_ID)
    )
    try:
        async with bitrix_link(config, tmp_path, engine) as link:
            assert link is not None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15
            while not (JOB_ENTITY in emulator.state.entities and push.stats.connections):
                assert loop.time() < deadline, "link never bootstrapped and connected"
                await asyncio.sleep(0.02)
            job_id = str(uuid.uuid4())
            await publish_job(producer, job_id=job_id, kassa="kassa-9", task=sell("42.00"))
            while journal.get(job_id) is None:  # the doorbell arrives over the WebSocket
                assert loop.time() < deadline, "the doorbell never brought the job in"
                await asyncio.sleep(0.01)
            job = await engine.wait_for(job_id, timeout=15)
            assert job.state is JobState.FISCALIZED
            entity = emulator.state.entities[JOB_ENTITY]
            item = next(i for i in entity.items.values() if i.name == job_id)
            while item.properties.get("STATE") != "done":
                assert loop.time() < deadline + 15
                await asyncio.sleep(0.02)
            assert "&s=42.00&" in json.loads(item.properties["RESULT"] or "")["qr"]
            assert emulator.api.calls.get("pull.application.config.get", 0) >= 1
    finally:
        await producer.aclose()
        await engine.stop()
        await worker
        journal.close()
        await emulator.stop()
        await push.stop()
