"""Jobs are fiscalised in the order Bitrix24 stored them (item id), whichever way the daemon
learns of them: here a push-server restart, jobs stored while it was down and their
doorbells rung in the opposite order, so after the reconnect the replayed doorbells race
the on-connect reconciliation. The receipts must still come out in item-id order."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
import uuid

from kassa_appliance.fiscal.journal import JobState
from sample_tasks import sell
from test_bitrix_link import LinkedAppliance, linked, wait_until  # noqa: F401

JOBS = 8


def fd_number(linked: LinkedAppliance, job_id: str) -> int:
    """The fiscal document number the register gave the job's receipt."""
    result = linked.job(job_id).result
    assert isinstance(result, dict)
    return int(result["fiscalParams"]["fiscalDocumentNumber"])


async def test_replayed_doorbells_racing_reconciliation_keep_item_id_order(
    linked: LinkedAppliance,
) -> None:
    jobs = [f"order-{number}-{uuid.uuid4().hex[:6]}" for number in range(JOBS)]
    first = f"first-{uuid.uuid4().hex[:6]}"  # a doorbell heard live: the client has a mid
    await linked.publish(first, sell("1.00"))
    await linked.done_in_bitrix(first)
    restart = asyncio.create_task(linked.push.restart(down_for=0.4))
    await asyncio.sleep(0.05)  # the server is down now: doorbells go to its history only
    for number, job_id in enumerate(jobs):
        await linked.publish(job_id, sell(f"{number + 1}.00"), ring=False)
    for job_id in reversed(jobs):  # several producers: bells need not ring in item order
        await linked.ring(job_id)
    await restart

    for job_id in jobs:
        await wait_until(
            lambda job_id=job_id: (
                (j := linked.journal.get(job_id)) is not None and j.state is JobState.REPORTED
            ),
            f"{job_id} reported",
        )
    by_item = sorted(jobs, key=lambda j: linked.item(j).id)
    assert by_item == jobs
    printed = sorted(jobs, key=lambda j: fd_number(linked, j))
    assert printed == by_item, "receipts were printed out of item-id order"
    assert linked.sells_on_the_register() == JOBS + 1  # nothing lost, nothing doubled
    assert linked.push.stats.connections >= 2  # it did reconnect (and replayed by mid)


async def test_doorbells_rung_out_of_order_while_connected_keep_item_id_order(
    linked: LinkedAppliance,
) -> None:
    jobs = [f"live-{number}-{uuid.uuid4().hex[:6]}" for number in range(JOBS)]
    for number, job_id in enumerate(jobs):
        await linked.publish(job_id, sell(f"{number + 1}.00"), ring=False)
    for job_id in reversed(jobs):
        await linked.ring(job_id)
    for job_id in jobs:
        await wait_until(
            lambda job_id=job_id: (
                (j := linked.journal.get(job_id)) is not None and j.state is JobState.REPORTED
            ),
            f"{job_id} reported",
        )
    printed = sorted(jobs, key=lambda j: fd_number(linked, j))
    assert printed == jobs
