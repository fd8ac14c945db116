"""The Bitrix24 job protocol end to end: emulator (REST over loopback) → JobLink → journal →
engine → real simulator → write-back. Nothing of ours is mocked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bitrix_support import oauth_client
from kassa_appliance.bitrix.jobs import (
    DEVICE_ENTITY,
    JOB_ENTITY,
    JOB_PROPERTIES,
    EngineAdapter,
    JobLink,
    publish_job,
)
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.fiscal.engine import Engine, EngineSettings
from kassa_appliance.fiscal.journal import JobState, Journal
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_state import load_state
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.limits import PRODUCER_ADDRESS
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID, Item
from sample_tasks import sell

KASSA = "kassa-7"
FAST_ENGINE = EngineSettings(
    retry_interval=0.01, max_retry_interval=0.05, journal_poll_interval=0.02, call_timeout=5.0
)


@dataclass
class World:
    root: Path
    emulator: Emulator
    producer: RestClient
    appliance_rest: RestClient
    journal: Journal
    engine: Engine

    def link(self, **options: Any) -> JobLink:
        return JobLink(
            self.appliance_rest,
            EngineAdapter(self.engine),
            kassa_id=KASSA,
            sweep_interval=0.05,
            retry_base=0.01,
            retry_max=0.05,
            heartbeat_min_gap=0.05,
            **options,
        )

    def item(self, job_id: str) -> Item:
        entity = self.emulator.state.entities[JOB_ENTITY]
        return next(i for i in entity.items.values() if i.name == job_id)

    def receipts(self) -> int:
        state = load_state(self.root / "simulator")
        return 0 if state is None else state.document_counts.get("sell", 0)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with Emulator() as emulator:
        journal = Journal(tmp_path / "journal.sqlite3")
        engine = Engine(journal, SimulatorRegister(tmp_path / "simulator"), FAST_ENGINE)
        worker = asyncio.create_task(engine.run())
        appliance_rest = oauth_client(emulator, tmp_path / "appliance" / "tokens.json")
        producer = oauth_client(
            emulator,
            tmp_path / "producer" / "tokens.json",
            pairing=emulator.credentials(user_id=CASHIER_USER_ID),
            local_address=PRODUCER_ADDRESS,  # the Bitrix24 side: its own rate-limit bucket
        )
        try:
            yield World(tmp_path, emulator, producer, appliance_rest, journal, engine)
        finally:
            await engine.stop()
            await asyncio.wait_for(worker, 30)
            await producer.aclose()
            await appliance_rest.aclose()
            journal.close()


@contextlib.asynccontextmanager
async def running(link: JobLink) -> AsyncIterator[JobLink]:
    task = asyncio.create_task(link.run())
    try:
        yield link
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


def props(item: Item) -> dict[str, Any]:
    return dict(item.properties)


async def test_storage_is_created_with_all_properties_and_bootstrap_is_idempotent(
    world: World,
) -> None:
    link = world.link()
    await link.ensure_storage()
    await link.ensure_storage()
    entities = world.emulator.state.entities
    assert set(entities) == {JOB_ENTITY, DEVICE_ENTITY}
    assert tuple(entities[JOB_ENTITY].properties) == JOB_PROPERTIES
    assert entities[JOB_ENTITY].access["AU"] == "W"  # cashiers may add jobs
    assert world.emulator.api.calls["entity.add"] == 2
    # A property an older version did not create is added on the next start.
    del entities[JOB_ENTITY].properties["ERROR"]
    await link.ensure_storage()
    assert "ERROR" in entities[JOB_ENTITY].properties


async def test_a_rung_job_is_fiscalised_and_done_with_fiscal_params_and_qr(world: World) -> None:
    # No push server in this world: the job comes in through reconciliation, so make it
    # frequent (the doorbell over a real WebSocket is in test_bitrix_link).
    async with running(world.link(reconcile_interval=0.1)):
        await wait_until(lambda: JOB_ENTITY in world.emulator.state.entities)
        job_id = str(uuid.uuid4())
        await publish_job(world.producer, job_id=job_id, kassa=KASSA, task=sell("150.00"))
        link_event = world.emulator.api.published[-1]
        assert link_event.message["params"] == {"job": job_id, "kassa": KASSA}
        await wait_until(lambda: props(world.item(job_id)).get("STATE") == "done")
        await wait_until(lambda: world.journal.state_of(job_id) is JobState.REPORTED)
    job = world.journal.get(job_id)
    assert job is not None
    assert job.created_by == CASHIER_USER_ID and job.source == "bitrix"
    result = json.loads(props(world.item(job_id))["RESULT"] or "")
    assert (
        result["fiscalParams"]["total"] == 150.0 or result["fiscalParams"]["fiscalDocumentNumber"]
    )
    assert result["qr"].startswith("t=") and "&s=150.00&" in result["qr"]
    assert world.receipts() == 1


async def test_the_doorbell_fetches_the_stored_item_directly(world: World) -> None:
    link = world.link()
    await link.ensure_storage()
    job_id = str(uuid.uuid4())
    await publish_job(world.producer, job_id=job_id, kassa=KASSA, task=sell(), ring=False)
    await link.on_doorbell({"job": job_id, "kassa": KASSA})
    job = await world.engine.wait_for(job_id, timeout=15)
    assert job.state is JobState.FISCALIZED
    await link.report_pending()
    assert props(world.item(job_id))["STATE"] == "done"
    await link.on_doorbell({"job": job_id, "kassa": KASSA})  # a repeated bell prints nothing
    assert world.receipts() == 1


async def test_reconciliation_picks_up_a_job_created_while_the_appliance_was_down(
    world: World,
) -> None:
    await world.link().ensure_storage()
    job_id = str(uuid.uuid4())
    await publish_job(world.producer, job_id=job_id, kassa=KASSA, task=sell(), ring=False)
    assert world.emulator.api.published == []  # no doorbell was ever rung
    async with running(world.link()):
        await wait_until(lambda: props(world.item(job_id)).get("STATE") == "done")
    assert world.receipts() == 1


async def test_jobs_addressed_to_another_kassa_are_ignored(world: World) -> None:
    link = world.link()
    await link.ensure_storage()
    job_id = str(uuid.uuid4())
    await publish_job(world.producer, job_id=job_id, kassa="kassa-other", task=sell())
    await link.on_doorbell({"job": job_id, "kassa": "kassa-other"})
    await link.on_doorbell({"job": job_id, "kassa": KASSA})  # lying bell: item says other
    assert await link.reconcile() == 0
    await link.report_pending()
    assert world.journal.get(job_id) is None
    assert props(world.item(job_id))["STATE"] == "new"
    assert world.receipts() == 0


async def test_a_creator_outside_the_allow_list_is_refused_and_nothing_is_printed(
    world: World,
) -> None:
    link = world.link(allowed_users=frozenset({1}))
    await link.ensure_storage()
    job_id = str(uuid.uuid4())
    await publish_job(world.producer, job_id=job_id, kassa=KASSA, task=sell())
    await link.on_doorbell({"job": job_id, "kassa": KASSA})
    await link.report_pending()
    item = props(world.item(job_id))
    assert item["STATE"] == "failed"
    error = json.loads(item["ERROR"] or "")
    assert error["code"] == "creator-not-allowed"
    assert f"user {CASHIER_USER_ID}" in error["message"]
    await asyncio.sleep(0.1)  # give the engine every chance to (wrongly) print it
    assert world.receipts() == 0
    job = world.journal.get(job_id)
    assert job is not None and job.state is JobState.FAILED and job.reported_at is not None


async def test_a_task_that_is_not_json_fails_with_a_clear_reason(world: World) -> None:
    link = world.link()
    await link.ensure_storage()
    job_id = str(uuid.uuid4())
    await publish_job(world.producer, job_id=job_id, kassa=KASSA, task="{'type': 'sell'")
    await link.reconcile()
    await link.report_pending()
    error = json.loads(props(world.item(job_id))["ERROR"] or "")
    assert error["code"] == "invalid-task"
    assert "TASK: not valid JSON" in error["message"]  # the shared input-limit wording


async def test_write_back_is_retried_through_500s_and_across_a_restart_until_accepted(
    world: World,
) -> None:
    link = world.link()
    await link.ensure_storage()
    job_id = str(uuid.uuid4())
    await publish_job(world.producer, job_id=job_id, kassa=KASSA, task=sell(), ring=False)
    await link.on_doorbell({"job": job_id, "kassa": KASSA})  # taken (reconciliation batches)
    world.emulator.faults.add("error500", count=None, methods=["batch"])
    async with running(world.link()):
        await wait_until(lambda: (j := world.journal.get(job_id)) is not None and j.state.is_final)
        await wait_until(lambda: world.emulator.faults.fired["error500"] >= 12)
        assert props(world.item(job_id))["STATE"] == "new"  # nothing got through yet
    # "Restart": a fresh link with no memory of item ids; Bitrix24 recovers after more 500s.
    world.emulator.faults.clear()
    world.emulator.faults.add("error500", count=6, methods=["batch"])
    async with running(world.link()):
        await wait_until(lambda: props(world.item(job_id)).get("STATE") == "done")
        # The journal notes the write-back once Bitrix24's answer is in.
        await wait_until(lambda: world.journal.state_of(job_id) is JobState.REPORTED)
    assert world.receipts() == 1


async def test_heartbeat_keeps_one_device_item_current(world: World) -> None:
    status = {"queue": 0}
    link = world.link(device_status=lambda: dict(status))
    await link.ensure_storage()
    assert await link.heartbeat() is True
    assert await link.heartbeat() is False  # unchanged and not due
    status["queue"] = 3
    await asyncio.sleep(0.06)
    assert await link.heartbeat() is True
    items = list(world.emulator.state.entities[DEVICE_ENTITY].items.values())
    assert len(items) == 1 and items[0].name == KASSA
    assert json.loads(items[0].properties["STATUS"] or "") == {"queue": 3}
