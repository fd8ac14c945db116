"""The fleet side of the appliance end to end: the real emulator (REST + push), the link,
the engine and the simulator. The KASSADEV heartbeat carries the register's facts (model,
serial, registration and FN numbers, FN expiry, OFD backlog, shift, paper, versions), and
the admins get one Bitrix24 notification per problem (FN expiring within 30 days, an OFD
backlog older than 3 days, no paper, a blocked queue): not again after a restart, again
after the problem clears and comes back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bitrix_support import oauth_client
from kassa_appliance.appliance.config import BitrixConfig
from kassa_appliance.bitrix.jobs import publish_job
from kassa_appliance.bitrix.link import bitrix_link
from kassa_appliance.bitrix.notifications import NOTIFIED_FILE_NAME, problems_of
from kassa_appliance.bitrix.protocol import DEVICE_ENTITY
from kassa_appliance.fiscal.engine import Engine
from kassa_appliance.fiscal.journal import JobState, Journal
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_faults import (
    ALWAYS,
    advance_clock,
    set_fault,
    set_fn_validity,
)
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.limits import PRODUCER_ADDRESS
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings
from kassa_appliance.testbeds.bitrix24.state import ADMIN_USER_ID, CASHIER_USER_ID
from sample_tasks import sell
from test_jobs import FAST_ENGINE

KASSA = "kassa-fleet"
PAIRING_KEYS = ("portal", "client_id", "client_secret", "refresh_token", "token_url")
DEADLINE = 30.0
FLEET_FIELDS = (
    "register_online",
    "queue_depth",
    "waiting",
    "blocked",
    "blocked_reason",
    "last_error",
    "model",
    "serial",
    "registration_number",
    "fn_number",
    "fn_expiry",
    "ofd_unsent",
    "ofd_oldest_unsent",
    "shift_state",
    "shift_opened",
    "paper",
    "versions",
)


async def wait_until(predicate: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not predicate():
        assert loop.time() < deadline, f"{what} never happened"
        await asyncio.sleep(0.02)


def device_status(emulator: Emulator) -> dict[str, Any]:
    entity = emulator.state.entities.get(DEVICE_ENTITY)
    items = [] if entity is None else [i for i in entity.items.values() if i.name == KASSA]
    if not items:
        return {}
    status: dict[str, Any] = json.loads(items[0].properties.get("STATUS") or "{}")
    return status


def notified(emulator: Emulator, word: str) -> list[str]:
    return [n.message for n in emulator.notifications.sent if word in n.message]


@contextlib.asynccontextmanager
async def appliance(emulator: Emulator, data_dir: Path) -> AsyncIterator[Journal]:
    """The daemon's parts on ``data_dir``: journal, engine on the simulator, the link."""
    journal = Journal(data_dir / "journal.sqlite3")
    settings = replace(FAST_ENGINE, device_facts_interval=0.2)
    engine = Engine(journal, SimulatorRegister(data_dir / "simulator"), settings)
    worker = asyncio.create_task(engine.run())
    pairing = json.loads((data_dir / "emulator-pairing.json").read_text())
    bitrix = BitrixConfig.model_validate({key: pairing[key] for key in PAIRING_KEYS})
    try:
        async with bitrix_link(bitrix, KASSA, data_dir, engine, notify_confirm_after=0.0):
            yield journal
    finally:
        await engine.stop()
        await worker
        journal.close()


