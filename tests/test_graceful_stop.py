"""SIGTERM while a receipt prints: the daemon finishes it and writes the outcome back to
Bitrix24 before it exits (emulated portal in this process, the daemon a real process)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from kassa_appliance.appliance.daemon import journal_path
from kassa_appliance.fiscal.journal import JobState, Journal
from kassa_appliance.testbeds.demo_stack import ApplianceStack, StackSettings
from sample_tasks import sell

PRINT_SECONDS = 1.5
DEADLINE = 30.0


async def wait_for_state(stack: ApplianceStack, job_id: str, state: JobState) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        with Journal(journal_path(stack.data_dir)) as journal:
            if journal.state_of(job_id) is state:
                return
        assert loop.time() < deadline, f"{job_id} never became {state.value}"
        await asyncio.sleep(0.02)


async def test_sigterm_mid_receipt_finishes_it_and_reports_it_before_exiting(
    tmp_path: Path,
) -> None:
    settings = StackSettings(root=tmp_path, print_delay=PRINT_SECONDS, push_buffer_delay=0.0)
    async with ApplianceStack(settings) as stack:
        # A first receipt opens the shift, so the next one is the document in flight.
        await stack.publish("warm-up", sell("1.00"))
        await wait_for_state(stack, "warm-up", JobState.REPORTED)
        job_id = str(uuid.uuid4())
        item_id = await stack.publish(job_id, sell("77.00"))
        await wait_for_state(stack, job_id, JobState.FISCALIZING)  # it is printing now

        assert await stack.stop_daemon() == 0

        item = stack.stored_item(item_id)
        assert item is not None
        assert item.properties.get("STATE") == "done", item.properties
        with Journal(journal_path(stack.data_dir)) as journal:
            assert journal.state_of(job_id) is JobState.REPORTED
