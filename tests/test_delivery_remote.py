"""Expected jobs: handed to the Bitrix24 outbox, printed by whichever kassa; the outcome is
read from the KASSAJOB item (written the way a kassa's write-back writes it) through the
REST client, or from the local journal when the job was printed here. Real Bitrix24
emulator over loopback, real journal, engine and simulator, a loopback recipient."""

# The fixtures imported from test_jobs are parameters of the same name.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from delivery_support import QR, HookSender, Recipient, finish_job, make_worker
from delivery_support import wait_until as wait_for
from kassa_appliance.bitrix.jobs import publish_job
from kassa_appliance.bitrix.storage import ensure_storage
from kassa_appliance.bitrix.writeback import outcome_properties
from kassa_appliance.fiscal.journal import Job, Journal
from kassa_appliance.fiscal.journal_deliveries import AWAITING, SENT
from sample_tasks import sell
from test_jobs import KASSA, World, running, world  # noqa: F401

FAR_KASSA = "kassa-far"


@pytest.fixture
async def recipient() -> AsyncIterator[Recipient]:
    service = Recipient()
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def target(name: str) -> dict[str, str]:
    return {"kind": "hook", "chat": name}


async def publish(world: World, kassa: str, targets: list[dict[str, str]]) -> str:
    job_id = str(uuid.uuid4())
    await publish_job(
        world.producer,
        job_id=job_id,
        kassa=kassa,
        task=sell(),
        source="bot",
        reply={"targets": targets},
        ring=False,
    )
    return job_id


async def write_back(world: World, job: Job) -> None:
    """What the far kassa's write-back does with its finished job (bitrix/writeback.py)."""
    await world.producer.result(
        "entity.item.update",
        {
            "ENTITY": "KASSAJOB",
            "ID": world.item(job.id).id,
            "PROPERTY_VALUES": outcome_properties(job),
        },
    )


def far_job(root: Path, job_id: str, *, fail: str | None = None) -> Job:
    """The job as the far kassa's journal has it once printed (or failed)."""
    with Journal(root / "far-kassa" / "journal.sqlite3") as far:
        return finish_job(far, job_id, None, fail=fail)


async def test_an_expected_job_printed_by_another_kassa_is_delivered_from_its_item(
    world: World, recipient: Recipient, session: aiohttp.ClientSession
) -> None:
    await ensure_storage(world.producer)
    job_id = await publish(world, FAR_KASSA, [target("a")])
    worker = make_worker(world.root / "journal.sqlite3", rest=world.appliance_rest)
    worker.register_sender(HookSender(recipient, session))
    async with worker:
        worker.expect(job_id, [target("a")], kassa=FAR_KASSA)
        worker.expect(job_id, [target("a")], kassa=FAR_KASSA)  # idempotent
        await wait_for(lambda: worker.remote_reads >= 2, "two polls")
        assert worker.ledger.for_job(job_id)[0].state == AWAITING  # STATE=new: not final
        assert worker.status()["awaiting_outcome"] == 1
        await write_back(world, far_job(world.root, job_id))
        await wait_for(lambda: len(recipient.messages) == 1, "the delivery")
        await wait_for(lambda: worker.ledger.for_job(job_id)[0].state == SENT, "the record")
        (row,) = worker.ledger.for_job(job_id)
    assert row.outcome is not None and row.outcome["kassa"] == FAR_KASSA
    assert row.outcome["result"]["fiscalParams"]["fiscalDocumentNumber"] == 17
    assert row.outcome["task"] == sell()
    assert QR in recipient.messages[0].text


async def test_a_failure_and_an_answered_cancel_are_delivered_an_open_cancel_is_not(
    world: World, recipient: Recipient, session: aiohttp.ClientSession
) -> None:
    await ensure_storage(world.producer)
    failed = await publish(world, FAR_KASSA, [target("f")])
    cancelled = await publish(world, FAR_KASSA, [target("c")])
    worker = make_worker(world.root / "journal.sqlite3", rest=world.appliance_rest)
    worker.register_sender(HookSender(recipient, session))
    async with worker:
        worker.expect(failed, [target("f")], kassa=FAR_KASSA)
        worker.expect(cancelled, [target("c")], kassa=FAR_KASSA)
        await write_back(world, far_job(world.root, failed, fail="no paper: load a paper roll"))
        item = world.item(cancelled).id
        await world.producer.result(  # an operator's cancel request, not answered yet
            "entity.item.update",
            {"ENTITY": "KASSAJOB", "ID": item, "PROPERTY_VALUES": {"STATE": "cancelled"}},
        )
        await wait_for(lambda: len(recipient.for_chat("f")) == 1, "the failure's delivery")
        reads = worker.remote_reads
        await wait_for(lambda: worker.remote_reads >= reads + 2, "two more polls")
        assert recipient.for_chat("c") == []
        await world.producer.result(  # the kassa answers the cancel
            "entity.item.update",
            {
                "ENTITY": "KASSAJOB",
                "ID": item,
                "PROPERTY_VALUES": {"ERROR": '{"code":"cancelled","message":"cancelled by Admin"}'},
            },
        )
        await wait_for(lambda: len(recipient.for_chat("c")) == 1, "the cancel's delivery")
    assert "no paper" in recipient.for_chat("f")[0].text
    assert "cancelled" in recipient.for_chat("c")[0].text


