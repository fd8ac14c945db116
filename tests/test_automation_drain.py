"""The automation host's event drain against the emulated portal (REST, offline events, CRM):
which jobs a deal's stage entries and payments put into the outbox, and which they do not.

The drain runs in this process with the daemon's own REST client (an admin pairing); the
kassa that would print is not running here (tests/test_automation_daemon.py runs the real
daemon), so these tests look at the KASSAJOB items the drain stores and at the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from automation_support import KASSA, CrmPortal, make_portal, money, wait_until, won_rule
from bitrix_support import oauth_client
from kassa_appliance.channels.automation.drain import EventDrain
from kassa_appliance.channels.automation.outbox import PlannedJob
from kassa_appliance.channels.automation.settings import AutomationConfig

CONFIG = AutomationConfig(enabled=True, poll_seconds=1.0)


@dataclass
class Host:
    drain: EventDrain
    task: asyncio.Task[None]
    expected: list[PlannedJob]


@contextlib.asynccontextmanager
async def host(portal: CrmPortal, tmp_path: Path, name: str = "host") -> AsyncIterator[Host]:
    rest = oauth_client(portal.emulator, tmp_path / f"{name}-tokens.json")
    expected: list[PlannedJob] = []
    drain = EventDrain(rest, CONFIG, tmp_path / name, expect=expected.append)
    task = asyncio.create_task(drain.run())
    try:
        await wait_until(lambda: bool(drain.bound) or task.done(), "the offline bindings")
        yield Host(drain, task, expected)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await rest.aclose()


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[CrmPortal]:
    made = await make_portal(tmp_path)
    try:
        await made.create_settings_storage()
        await made.save_rules([won_rule()])
        yield made
    finally:
        await made.admin.aclose()
        await made.emulator.stop()


async def drained(portal: CrmPortal, running: Host) -> None:
    """Every queued event taken and cleared."""
    running.drain.wake.set()

    def done() -> bool:
        if running.task.done():
            running.task.result()  # the drain's error, not a timeout
        return portal.queued() == 0 and not running.drain._claim_file.exists()

    await wait_until(done, "the queue drained and cleared")


async def test_a_won_deal_stores_one_job_with_the_receipt_and_a_crm_target(
    portal: CrmPortal, tmp_path: Path
) -> None:
    async with host(portal, tmp_path) as running:
        deal = portal.deal()
        portal.crm.move_deal(deal, "WON")
        await drained(portal, running)
        jobs = portal.deal_jobs(deal)
        assert [j.name for j in jobs] == [f"auto:deal:{deal}:won:1:sell"]
        job = jobs[0]
        assert job.properties["STATE"] == "new" and job.properties["KASSA"] == KASSA
        task = portal.task_of(job)
        assert task["type"] == "sell" and task["total"] == 700
        assert task["clientInfo"] == {"emailOrPhone": "client@example.ru"}
        assert task["items"][0]["tax"] == {"type": "vat20"}
        reply = json.loads(str(job.properties["REPLY"]))
        target = reply["targets"][0]
        assert target["kind"] == "crm" and target["entity_id"] == deal and target["rule"] == "won"
        assert [j.job_id for j in running.expected] == [job.name]  # delivery told first
        assert portal.rules_answer()["APPLIED"] == "1"


async def test_the_same_event_three_times_and_out_and_back_in_store_one_job(
    portal: CrmPortal, tmp_path: Path
) -> None:
    async with host(portal, tmp_path) as running:
        deal = portal.deal()
        portal.crm.move_deal(deal, "WON")
        await drained(portal, running)
        for _ in range(3):  # re-delivered: the same deal, still won
            portal.crm.deal_changed(deal, 1, None)
            await drained(portal, running)
        portal.crm.move_deal(deal, "EXECUTING")
        portal.crm.move_deal(deal, "WON")  # out and back in a second later
        await drained(portal, running)
        assert [j.name for j in portal.deal_jobs(deal)] == [f"auto:deal:{deal}:won:1:sell"]


async def test_a_return_stage_stores_a_return_and_a_sale_after_it_is_a_new_receipt(
    portal: CrmPortal, tmp_path: Path
) -> None:
    async with host(portal, tmp_path) as running:
        deal = portal.deal()
        portal.crm.move_deal(deal, "LOSE")  # nothing sold yet: nothing to return
        await drained(portal, running)
        assert portal.deal_jobs(deal) == []
        portal.crm.move_deal(deal, "WON")
        await drained(portal, running)
        portal.crm.move_deal(deal, "LOSE")
        await drained(portal, running)
        portal.crm.move_deal(deal, "LOSE")  # again: one return only
        await drained(portal, running)
        portal.crm.move_deal(deal, "WON")
        await drained(portal, running)
        names = [j.name for j in portal.deal_jobs(deal)]
        assert names == [
            f"auto:deal:{deal}:won:1:sell",
            f"auto:deal:{deal}:won:2:return",
            f"auto:deal:{deal}:won:3:sell",
        ]
        assert portal.task_of(portal.deal_jobs(deal)[1])["type"] == "sellReturn"


async def test_a_refusal_is_stored_answered_and_a_new_entry_after_the_fix_prints(
    portal: CrmPortal, tmp_path: Path
) -> None:
    async with host(portal, tmp_path) as running:
        deal = portal.deal(contact=False)
        portal.crm.move_deal(deal, "WON")
        await drained(portal, running)
        portal.crm.deal_changed(deal, 1, None)  # edited, same entry: not refused again
        await drained(portal, running)
        jobs = portal.deal_jobs(deal)
        assert len(jobs) == 1 and jobs[0].properties["STATE"] == "failed"
        error = json.loads(str(jobs[0].properties["ERROR"]))
        assert error["code"] == "automation-refused"
        assert "e-mail or phone" in error["message"] and "no contact or company" in error["message"]
        portal.crm.deals[deal].contact_ids = [
            portal.add_client(phone="8 (916) 123-45-67", email=None)
        ]
        portal.crm.clock = lambda: time.time() + 60  # a minute later (movedTime has seconds)
        portal.crm.move_deal(deal, "EXECUTING")
        portal.crm.move_deal(deal, "WON")
        await drained(portal, running)
        jobs = portal.deal_jobs(deal)
        assert [j.properties["STATE"] for j in jobs] == ["failed", "new"]
        assert portal.task_of(jobs[1])["clientInfo"] == {"emailOrPhone": "+79161234567"}


async def test_amount_mismatch_and_currency_are_refused_with_the_numbers(
    portal: CrmPortal, tmp_path: Path
) -> None:
    async with host(portal, tmp_path) as running:
        mismatch = portal.deal(opportunity=money("800.00"))
        dollars = portal.deal(currency_id="USD")
        portal.crm.move_deal(mismatch, "WON")
        portal.crm.move_deal(dollars, "WON")
        await drained(portal, running)
        first = json.loads(str(portal.deal_jobs(mismatch)[0].properties["ERROR"]))["message"]
        assert "700.00 RUB" in first and "800.00 RUB" in first
        second = json.loads(str(portal.deal_jobs(dollars)[0].properties["ERROR"]))["message"]
        assert "USD" in second and "RUB only" in second


async def test_the_hosts_own_deal_update_is_not_queued_back(
    portal: CrmPortal, tmp_path: Path
) -> None:
    async with host(portal, tmp_path) as running:
        deal = portal.deal()
        await drained(portal, running)
        rest = oauth_client(portal.emulator, tmp_path / "own.json")
        async with rest:
            await rest.result(
                "crm.item.update",
                {
                    "entityTypeId": 2,
                    "id": deal,
                    "fields": {"title": "x"},
                    "auth_connector": "kassa",
                },
            )
        assert portal.queued() == 0
        portal.crm.deal_changed(deal, 1, None)  # a user's edit is queued
        assert portal.queued() == 1


async def test_two_hosts_by_mistake_store_each_receipt_once(
    portal: CrmPortal, tmp_path: Path
) -> None:
    async with host(portal, tmp_path, "one") as one, host(portal, tmp_path, "two") as two:
        deals = [portal.deal() for _ in range(20)]
        for deal in deals:
            portal.crm.move_deal(deal, "WON")
        one.drain.wake.set()
        two.drain.wake.set()
        await wait_until(lambda: portal.queued() == 0, "both drained")
        await asyncio.sleep(0.3)
        for deal in deals:
            assert {j.name for j in portal.deal_jobs(deal)} == {f"auto:deal:{deal}:won:1:sell"}


async def test_a_page_reserved_by_a_host_that_died_is_taken_again_once(
    portal: CrmPortal, tmp_path: Path
) -> None:
    deal = 0
    async with host(portal, tmp_path) as running:
        deal = portal.deal()
    # the host died holding a reservation it never wrote down (no claim file)
    reserve = oauth_client(portal.emulator, tmp_path / "dead.json")
    async with reserve:
        portal.crm.move_deal(deal, "WON")
        got = await reserve.result("event.offline.get", {"clear": 0, "auth_connector": "kassa"})
        assert got["process_id"] and got["events"]
        again = await reserve.result("event.offline.get", {"clear": 0, "auth_connector": "kassa"})
        assert again["events"] == []  # reserved rows are hidden from other readers
    async with host(portal, tmp_path) as running:
        await drained(portal, running)
        assert running.drain.counters["recovered"] >= 1
    assert [j.name for j in portal.deal_jobs(deal)] == [f"auto:deal:{deal}:won:1:sell"]


async def test_a_bad_rule_set_is_refused_with_the_reason_and_the_old_rules_stay(
    portal: CrmPortal, tmp_path: Path
) -> None:
    async with host(portal, tmp_path) as running:
        await wait_until(lambda: portal.rules_answer()["APPLIED"] == "1", "version 1 applied")
        bad = won_rule(vat_default="vat18", trigger={"kind": "deal_stage", "stage_id": "C3:WON"})
        version = await portal.save_rules([bad])
        running.drain.wake.set()
        await wait_until(lambda: bool(portal.rules_answer()["ERROR"]), "version 2 answered")
        answer = portal.rules_answer()
        assert answer["VERSION"] == str(version) and answer["APPLIED"] == "1"
        assert "rules[0].vat_default" in answer["ERROR"] and "vat18" in answer["ERROR"]
        assert "rules[0].trigger" in answer["ERROR"] and "pipeline 3" in answer["ERROR"]
        await portal.save_rules("{not json")
        running.drain.wake.set()
        await wait_until(
            lambda: (
                portal.rules_answer()["VERSION"] == "3" and bool(portal.rules_answer()["ERROR"])
            ),
            "v3",
        )
        deal = portal.deal()  # the old rules still print
        portal.crm.move_deal(deal, "WON")
        await drained(portal, running)
        assert [j.name for j in portal.deal_jobs(deal)] == [f"auto:deal:{deal}:won:1:sell"]
        assert running.drain.snapshot()["refused_version"] == 3


async def test_a_paid_payment_stores_one_job_and_an_unpaid_save_none(
    portal: CrmPortal, tmp_path: Path
) -> None:
    payment_rule = won_rule(id="paid", trigger={"kind": "payment_paid"}, receipt_type="advance")
    await portal.save_rules([payment_rule])
    async with host(portal, tmp_path) as running:
        deal = portal.deal()
        payment = portal.crm.add_payment(deal, money("300"))  # saved, not paid
        await drained(portal, running)
        assert portal.jobs("auto:pay:") == []
        portal.crm.pay(payment)
        portal.crm.payment_saved(payment, 1, None)
        await drained(portal, running)
        portal.crm.payment_saved(payment, 1, None)  # saved again later
        await drained(portal, running)
        jobs = portal.jobs("auto:pay:")
        assert [j.name for j in jobs] == [f"auto:pay:{payment}:paid"]
        task = portal.task_of(jobs[0])
        assert task["total"] == 300 and task["items"][0]["paymentMethod"] == "advance"
        assert task["items"][0]["paymentObject"] == "payment"
