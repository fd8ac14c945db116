"""The daemon's REST budget (bitrix/budget.py): one client-side bucket per portal that
every REST request of the link goes through, so the daemon itself never causes a 503, with
priorities and a backlog shown in status. Against the emulator with its limit on."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bitrix_support import FAST_RETRY
from kassa_appliance.bitrix.auth import OAuthAuth, TokenFile, WebhookAuth
from kassa_appliance.bitrix.budget import DEFAULT_BURST, DEFAULT_RATE, Priority, RestBudget
from kassa_appliance.bitrix.errors import RateLimited
from kassa_appliance.bitrix.jobs import JobLink
from kassa_appliance.bitrix.link import bitrix_link
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.bitrix.settings import BitrixConfig
from kassa_appliance.fiscal.engine import Engine
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.testbeds.bitrix24.app import Emulator, oauth_credentials
from kassa_appliance.testbeds.bitrix24.limits import PRODUCER_ADDRESS, LimitProfile
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID
from sample_tasks import sell
from test_bitrix_link import KASSA, PAIRING_KEYS, LinkedAppliance, wait_until
from test_jobs import FAST_ENGINE

SMALL_PORTAL = LimitProfile("small", rate=2.0, burst=10)
"""The real 2/s drain with a small ceiling, so the edge is reached in a few requests."""


def hook_client(emulator: Emulator, budget: RestBudget | None) -> RestClient:
    return RestClient(WebhookAuth(emulator.webhook_url()), retry=FAST_RETRY, budget=budget)


async def test_a_burst_through_the_budget_gets_no_503_at_the_real_rate() -> None:
    async with Emulator(limits=SMALL_PORTAL) as portal:
        budget = RestBudget(rate=1.8, burst=8)
        async with hook_client(portal, budget) as rest:
            started = time.monotonic()
            await asyncio.gather(*(rest.result("profile") for _ in range(14)))
            elapsed = time.monotonic() - started

    assert portal.limits.stats.refused == 0
    assert budget.snapshot()["limited_answers"] == 0
    assert elapsed >= (14 - 8) / 1.8 - 0.2  # paced, not refused
    assert budget.snapshot()["waited"] == 6


async def test_without_the_budget_the_same_burst_is_refused() -> None:
    """The test above can fail: the same work without a budget runs into 503s."""
    async with Emulator(limits=SMALL_PORTAL) as portal, hook_client(portal, None) as rest:
        outcomes = await asyncio.gather(
            *(rest.result("profile") for _ in range(14)), return_exceptions=True
        )
    assert portal.limits.stats.refused > 0
    assert any(isinstance(outcome, RateLimited) for outcome in outcomes)


async def test_a_batch_takes_one_token_per_50_commands_at_its_priority() -> None:
    async with Emulator(limits=SMALL_PORTAL) as portal:
        budget = RestBudget(rate=1.8, burst=8)
        async with hook_client(portal, budget) as rest:
            items = await rest.batch([("profile", {})] * 60, priority=Priority.RESULT)
            pages = await rest.list_all("profile", priority=Priority.HEARTBEAT)
    assert len(items) == 60 and all(item.error is None for item in items)
    assert pages
    assert budget.snapshot()["requests"] == {"result": 2, "job": 0, "status": 0, "heartbeat": 1}


async def test_queued_requests_go_out_by_priority_then_in_arrival_order() -> None:
    budget = RestBudget(rate=20.0, burst=1)
    await budget.acquire(Priority.JOB)  # the only token
    order: list[str] = []

    async def request(priority: Priority, name: str) -> None:
        await budget.acquire(priority)
        order.append(name)

    tasks = []
    for priority, name in [
        (Priority.HEARTBEAT, "heartbeat"),
        (Priority.STATUS, "status"),
        (Priority.JOB, "job-1"),
        (Priority.RESULT, "result-1"),
        (Priority.JOB, "job-2"),
        (Priority.RESULT, "result-2"),
    ]:
        tasks.append(asyncio.create_task(request(priority, name)))
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert budget.snapshot()["queued"] == {"result": 2, "job": 2, "status": 1, "heartbeat": 1}
    await asyncio.wait_for(asyncio.gather(*tasks), 5)

    assert order == ["result-1", "result-2", "job-1", "job-2", "status", "heartbeat"]
    assert budget.snapshot()["queued"] == {"result": 0, "job": 0, "status": 0, "heartbeat": 0}


async def test_a_cancelled_waiter_leaves_the_queue_and_takes_no_token() -> None:
    budget = RestBudget(rate=10.0, burst=1)
    await budget.acquire()
    waiting = asyncio.create_task(budget.acquire(Priority.HEARTBEAT))
    await asyncio.sleep(0)
    assert budget.queued()["heartbeat"] == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert budget.queued()["heartbeat"] == 0
    await asyncio.wait_for(budget.acquire(Priority.RESULT), 1)  # the next token is free


async def test_a_503_from_the_portal_empties_the_bucket_and_shows_in_the_backlog() -> None:
    async with Emulator(limits=SMALL_PORTAL) as portal:
        budget = RestBudget(rate=4.0, burst=10)
        async with hook_client(portal, None) as other_app, hook_client(portal, budget) as rest:
            await asyncio.gather(*(other_app.result("profile") for _ in range(10)))
            await rest.result("profile")  # 503 first (another app used the bucket), then OK
            snapshot = budget.snapshot()
    assert snapshot["limited_answers"] >= 1
    assert snapshot["last_limited_at"]
    assert snapshot["tokens"] < 1


async def test_the_default_budget_stays_under_a_2_per_second_portal() -> None:
    assert DEFAULT_RATE < 2.0 and DEFAULT_BURST < 50
    budget = RestBudget()
    assert (budget.rate, budget.burst) == (DEFAULT_RATE, DEFAULT_BURST)


# -- the daemon's link ---------------------------------------------------------------------


BUSY_PORTAL = LimitProfile("busy", rate=10.0, burst=10)
"""A small ceiling drained five times as fast as a real portal, so a burst of jobs passes
the link's burst and is over within seconds."""
LINK_BUDGET = {"rest_rate": 9.0, "rest_burst": 8}
"""Scaled to BUSY_PORTAL as the defaults (1.8/s, 40) are to a real one (2/s, 50)."""


