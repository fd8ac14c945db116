"""CRM automation end to end with the real daemon process on the simulator: the emulated
portal (REST, offline events, CRM, push) runs in this process; one daemon is both the
automation host (``automation.enabled``) and the kassa the rules name. A deal moved by a
portal user prints its receipt once, and the result — or the refusal — lands on the deal.
The SIGKILL window before ``event.offline.clear`` is reached with the test-only pause
``KASSA_DEBUG_PAUSE_AUTOMATION_BEFORE_CLEAR`` (inert without ``KASSA_DEBUG_HOOKS=1``).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from automation_support import KASSA, WAIT, CrmPortal, make_portal, wait_until, won_rule
from kassa_appliance.appliance.config import (
    BitrixConfig,
    Config,
    KassaConfig,
    RegisterConfig,
    save_config,
)
from kassa_appliance.channels.automation.drain import DEBUG_PAUSE_BEFORE_CLEAR_ENV
from kassa_appliance.channels.automation.settings import AutomationConfig
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings
from test_token_refresh_daemon import PAIRING_KEYS, clean_env, start_daemon, stop_daemon

BURST = 500


@dataclass
class Stack:
    portal: CrmPortal
    push: PushServer
    data_dir: Path

    def configure(self) -> None:
        pairing = self.portal.emulator.credentials()
        save_config(
            self.data_dir,
            Config(
                register=RegisterConfig(driver="simulator"),
                kassa=KassaConfig(id=KASSA),
                bitrix=BitrixConfig.model_validate({k: pairing[k] for k in PAIRING_KEYS}),
                automation=AutomationConfig(enabled=True, poll_seconds=1.0),
            ),
        )

    def states(self, deal_id: int) -> list[str]:
        return [str(j.properties.get("STATE")) for j in self.portal.deal_jobs(deal_id)]

    def done(self, deal_id: int, count: int = 1) -> bool:
        return self.states(deal_id).count("done") == count

    def commented(self, deal_id: int, word: str, count: int = 1) -> bool:
        return sum(word in c for c in self.portal.comments(deal_id)) >= count


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    push = PushServer(PushSettings(buffer_delay=(0.0, 0.0)))
    await push.start("127.0.0.1", 0)
    portal = await make_portal(tmp_path)
    portal.emulator.set_push(push)
    made = Stack(portal, push, tmp_path / "data")
    await portal.create_settings_storage()
    await portal.save_rules(
        [
            won_rule(),
            won_rule(
                id="paid",
                trigger={"kind": "payment_paid", "category_id": 1},
                receipt_type="advance",
                vat_default="vat20",
            ),
        ]
    )
    portal.crm.add_category("Shop", [("NEW", "New", "P"), ("WON", "Won", "S")])
    made.configure()
    try:
        yield made
    finally:
        await portal.admin.aclose()
        await portal.emulator.stop()
        await push.stop()


async def bound(stack: Stack) -> None:
    await wait_until(
        lambda: len(stack.portal.emulator.events.bindings) == 3, "the daemon's offline bindings"
    )


async def test_won_deals_print_once_and_the_result_or_refusal_lands_on_the_deal(
    stack: Stack,
) -> None:
    portal = stack.portal
    daemon = await start_daemon(stack.data_dir, clean_env())
    try:
        await bound(stack)
        plain = portal.deal()
        discounted = portal.deal(
            [
                {
                    "productName": "Чайник",
                    "priceExclusive": 900,
                    "quantity": 1,
                    "taxRate": 20,
                    "taxIncluded": "N",
                    "discountTypeId": 1,
                    "discountSum": 100,
                },
                {"productName": "Доставка", "price": 300, "quantity": 1, "type": 7},
            ]
        )
        no_contact = portal.deal(contact=False)
        for deal in (plain, discounted, no_contact):
            portal.crm.move_deal(deal, "WON")
        for _ in range(3):  # the same event delivered again and again
            portal.crm.deal_changed(plain, 1, None)
        await wait_until(lambda: stack.done(plain) and stack.done(discounted), "both printed")
        await wait_until(lambda: stack.commented(plain, "ФД №"), "the result on the timeline")
        await wait_until(lambda: stack.commented(no_contact, "не напечатан"), "the refusal")
        assert stack.states(plain) == ["done"]
        task = portal.task_of(portal.deal_jobs(discounted)[0])
        assert task["total"] == 1380  # (1000 - 100) * 1.2 + 300
        assert task["items"][0]["price"] == 1200 and task["items"][0]["amount"] == 1080
        result = json.loads(str(portal.deal_jobs(plain)[0].properties["RESULT"]))
        fd = str(result["fiscalParams"]["fiscalDocumentNumber"])
        comment = next(c for c in portal.comments(plain) if "ФД №" in c)
        assert f"ФД № {fd}" in comment and "check.nalog.ru" in comment and "t=" in comment
        await wait_until(
            lambda: portal.crm.deals[plain].uf.get("UF_CRM_KASSA_FD") == fd, "FD field"
        )
        refusal = next(c for c in portal.comments(no_contact) if "не напечатан" in c)
        assert "e-mail or phone" in refusal
        notes = [n.message for n in portal.emulator.notifications.sent]
        assert any(f"№{no_contact}" in n and "e-mail or phone" in n for n in notes)
        # its own FD field updates are not queued back: the queue empties and stays empty
        await wait_until(lambda: portal.queued() == 0, "the queue drained")
        assert portal.emulator.events.raised > 0 and portal.queued() == 0

        portal.crm.move_deal(plain, "LOSE")  # the refund stage
        await wait_until(lambda: stack.done(plain, 2), "the return printed")
        assert portal.task_of(portal.deal_jobs(plain)[1])["type"] == "sellReturn"

        shop = portal.deal(category_id=1)
        payment = portal.crm.add_payment(shop, Decimal("500"))
        portal.crm.pay(payment)
        await wait_until(
            lambda: [str(j.properties.get("STATE")) for j in portal.jobs("auto:pay:")] == ["done"],
            "the payment's receipt",
        )
        assert portal.task_of(portal.jobs("auto:pay:")[0])["total"] == 500
        await wait_until(lambda: stack.commented(shop, "ФД №"), "the payment's result on the deal")
        status = json.loads((stack.data_dir / "status.json").read_text())["automation"]
        assert status["rules"] == ["won", "paid"] and status["applied_version"] == 1
        assert status["refused"] >= 1 and status["jobs"] >= 4 and status["not_bound"] == {}
    finally:
        await stop_daemon(daemon)


async def test_sigkill_after_the_job_is_stored_and_before_the_clear_prints_once(
    stack: Stack, tmp_path: Path
) -> None:
    portal = stack.portal
    paused = tmp_path / "paused-before-clear"
    env = clean_env(KASSA_DEBUG_HOOKS="1", **{DEBUG_PAUSE_BEFORE_CLEAR_ENV: str(paused)})
    daemon = await start_daemon(stack.data_dir, env)
    try:
        await bound(stack)
        deal = portal.deal()
        portal.crm.move_deal(deal, "WON")
        await wait_until(paused.exists, "the pause before event.offline.clear")
        assert len(portal.deal_jobs(deal)) == 1
        assert any(r.process_id for r in portal.emulator.events.rows.values())  # still reserved
        daemon.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(daemon.wait(), WAIT) == -signal.SIGKILL
        daemon = await start_daemon(stack.data_dir, env)  # the pause is spent
        await wait_until(lambda: stack.done(deal), "printed after the restart")
        await wait_until(lambda: portal.queued() == 0, "the reserved page cleared")
        await wait_until(lambda: stack.commented(deal, "ФД №"), "the result on the timeline")
        assert stack.states(deal) == ["done"]
        assert sum("ФД №" in c for c in portal.comments(deal)) == 1
    finally:
        await stop_daemon(daemon)


async def test_a_burst_of_won_deals_all_print_once_within_the_rest_limits(stack: Stack) -> None:
    portal = stack.portal
    daemon = await start_daemon(stack.data_dir, clean_env())
    try:
        await bound(stack)
        client = portal.add_client()
        deals = [portal.deal(contact_id=client) for _ in range(BURST)]
        for deal in deals:
            portal.crm.move_deal(deal, "WON")
        await wait_until(
            lambda: sum(stack.done(d) for d in deals) == BURST, "every deal printed", timeout=600
        )
        assert all(stack.states(d) == ["done"] for d in deals)
        limits: dict[str, Any] = portal.emulator.limits.snapshot()
        assert limits["refused"] == 0, limits  # no 503 QUERY_LIMIT_EXCEEDED
    finally:
        await stop_daemon(daemon)
