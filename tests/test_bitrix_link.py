"""The daemon's Bitrix24 link end to end: emulator REST + push server (loopback), the
doorbell over a real WebSocket, the real engine and simulator — and the faults of the
link: repeated doorbells, a push server restart in the middle of a job, access tokens
expiring mid-run."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bitrix_support import oauth_client
from kassa_appliance.appliance.config import BitrixConfig, Config, KassaConfig
from kassa_appliance.bitrix.jobs import JOB_ENTITY, publish_job
from kassa_appliance.bitrix.link import bitrix_link
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.fiscal.engine import Engine
from kassa_appliance.fiscal.journal import Job, JobState, Journal
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_faults import Fault, set_fault
from kassa_appliance.registers.simulator_state import load_state
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.limits import PRODUCER_ADDRESS
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID
from sample_tasks import sell
from test_jobs import FAST_ENGINE

KASSA = "kassa-9"
PAIRING_KEYS = ("portal", "client_id", "client_secret", "refresh_token", "token_url")
DEADLINE = 20.0


async def wait_until(predicate: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not predicate():
        assert loop.time() < deadline, f"{what} never happened"
        await asyncio.sleep(0.01)


@dataclass
class LinkedAppliance:
    """An appliance (journal, engine, simulator) linked to an emulated portal."""

    emulator: Emulator
    push: PushServer
    journal: Journal
    engine: Engine
    producer: RestClient
    data_dir: Path

    @property
    def simulator_dir(self) -> Path:
        return self.data_dir / "simulator"

    def token_file(self) -> dict[str, Any]:
        token_file: dict[str, Any] = json.loads((self.data_dir / "tokens.json").read_text())
        return token_file

    async def publish(self, job_id: str, task: Any, *, ring: bool = True) -> None:
        await publish_job(self.producer, job_id=job_id, kassa=KASSA, task=task, ring=ring)

    async def ring(self, job_id: str) -> None:
        await self.producer.result(
            "pull.application.event.add",
            {"COMMAND": "kassa.job", "PARAMS": {"job": job_id, "kassa": KASSA}},
        )

    def item(self, job_id: str) -> Any:
        entity = self.emulator.state.entities[JOB_ENTITY]
        return next(i for i in entity.items.values() if i.name == job_id)

    async def done_in_bitrix(self, job_id: str) -> dict[str, Any]:
        await wait_until(lambda: self.journal.get(job_id) is not None, f"{job_id} received")
        await wait_until(
            lambda: self.item(job_id).properties.get("STATE") == "done", f"{job_id} done"
        )
        result: dict[str, Any] = json.loads(self.item(job_id).properties["RESULT"] or "")
        return result

    def job(self, job_id: str) -> Job:
        job = self.journal.get(job_id)
        assert job is not None
        return job

    def sells_on_the_register(self) -> int:
        state = load_state(self.simulator_dir)
        return 0 if state is None else state.document_counts.get("sell", 0)


@pytest.fixture
async def linked(tmp_path: Path) -> AsyncIterator[LinkedAppliance]:
    push = PushServer(PushSettings(buffer_delay=(0.0, 0.0)))
    await push.start("127.0.0.1", 0)
    emulator = Emulator(push=push)
    await emulator.start()
    journal = Journal(tmp_path / "journal.sqlite3")
    engine = Engine(journal, SimulatorRegister(tmp_path / "simulator"), FAST_ENGINE)
    worker = asyncio.create_task(engine.run())
    pairing = emulator.credentials()
    config = Config(
        bitrix=BitrixConfig.model_validate({key: pairing[key] for key in PAIRING_KEYS}),
        kassa=KassaConfig(id=KASSA),
    )
    producer = oauth_client(
        emulator,
        tmp_path / "producer.json",
        pairing=emulator.credentials(CASHIER_USER_ID),
        local_address=PRODUCER_ADDRESS,  # the Bitrix24 side: its own rate-limit bucket
    )
    appliance = LinkedAppliance(emulator, push, journal, engine, producer, tmp_path)
    try:
        async with bitrix_link(config.bitrix, config.kassa.id, tmp_path, engine) as link:
            assert link is not None
            await wait_until(
                lambda: JOB_ENTITY in emulator.state.entities and push.stats.connections > 0,
                "bootstrap and push connection",
            )
            yield appliance
    finally:
        await producer.aclose()
        await engine.stop()
        await worker
        journal.close()
        await emulator.stop()
        await push.stop()


async def test_a_doorbell_over_push_gets_a_job_printed_and_reported(
    linked: LinkedAppliance,
) -> None:
    job_id = str(uuid.uuid4())
    await linked.publish(job_id, sell("42.00"))

    result = await linked.done_in_bitrix(job_id)

    # Bitrix24 accepted the write-back, so the journal marks the job reported.
    await wait_until(lambda: linked.job(job_id).state is JobState.REPORTED, "reported")
    assert "&s=42.00&" in result["qr"]
    assert linked.emulator.api.calls.get("pull.application.config.get", 0) >= 1


async def test_repeated_doorbells_for_one_job_print_one_receipt(linked: LinkedAppliance) -> None:
    job_id = str(uuid.uuid4())
    await linked.publish(job_id, sell("10.00"))
    for _ in range(5):
        await linked.ring(job_id)

    await linked.done_in_bitrix(job_id)
    for _ in range(3):  # and after it is done
        await linked.ring(job_id)
    await asyncio.sleep(0.3)

    assert linked.sells_on_the_register() == 1


async def test_a_push_server_restart_in_the_middle_of_a_job_loses_nothing(
    linked: LinkedAppliance,
) -> None:
    set_fault(linked.simulator_dir, "print_delay", Fault(seconds=0.5))
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await linked.publish(first, sell("11.00"))
    await wait_until(
        lambda: (
            (job := linked.journal.get(first)) is not None and job.state is JobState.FISCALIZING
        ),
        "the first job printing",
    )
    connections = linked.push.stats.connections
    await linked.push.restart(down_for=0.3)
    # Rung while the push server is down or the appliance is reconnecting.
    await linked.publish(second, sell("12.00"))

    await linked.done_in_bitrix(first)
    await linked.done_in_bitrix(second)
    assert linked.push.stats.connections > connections, "the appliance never reconnected"
    assert linked.sells_on_the_register() == 2


async def test_access_tokens_expiring_mid_run_are_refreshed_and_jobs_keep_flowing(
    linked: LinkedAppliance,
) -> None:
    before = str(uuid.uuid4())
    await linked.publish(before, sell("20.00"))
    await linked.done_in_bitrix(before)
    tokens_before = linked.token_file()

    linked.emulator.state.expire_access_tokens()
    after = str(uuid.uuid4())
    await linked.publish(after, sell("21.00"))
    result = await linked.done_in_bitrix(after)

    assert "&s=21.00&" in result["qr"]
    assert linked.sells_on_the_register() == 2
    assert linked.token_file() != tokens_before, "the rotated refresh token was not persisted"