@contextlib.asynccontextmanager
async def linked_appliance(
    root: Path, profile: LimitProfile, **bitrix: Any
) -> AsyncIterator[tuple[LinkedAppliance, JobLink]]:
    """The daemon's whole Bitrix24 link (bitrix_link with its budget) against a portal
    with the given limits; the producer calls from the Bitrix24 side's own address."""
    push = PushServer(PushSettings(buffer_delay=(0.0, 0.0)))
    await push.start("127.0.0.1", 0)
    emulator = Emulator(push=push, limits=profile)
    await emulator.start()
    journal = Journal(root / "journal.sqlite3")
    engine = Engine(journal, SimulatorRegister(root / "simulator"), FAST_ENGINE)
    worker = asyncio.create_task(engine.run())
    pairing = emulator.credentials()
    settings = BitrixConfig.model_validate({**{k: pairing[k] for k in PAIRING_KEYS}, **bitrix})
    producer = RestClient(  # the Bitrix24 side: its own address, and it paces itself too
        OAuthAuth(oauth_credentials(emulator.credentials(CASHIER_USER_ID)), TokenFile(root / "p")),
        retry=FAST_RETRY,
        local_address=PRODUCER_ADDRESS,
        budget=RestBudget(profile.rate * 0.9, profile.burst - 2),
    )
    appliance = LinkedAppliance(emulator, push, journal, engine, producer, root)
    try:
        async with bitrix_link(settings, KASSA, root, engine) as link:
            assert link is not None
            await wait_until(lambda: push.stats.connections > 0, "push connection")
            yield appliance, link
    finally:
        await producer.aclose()
        await engine.stop()
        await worker
        journal.close()
        await emulator.stop()
        await push.stop()


def budget_of(link: JobLink) -> dict[str, Any]:
    section: dict[str, Any] = link.health.snapshot()["rest_budget"]
    return section


async def test_a_burst_of_jobs_through_the_link_causes_no_503(tmp_path: Path) -> None:
    async with linked_appliance(tmp_path, BUSY_PORTAL, **LINK_BUDGET) as (
        appliance,
        link,
    ):
        jobs = [str(uuid.uuid4()) for _ in range(25)]
        await asyncio.gather(*(appliance.publish(job, sell("12.00")) for job in jobs))
        for job in jobs:
            await appliance.done_in_bitrix(job)
        budget = budget_of(link)

    assert appliance.emulator.limits.stats.refused_by_source.get("127.0.0.1", 0) == 0
    assert budget["limited_answers"] == 0
    assert sum(budget["requests"].values()) > 8  # past its burst: it had to pace itself
    assert budget["waited"] > 0


async def test_a_link_whose_budget_exceeds_the_portal_runs_into_503s(tmp_path: Path) -> None:
    """The test above can fail: the same burst with a budget above the portal's limit."""
    async with linked_appliance(tmp_path, BUSY_PORTAL, rest_rate=200.0, rest_burst=200) as (
        appliance,
        link,
    ):
        jobs = [str(uuid.uuid4()) for _ in range(25)]
        await asyncio.gather(*(appliance.publish(job, sell("12.00")) for job in jobs))
        for job in jobs:
            await appliance.done_in_bitrix(job)
        budget = budget_of(link)

    assert appliance.emulator.limits.stats.refused_by_source.get("127.0.0.1", 0) > 0
    assert budget["limited_answers"] > 0


async def test_the_budget_and_its_backlog_are_in_the_link_status(tmp_path: Path) -> None:
    async with linked_appliance(tmp_path, BUSY_PORTAL) as (_appliance, link):
        budget = budget_of(link)
        await wait_until(lambda: budget_of(link)["requests"]["job"] > 0, "requests counted")

    assert (budget["rate_per_second"], budget["burst"]) == (DEFAULT_RATE, DEFAULT_BURST)
    assert budget["queued"] == {"result": 0, "job": 0, "status": 0, "heartbeat": 0}
    assert {"waited", "longest_wait_seconds", "oldest_queued_seconds", "tokens"} <= set(budget)
