"""Bounded write-backs: one outcome with a huge ERROR never holds up the others.

The emulator refuses request bodies over its limit with HTTP 413, as the web server in
front of a portal does; the journal holds a job failed with a multi-megabyte message (as
issue 9 found: a 256 KB task produced a 6.7 MB ERROR) next to normal jobs."""

# The fixtures imported from test_jobs/test_bitrix_link are parameters of the same name.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import json
import uuid

from kassa_appliance.bitrix.jobs import publish_job
from kassa_appliance.bitrix.writeback import MESSAGE_LIMIT, SHORT_MESSAGE_LIMIT
from kassa_appliance.fiscal.journal import JobState
from sample_tasks import sell
from test_jobs import KASSA, World, props, running, wait_until, world  # noqa: F401

HUGE = 6_700_000
CYRILLIC_HUGE = 2_000_000
"""Characters of a Cyrillic message: 4 MB in the journal, 12 MB percent-encoded in a batch
— over the portal's 8 MiB limit."""


async def huge_failed_job(world: World, message: str) -> str:
    """A KASSAJOB item whose job the journal holds as failed with ``message``."""
    job_id = f"huge-{uuid.uuid4()}"
    await publish_job(world.producer, job_id=job_id, kassa=KASSA, task=sell(), ring=False)
    world.journal.submit_failed(
        job_id,
        {"refused": "test"},
        source="bitrix",
        error_code="invalid-task",
        error_message=message,
        needs_report=True,
    )
    return job_id


async def normal_jobs(world: World, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for job_id in ids:
        await publish_job(world.producer, job_id=job_id, kassa=KASSA, task=sell(), ring=False)
    return ids


def message_of(world: World, job_id: str) -> str:
    error = json.loads(props(world.item(job_id))["ERROR"] or "")
    return str(error["message"])


async def test_a_huge_error_is_written_capped_and_the_others_get_through(world: World) -> None:
    await world.link().ensure_storage()
    huge = await huge_failed_job(world, "ж" * CYRILLIC_HUGE)
    normal = await normal_jobs(world, 5)
    async with running(world.link()):
        for job_id in normal:
            await wait_until(lambda job_id=job_id: props(world.item(job_id)).get("STATE") == "done")
        await wait_until(lambda: props(world.item(huge)).get("STATE") == "failed")
        await wait_until(lambda: world.journal.state_of(huge) is JobState.FAILED)
    message = message_of(world, huge)
    assert len(message) < MESSAGE_LIMIT + 100
    assert "…" in message and f"{CYRILLIC_HUGE:,} characters" in message
    assert world.journal.get(huge).reported_at is not None  # type: ignore[union-attr]


async def test_an_outcome_the_portal_refuses_is_sent_alone_then_shortened(world: World) -> None:
    """A portal whose limit is below one capped ERROR: the batch is refused, every normal
    outcome is written alone, the big one in its short form."""
    await world.link().ensure_storage()
    world.emulator.max_body_bytes = 6 * 1024
    huge = await huge_failed_job(world, "y" * HUGE)
    normal = await normal_jobs(world, 5)
    async with running(world.link()) as link:
        for job_id in normal:
            await wait_until(lambda job_id=job_id: props(world.item(job_id)).get("STATE") == "done")
        await wait_until(lambda: props(world.item(huge)).get("STATE") == "failed")
        assert link.health.snapshot()["skipped_total"] == 0
    message = message_of(world, huge)
    assert len(message) < SHORT_MESSAGE_LIMIT + 100 and message.endswith("characters in all)")
    assert world.receipts() == 5


async def test_an_outcome_refused_even_shortened_is_skipped_and_listed(world: World) -> None:
    """A portal whose limit is below even the short form of a Cyrillic message (two bytes a
    character): it is given up (listed in the link status), the others go on."""
    await world.link().ensure_storage()
    world.emulator.max_body_bytes = 1900
    huge = await huge_failed_job(world, "ж" * 100_000)
    normal = await normal_jobs(world, 3)
    async with running(world.link()) as link:
        for job_id in normal:
            await wait_until(lambda job_id=job_id: props(world.item(job_id)).get("STATE") == "done")
        await wait_until(lambda: link.health.snapshot()["skipped_total"] == 1)
        skipped = link.health.snapshot()["skipped_items"]
        assert skipped[0]["item"] == f"job {huge}" and "refused" in skipped[0]["reason"]
        assert props(world.item(huge)).get("STATE") == "new"
        # Not retried in a loop: the write-back count stays put while the link runs on.
        calls = dict(world.emulator.api.calls)
        await asyncio.sleep(0.5)  # ten write-back sweeps
    assert (
        world.emulator.api.calls.get("entity.item.update", 0) - calls.get("entity.item.update", 0)
        <= 2
    )
