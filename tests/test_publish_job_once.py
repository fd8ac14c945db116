"""A producer's KASSAJOB add whose answer is lost is not repeated blindly: the REST client
asks whether the first try took effect (an item with the job's NAME) before repeating, so
one job is one outbox item (the journal would print it once anyway, but the Bitrix24
journal would show two)."""

from __future__ import annotations

from pathlib import Path

from bitrix_support import oauth_client
from kassa_appliance.bitrix.jobs import JOB_ENTITY
from kassa_appliance.bitrix.storage import ensure_storage, find_job_item, publish_job
from kassa_appliance.testbeds.bitrix24.app import Emulator
from sample_tasks import sell


def items_named(emulator: Emulator, name: str) -> list[int]:
    entity = emulator.state.entities[JOB_ENTITY]
    return [item_id for item_id, item in entity.items.items() if item.name == name]


async def test_an_add_whose_answer_was_lost_is_found_not_repeated(tmp_path: Path) -> None:
    async with Emulator() as emulator, oauth_client(emulator, tmp_path / "tokens.json") as rest:
        await ensure_storage(rest)
        emulator.faults.add("drop_answer", methods=["entity.item.add"])
        item_id = await publish_job(
            rest, job_id="job-lost-answer", kassa="kassa-1", task=sell(), ring=False
        )
        assert emulator.faults.fired["drop_answer"] == 1
        assert items_named(emulator, "job-lost-answer") == [item_id]
        assert await find_job_item(rest, "job-lost-answer") == item_id


async def test_an_add_that_never_arrived_is_repeated(tmp_path: Path) -> None:
    async with Emulator() as emulator, oauth_client(emulator, tmp_path / "tokens.json") as rest:
        await ensure_storage(rest)
        emulator.faults.add("drop", methods=["entity.item.add"])
        item_id = await publish_job(
            rest, job_id="job-dropped", kassa="kassa-1", task=sell(), ring=False
        )
        assert emulator.faults.fired["drop"] == 1
        assert items_named(emulator, "job-dropped") == [item_id]
        assert await find_job_item(rest, "nobody") is None