async def test_expected_jobs_are_read_fifty_per_request(
    world: World, recipient: Recipient, session: aiohttp.ClientSession
) -> None:
    await ensure_storage(world.producer)
    worker = make_worker(
        world.root / "journal.sqlite3", rest=world.appliance_rest, remote_poll_interval=30.0
    )
    async with worker:
        for number in range(60):
            worker.ledger.add(f"job-{number}", [target("x")], kassa=FAR_KASSA, expected=True)
        worker.wake()
        await wait_for(lambda: worker.remote_reads >= 2, "the poll")
        await asyncio.sleep(0.3)
        assert worker.remote_reads == 2


async def test_an_expected_job_printed_here_is_delivered_once_from_the_journal(
    world: World, recipient: Recipient, session: aiohttp.ClientSession
) -> None:
    """This kassa takes the job from the outbox and prints it: its REPLY names the same
    target as the expectation, so there is one delivery, and the outcome is the local one."""
    link = world.link()
    await link.ensure_storage()
    job_id = await publish(world, KASSA, [target("here")])
    worker = make_worker(world.root / "journal.sqlite3", rest=world.appliance_rest)
    world.engine.add_listener(worker.on_engine_change)
    worker.register_sender(HookSender(recipient, session))
    async with worker:
        worker.expect(job_id, [target("here")], kassa=KASSA)
        async with running(link):
            await link.on_doorbell({"job": job_id, "kassa": KASSA})
            await wait_for(lambda: len(recipient.messages) == 1, "the delivery")
            await wait_for(lambda: worker.ledger.for_job(job_id)[0].state == SENT, "the record")
            await asyncio.sleep(0.3)
            (row,) = worker.ledger.for_job(job_id)
    assert row.outcome is not None and row.outcome["kassa"] == "kassa-d"  # the local outcome
    assert len(recipient.messages) == 1
    job = world.journal.get(job_id)
    assert job is not None and job.qr is not None and job.qr in recipient.messages[0].text


async def test_without_a_portal_an_expected_job_is_still_settled_by_the_local_journal(
    tmp_path: Path, recipient: Recipient, session: aiohttp.ClientSession
) -> None:
    path = tmp_path / "journal.sqlite3"
    worker = make_worker(path)  # no REST client: no link configured
    worker.register_sender(HookSender(recipient, session))
    with Journal(path) as journal:
        async with worker:
            worker.expect("lan-1", [target("l")], kassa=None)
            await asyncio.sleep(0.2)
            status = worker.status()
            assert status["awaiting_outcome"] == 1 and "no Bitrix24 link" in status["waiting"][0]
            finish_job(journal, "lan-1", None)
            worker.wake()
            await wait_for(lambda: len(recipient.messages) == 1, "the delivery")


async def test_portal_errors_are_survived_and_a_vanished_item_fails_after_its_grace(
    world: World, recipient: Recipient, session: aiohttp.ClientSession
) -> None:
    await ensure_storage(world.producer)
    job_id = await publish(world, FAR_KASSA, [target("p")])
    world.emulator.faults.add("error500", count=None, methods=["entity.item.get"])
    worker = make_worker(
        world.root / "journal.sqlite3", rest=world.appliance_rest, missing_item_grace=0.5
    )
    worker.register_sender(HookSender(recipient, session))
    async with worker:
        worker.expect(job_id, [target("p")], kassa=FAR_KASSA)
        worker.expect("never-published", [target("p")], kassa=FAR_KASSA)
        await wait_for(lambda: world.emulator.faults.fired["error500"] >= 4, "the errors")
        await write_back(world, far_job(world.root, job_id))
        world.emulator.faults.clear()
        await wait_for(lambda: len(recipient.messages) == 1, "the delivery")
        await wait_for(lambda: worker.status()["failed"] == 1, "the vanished job's failure")
        (failure,) = worker.status()["failures"]
    assert failure["job"] == "never-published"
    assert "no KASSAJOB item" in failure["reason"] and FAR_KASSA in failure["reason"]
    assert worker.status()["failed"] == 1  # kept after stop
