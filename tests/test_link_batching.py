"""What a receipt costs in REST requests, counted by the emulator's rate limiter (every HTTP
request to ``/rest/`` passes it; a ``batch`` counts once): an isolated receipt at most 2
(one read, one batch with the result, the state event and the heartbeat), a burst well
under 0.1 per receipt (doorbells coalesced into reads of 50 items, outcomes into batches
of 50). The doorbells are published on the push server in-process, so while a count runs
only the appliance talks REST."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
import json
import uuid

from kassa_appliance.bitrix.writeback import STATE_EVENT_COMMAND
from kassa_appliance.fiscal.journal import JobState
from sample_tasks import sell
from test_arrival_order import fd_number
from test_bitrix_link import KASSA, LinkedAppliance, linked, wait_until  # noqa: F401


def appliance_requests(linked: LinkedAppliance) -> int:
    return linked.emulator.limits.stats.admitted


async def quiet(linked: LinkedAppliance, seconds: float = 0.6) -> int:
    """Wait until no REST request arrived for ``seconds``; the request count then."""
    count = appliance_requests(linked)
    while True:
        await asyncio.sleep(seconds)
        now = appliance_requests(linked)
        if now == count:
            return now
        count = now


async def ring_in_process(linked: LinkedAppliance, job_id: str) -> None:
    """The producer's doorbell, without a REST request of its own."""
    await linked.push.publish_app_event(
        "kassa.job", {"job": job_id, "kassa": KASSA}, client_id=linked.emulator.state.client_id
    )


async def test_an_isolated_receipt_costs_at_most_two_requests(linked: LinkedAppliance) -> None:
    job_id = str(uuid.uuid4())
    await linked.publish(job_id, sell("12.00"), ring=False)
    before = await quiet(linked)

    await ring_in_process(linked, job_id)
    await linked.done_in_bitrix(job_id)
    await wait_until(lambda: linked.job(job_id).state is JobState.REPORTED, "reported")
    await asyncio.sleep(2.5)  # past the accepted-mark delay: nothing more may follow
    spent = await quiet(linked) - before

    print(f"an isolated receipt: {spent} REST requests")
    assert spent <= 2, f"an isolated receipt cost {spent} REST requests"
    # The app heard of the outcome: a state event went out in the write-back batch.
    events = [e.message for e in linked.emulator.api.published]
    states = [
        job
        for event in events
        if event["command"] == STATE_EVENT_COMMAND
        for job in event["params"]["jobs"]
    ]
    assert {"job": job_id, "item": str(linked.item(job_id).id), "state": "done"} in states
    # and the heartbeat rode along: the device item shows the receipt.
    device = next(iter(linked.emulator.state.entities["KASSADEV"].items.values()))
    assert json.loads(device.properties["STATUS"] or "")["processed"] == 1


async def test_a_burst_costs_less_than_a_tenth_of_a_request_per_receipt(
    linked: LinkedAppliance,
) -> None:
    jobs = [f"burst-{number:04d}-{uuid.uuid4().hex[:6]}" for number in range(200)]
    for number, job_id in enumerate(jobs):
        await linked.publish(job_id, sell(f"{number + 1}.00"), ring=False)
    before = await quiet(linked)

    for job_id in jobs:
        await ring_in_process(linked, job_id)
    for job_id in jobs:
        await wait_until(
            lambda job_id=job_id: (
                (j := linked.journal.get(job_id)) is not None and j.state is JobState.REPORTED
            ),
            f"{job_id} reported",
        )
    spent = await quiet(linked) - before

    print(f"{len(jobs)} receipts: {spent} REST requests")
    assert spent < 0.1 * len(jobs), f"{len(jobs)} receipts cost {spent} REST requests"
    assert all(linked.item(j).properties["STATE"] == "done" for j in jobs)
    assert linked.sells_on_the_register() == len(jobs)
    # Coalesced reads keep Bitrix24's order: receipts printed in item-id order.
    by_item = sorted(jobs, key=lambda j: linked.item(j).id)
    assert [fd_number(linked, j) for j in by_item] == sorted(fd_number(linked, j) for j in jobs)
    assert linked.emulator.limits.stats.refused_by_source.get("127.0.0.1", 0) == 0  # no 503
