"""Cancelling from Bitrix24: an operator sets a KASSAJOB item's STATE to ``cancelled``.

A job still ``received`` is cancelled (journal: failed, code ``cancelled``, who did it;
item: STATE=cancelled + ERROR); one that may have reached the register is not — the item
says why (STATE=accepted, ERROR ``cancel-refused``) and later gets its real outcome.
Real emulator, journal, engine and simulator."""

# The fixtures imported from test_jobs/test_bitrix_link are parameters of the same name.
# ruff: noqa: F811

from __future__ import annotations

import json
import uuid

from kassa_appliance.bitrix.jobs import publish_job
from kassa_appliance.fiscal.journal import JobState
from kassa_appliance.registers.simulator_faults import Fault, set_fault
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID
from sample_tasks import sell
from test_jobs import KASSA, World, props, running, wait_until, world  # noqa: F401


async def set_state(world: World, job_id: str, state: str) -> None:
    await world.producer.result(
        "entity.item.update",
        {"ENTITY": "KASSAJOB", "ID": world.item(job_id).id, "PROPERTY_VALUES": {"STATE": state}},
    )


def error_of(world: World, job_id: str) -> dict[str, str]:
    error: dict[str, str] = json.loads(props(world.item(job_id))["ERROR"] or "")
    return error


async def test_a_received_job_cancelled_in_bitrix24_is_not_printed(world: World) -> None:
    set_fault(world.root / "simulator", "print_delay", Fault(seconds=1.5))
    link = world.link(reconcile_interval=0.1)
    await link.ensure_storage()
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    async with running(link):
        await publish_job(world.producer, job_id=first, kassa=KASSA, task=sell(), ring=False)
        await wait_until(lambda: world.journal.state_of(first) is JobState.FISCALIZING)
        await publish_job(world.producer, job_id=second, kassa=KASSA, task=sell(), ring=False)
        await wait_until(lambda: world.journal.state_of(second) is JobState.RECEIVED)
        await set_state(world, second, "cancelled")
        await wait_until(lambda: bool(props(world.item(second)).get("ERROR")))
        assert props(world.item(second))["STATE"] == "cancelled"
        assert error_of(world, second)["code"] == "cancelled"
        job = world.journal.get(second)
        assert job is not None and job.state.is_final and job.error_code == "cancelled"
        assert f"bitrix24 user {CASHIER_USER_ID}" in (job.error_message or "")
        await wait_until(lambda: props(world.item(first)).get("STATE") == "done")
    assert world.receipts() == 1


async def test_a_job_on_the_register_is_not_cancelled_and_the_item_says_why(world: World) -> None:
    set_fault(world.root / "simulator", "print_delay", Fault(seconds=1.5))
    link = world.link(reconcile_interval=0.1)
    await link.ensure_storage()
    job_id = str(uuid.uuid4())
    async with running(link):
        await publish_job(world.producer, job_id=job_id, kassa=KASSA, task=sell(), ring=False)
        await wait_until(lambda: world.journal.state_of(job_id) is JobState.FISCALIZING)
        await set_state(world, job_id, "cancelled")
        await wait_until(lambda: bool(props(world.item(job_id)).get("ERROR")))
        assert props(world.item(job_id))["STATE"] == "accepted"  # before the outcome
        assert error_of(world, job_id)["code"] == "cancel-refused"
        assert "register" in error_of(world, job_id)["message"]
        await wait_until(lambda: props(world.item(job_id)).get("STATE") == "done")
        assert props(world.item(job_id))["ERROR"] == ""
    assert world.receipts() == 1


async def test_an_item_cancelled_before_it_was_taken_is_answered_and_recorded(
    world: World,
) -> None:
    link = world.link(reconcile_interval=0.1)
    await link.ensure_storage()
    job_id = str(uuid.uuid4())
    await publish_job(world.producer, job_id=job_id, kassa=KASSA, task=sell(), ring=False)
    await set_state(world, job_id, "cancelled")
    async with running(link):
        await wait_until(lambda: bool(props(world.item(job_id)).get("ERROR")))
        await wait_until(lambda: world.journal.state_of(job_id) is JobState.FAILED)
    assert props(world.item(job_id))["STATE"] == "cancelled"
    assert error_of(world, job_id)["code"] == "cancelled"
    assert world.receipts() == 0