async def test_heartbeat_carries_the_facts_and_admins_hear_of_each_problem_once(
    tmp_path: Path,
) -> None:
    push = PushServer(PushSettings(buffer_delay=(0.0, 0.0)))
    await push.start("127.0.0.1", 0)
    emulator = Emulator(push=push)
    await emulator.start()
    (tmp_path / "emulator-pairing.json").write_text(json.dumps(emulator.credentials()))
    producer = oauth_client(
        emulator,
        tmp_path / "producer.json",
        pairing=emulator.credentials(CASHIER_USER_ID),
        local_address=PRODUCER_ADDRESS,
    )
    simulator = tmp_path / "simulator"
    sent_file = tmp_path / NOTIFIED_FILE_NAME

    async def publish(journal: Journal) -> str:
        job_id = f"job-{uuid.uuid4().hex[:8]}"
        await publish_job(producer, job_id=job_id, kassa=KASSA, task=sell(), ring=True)
        await wait_until(lambda: journal.get(job_id) is not None, f"{job_id} received")
        return job_id

    try:
        async with appliance(emulator, tmp_path) as journal:
            # The facts arrive with the heartbeat, as the fleet page's fields.
            await wait_until(lambda: "fn_expiry" in device_status(emulator), "facts sent")
            status = device_status(emulator)
            assert set(FLEET_FIELDS) <= set(status), set(FLEET_FIELDS) - set(status)
            assert status["model"] and status["serial"] and status["fn_number"]
            assert status["registration_number"]
            assert date.fromisoformat(status["fn_expiry"]) > date.today() + timedelta(days=300)
            assert status["ofd_unsent"] == 0 and status["ofd_oldest_unsent"] is None
            assert status["paper"] is True and status["blocked"] is False
            assert status["versions"]["appliance"] and status["versions"]["firmware"]
            assert emulator.notifications.sent == []

            # FN expiring in 10 days: one notification, to the admin.
            set_fn_validity(simulator, date.today() + timedelta(days=10))
            await wait_until(lambda: notified(emulator, "ФН перестанет"), "FN notification")
            expiry = str(date.today() + timedelta(days=10))
            await wait_until(lambda: device_status(emulator)["fn_expiry"] == expiry, "new expiry")
            assert {n.user_id for n in emulator.notifications.sent} == {ADMIN_USER_ID}

            # A document made 4 days ago (the clock turned back) never reached the OFD.
            set_fault(simulator, "ofd_offline", ALWAYS)
            advance_clock(simulator, -4 * 86400)
            job_id = await publish(journal)
            await wait_until(
                lambda: journal.state_of(job_id) in {JobState.FISCALIZED, JobState.REPORTED},
                "the receipt printed",
            )
            advance_clock(simulator, 4 * 86400)
            await wait_until(lambda: notified(emulator, "ОФД"), "OFD backlog notification")
            await wait_until(lambda: device_status(emulator)["ofd_unsent"] >= 1, "OFD backlog")

            # No paper, and a receipt stuck on it: both are news, once each.
            set_fault(simulator, "no_paper", ALWAYS)
            await wait_until(lambda: notified(emulator, "нет бумаги"), "no-paper notification")
            stuck = await publish(journal)
            await wait_until(lambda: notified(emulator, "очередь"), "queue-blocked notification")
            await wait_until(lambda: device_status(emulator)["blocked"] is True, "blocked")
            await asyncio.sleep(1.0)
            for word in ("ФН перестанет", "ОФД", "нет бумаги", "очередь"):
                assert len(notified(emulator, word)) == 1, (word, emulator.notifications.sent)
        assert set(json.loads(sent_file.read_text())["sent"]) == {
            "fn-expiry",
            "ofd-backlog",
            "no-paper",
            "queue-blocked",
        }
        count = len(emulator.notifications.sent)

        # A restart with every problem still there sends nothing again.
        async with appliance(emulator, tmp_path) as journal:
            await wait_until(
                lambda: device_status(emulator).get("blocked") is True, "restarted heartbeat"
            )
            await asyncio.sleep(6.0)  # past the heartbeat's min gap: the status was observed
            assert len(emulator.notifications.sent) == count, emulator.notifications.sent[count:]

            # Paper back: the stuck receipt prints, the problems clear ...
            set_fault(simulator, "no_paper", None)
            await wait_until(
                lambda: journal.state_of(stuck) in {JobState.FISCALIZED, JobState.REPORTED},
                "the stuck receipt printed",
            )
            await wait_until(
                lambda: "no-paper" not in json.loads(sent_file.read_text())["sent"],
                "no-paper cleared",
            )
            # ... and come back: sent again.
            set_fault(simulator, "no_paper", ALWAYS)
            await wait_until(lambda: len(notified(emulator, "нет бумаги")) == 2, "no paper again")
            assert len(notified(emulator, "ФН перестанет")) == 1
    finally:
        await producer.aclose()
        await emulator.stop()
        await push.stop()


def test_problems_follow_the_fleet_rules_and_unknown_fields_change_nothing() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    problems, unknown = problems_of({}, now)
    assert problems == {}
    assert unknown == {"fn-expiry", "ofd-backlog", "no-paper", "queue-blocked"}
    status = {
        "register_online": True,
        "fn_expiry": "2027-01-05",
        "ofd_unsent": 2,
        "ofd_oldest_unsent": "2026-11-28T10:00:00+03:00",
        "paper": True,
        "waiting": None,
    }
    assert problems_of(status, now) == ({}, frozenset())
    problems, _ = problems_of(
        {**status, "fn_expiry": "2026-12-20", "ofd_oldest_unsent": "2026-11-27T10:00:00+03:00"},
        now,
    )
    assert set(problems) == {"fn-expiry", "ofd-backlog"}
    assert "19" in problems["fn-expiry"] and "2 док." in problems["ofd-backlog"]
    problems, _ = problems_of({**status, "paper": False, "waiting": "no paper"}, now)
    assert set(problems) == {"no-paper", "queue-blocked"}
