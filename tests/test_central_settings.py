"""Central settings (KASSACFG) end to end: the emulated portal (REST + push), the real link
and engine on the simulator, and the daemon's own validator (``central_applier``).

The admin's side is what the Kassa app's *Settings* page does (``app/src/lib/settings.ts``
``saveCommands``): write the item (VERSION raised, ERROR cleared) and ring ``kassa.config``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from bitrix_support import oauth_client
from kassa_appliance.appliance.central_config import central_applier
from kassa_appliance.appliance.config import BitrixConfig, Config, KassaConfig, OperatorConfig
from kassa_appliance.appliance.daemon import default_operator
from kassa_appliance.bitrix.central_settings import SETTINGS_ENTITY
from kassa_appliance.bitrix.jobs import JOB_ENTITY, publish_job
from kassa_appliance.bitrix.link import bitrix_link
from kassa_appliance.bitrix.notifications import CONFIRM_SECONDS, NOTIFIED_FILE_NAME
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.fiscal.engine import Engine
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_faults import ALWAYS, set_fault
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.limits import PRODUCER_ADDRESS
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings
from kassa_appliance.testbeds.bitrix24.state import ADMIN_USER_ID, CASHIER_USER_ID
from sample_tasks import sell
from test_bitrix_link import PAIRING_KEYS, wait_until
from test_jobs import FAST_ENGINE

KASSA = "kassa-9"
SNAP_SET_OPERATOR = OperatorConfig(name="Кассир Снапов", vatin="500100732259")
PROPERTIES = ("KASSA", "SETTINGS", "VERSION", "APPLIED", "ERROR")


def unsigned_sell(total: str) -> dict[str, Any]:
    """A sell without an operator: the engine fills in the default one."""
    return {key: value for key, value in sell(total).items() if key != "operator"}


@dataclass
class Portal:
    emulator: Emulator
    push: PushServer
    admin: RestClient
    producer: RestClient
    tape: list[str] = field(default_factory=list)
    item_id: int | None = None
    version: int = 0

    async def create_storage(self) -> None:
        await self.admin.result(
            "entity.add",
            {"ENTITY": SETTINGS_ENTITY, "NAME": "Kassa settings", "ACCESS": {"AU": "R"}},
        )
        for code in PROPERTIES:
            await self.admin.result(
                "entity.item.property.add",
                {"ENTITY": SETTINGS_ENTITY, "PROPERTY": code, "NAME": code},
            )

    async def save(self, settings: dict[str, Any], *, ring: bool = True) -> int:
        """What the Settings page does on save."""
        self.version += 1
        values = {
            "KASSA": KASSA,
            "SETTINGS": json.dumps(settings, ensure_ascii=False, separators=(",", ":")),
            "VERSION": str(self.version),
            "ERROR": "",
        }
        if self.item_id is None:
            self.item_id = int(
                await self.admin.result(
                    "entity.item.add",
                    {"ENTITY": SETTINGS_ENTITY, "NAME": KASSA, "PROPERTY_VALUES": values},
                )
            )
        else:
            await self.admin.result(
                "entity.item.update",
                {"ENTITY": SETTINGS_ENTITY, "ID": self.item_id, "PROPERTY_VALUES": values},
            )
        if ring:
            await self.admin.result(
                "pull.application.event.add",
                {"COMMAND": "kassa.config", "PARAMS": {"kassa": KASSA, "version": self.version}},
            )
        return self.version

    def stored(self) -> dict[str, str]:
        entity = self.emulator.state.entities[SETTINGS_ENTITY]
        item = next(i for i in entity.items.values() if i.name == KASSA)
        return {key: str(item.properties.get(key) or "") for key in PROPERTIES}

    async def answered(self, version: int) -> dict[str, str]:
        """The item once the daemon answered ``version`` (APPLIED or ERROR written)."""

        def done() -> bool:
            stored = self.stored()
            return stored["VERSION"] == str(version) and (
                stored["APPLIED"] == str(version) or bool(stored["ERROR"])
            )

        await wait_until(done, f"version {version} answered")
        return self.stored()

    async def printed(self, total: str) -> str:
        """Publish an unsigned sell, wait until it is done; the receipt as printed."""
        job_id = str(uuid.uuid4())
        before = len(self.tape)
        await publish_job(self.producer, job_id=job_id, kassa=KASSA, task=unsigned_sell(total))
        entity = self.emulator.state.entities
        await wait_until(
            lambda: any(
                i.name == job_id and i.properties.get("STATE") == "done"
                for i in entity[JOB_ENTITY].items.values()
            ),
            f"{job_id} done",
        )
        return "\n".join(self.tape[before:])


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Portal]:
    push = PushServer(PushSettings(buffer_delay=(0.0, 0.0)))
    await push.start("127.0.0.1", 0)
    emulator = Emulator(push=push)
    await emulator.start()
    admin = oauth_client(emulator, tmp_path / "admin.json", local_address=PRODUCER_ADDRESS)
    producer = oauth_client(
        emulator,
        tmp_path / "producer.json",
        pairing=emulator.credentials(CASHIER_USER_ID),
        local_address=PRODUCER_ADDRESS,
    )
    world = Portal(emulator, push, admin, producer)
    await world.create_storage()
    try:
        yield world
    finally:
        await admin.aclose()
        await producer.aclose()
        await emulator.stop()
        await push.stop()


@dataclass
class Appliance:
    engine: Engine
    journal: Journal


@contextlib.asynccontextmanager
async def appliance(
    portal: Portal,
    data_dir: Path,
    *,
    snap_bitrix: dict[str, Any] | None = None,
    notify_confirm_after: float = CONFIRM_SECONDS,
) -> AsyncIterator[Appliance]:
    """The daemon's pieces as ``run_daemon`` wires them, with snap-set operator defaults;
    ``snap_bitrix``: more ``bitrix`` section values, as ``snap set`` would give them."""
    journal = Journal(data_dir / "journal.sqlite3")
    register = SimulatorRegister(data_dir / "simulator", tape=portal.tape.append)
    pairing = {key: portal.emulator.credentials()[key] for key in PAIRING_KEYS}
    config = Config(
        bitrix=BitrixConfig.model_validate({**pairing, **(snap_bitrix or {})}),
        kassa=KassaConfig(id=KASSA),
        operator=SNAP_SET_OPERATOR,
    )
    engine = Engine(
        journal,
        register,
        replace(FAST_ENGINE, default_operator=default_operator(config), device_facts_interval=0.2),
    )
    worker = asyncio.create_task(engine.run())
    try:
        async with bitrix_link(
            config.bitrix,
            KASSA,
            data_dir,
            engine,
            central=central_applier(config, engine, default_operator),
            notify_confirm_after=notify_confirm_after,
        ) as link:
            assert link is not None
            await wait_until(lambda: portal.push.stats.connections > 0, "push connection")
            yield Appliance(engine, journal)
    finally:
        await engine.stop()
        await worker
        journal.close()


async def test_settings_are_read_at_start(portal: Portal, tmp_path: Path) -> None:
    version = await portal.save(
        {"operator.name": "Петрова Анна", "operator.vatin": "7707083893"}, ring=False
    )
    async with appliance(portal, tmp_path / "a"):
        assert (await portal.answered(version))["APPLIED"] == str(version)
        assert portal.stored()["ERROR"] == ""
        assert "Петрова Анна" in await portal.printed("10.00")


async def test_a_new_version_is_applied_without_a_restart(portal: Portal, tmp_path: Path) -> None:
    async with appliance(portal, tmp_path / "a") as running:
        assert "Кассир Снапов" in await portal.printed("10.00")  # snap set defaults
        version = await portal.save(
            {
                "operator.name": "Петрова Анна",
                "company.taxation": "usnIncome",
                "receipt.payments-place": "Магазин №1",
            }
        )
        stored = await portal.answered(version)
        assert (stored["APPLIED"], stored["ERROR"]) == (str(version), "")
        receipt = await portal.printed("11.00")
        assert "Петрова Анна" in receipt and "Кассир Снапов" not in receipt
        defaults = running.engine.defaults
        assert defaults.default_operator == {"name": "Петрова Анна", "vatin": "500100732259"}
        assert defaults.default_taxation == "usnIncome"
        assert defaults.default_payments_place == "Магазин №1"


async def test_a_bad_version_is_refused_with_the_reason_and_the_old_one_kept(
    portal: Portal, tmp_path: Path
) -> None:
    async with appliance(portal, tmp_path / "a") as running:
        good = await portal.save({"operator.name": "Петрова Анна"})
        await portal.answered(good)
        bad = await portal.save({"operator.name": "Сидоров", "operator.vatin": "7707083894"})
        stored = await portal.answered(bad)
        assert stored["APPLIED"] == str(good)
        assert stored["ERROR"] == (
            'operator.vatin: "7707083894" is not a valid INN; its check digits do not match'
        )
        receipt = await portal.printed("12.00")
        assert "Петрова Анна" in receipt and "Сидоров" not in receipt
        assert running.engine.defaults.default_operator == {
            "name": "Петрова Анна",
            "vatin": "500100732259",
        }
        # the page fixes it: the next good version clears the error
        fixed = await portal.save({"operator.name": "Сидоров", "operator.vatin": "7707083893"})
        stored = await portal.answered(fixed)
        assert (stored["APPLIED"], stored["ERROR"]) == (str(fixed), "")


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (
            {"register.driver": "fptr10", "operator.name": "Петрова"},
            "register.driver: is a device setting; expected it in snap set on the appliance",
        ),
        ({"bitrix.pairing": "kp1.e30"}, "bitrix.pairing: is a device setting"),
        ({"kassa.id": "kassa-2"}, "kassa.id: is a device setting"),
        ({"receipt.vat": "vat99"}, 'receipt.vat: "vat99"'),
        ({"operator.name": "a\nb"}, 'operator.name: "a\\x0ab" contains the control character'),
        (
            {"bitrix.allowed-departments": [3, 0]},
            "bitrix.allowed-departments: [3, 0] is not allowed; expected positive Bitrix24 "
            "department ids",
        ),
        (
            {"bitrix.allowed-departments": list(range(1, 102))},
            "bitrix.allowed-departments: [1, 2, 3",
        ),
        (
            {"bitrix.notify-users": "1,x"},
            'bitrix.notify-users: "1,x" is not allowed; expected comma-separated Bitrix24 user ids',
        ),
        ({"colour": "red"}, "colour: unknown setting; expected one of operator.name"),
    ],
)
async def test_device_keys_and_bad_values_are_refused(
    portal: Portal, tmp_path: Path, settings: dict[str, Any], reason: str
) -> None:
    async with appliance(portal, tmp_path / "a") as running:
        version = await portal.save(settings)
        stored = await portal.answered(version)
        assert stored["APPLIED"] == ""
        assert stored["ERROR"].startswith(reason), stored["ERROR"]
        assert running.engine.defaults.default_operator == default_operator(
            Config(operator=SNAP_SET_OPERATOR)
        )


async def test_central_allowed_users_and_vat_are_applied(portal: Portal, tmp_path: Path) -> None:
    async with appliance(portal, tmp_path / "a"):
        version = await portal.save({"bitrix.allowed-users": [1], "receipt.vat": "vat10"})
        await portal.answered(version)
        job_id = str(uuid.uuid4())
        await publish_job(portal.producer, job_id=job_id, kassa=KASSA, task=unsigned_sell("5.00"))
        items = portal.emulator.state.entities[JOB_ENTITY].items
        await wait_until(
            lambda: any(
                i.name == job_id and i.properties.get("STATE") == "failed" for i in items.values()
            ),
            "job of a user not allowed refused",
        )
        item = next(i for i in items.values() if i.name == job_id)
        assert "creator-not-allowed" in str(item.properties.get("ERROR"))


def notified(portal: Portal, word: str) -> list[int]:
    """The users notified with ``word`` in the text, in order."""
    return [n.user_id for n in portal.emulator.notifications.sent if word in n.message]


async def test_central_notify_users_each_hear_of_a_problem_once(
    portal: Portal, tmp_path: Path
) -> None:
    """``bitrix.notify-users`` set centrally: every listed user gets one notification per
    problem (a user the portal does not know is skipped, the others still get theirs); a
    user added later hears of the problem still there, the others not again."""
    portal.emulator.state.ensure_user(3)
    portal.emulator.state.ensure_user(4)
    data_dir = tmp_path / "a"
    async with appliance(portal, data_dir, notify_confirm_after=0.0):
        version = await portal.save({"bitrix.notify-users": [ADMIN_USER_ID, 3, 999]})
        assert (await portal.answered(version))["ERROR"] == ""
        set_fault(data_dir / "simulator", "no_paper", ALWAYS)
        await wait_until(lambda: sorted(notified(portal, "нет бумаги")) == [1, 3], "both told")

        def told() -> list[int]:
            stored = json.loads((data_dir / NOTIFIED_FILE_NAME).read_text())
            return list(stored["sent_to"].get("no-paper", []))

        await wait_until(lambda: told() == [1, 3, 999], "999 refused by the portal, done")
        tags = {n.tag for n in portal.emulator.notifications.sent}
        assert f"kassa-appliance|{KASSA}|no-paper|3" in tags

        version = await portal.save({"bitrix.notify-users": "1,3,4"})
        assert (await portal.answered(version))["ERROR"] == ""
        await wait_until(lambda: 4 in notified(portal, "нет бумаги"), "the new user told")
        await asyncio.sleep(1.0)
        assert sorted(notified(portal, "нет бумаги")) == [1, 3, 4]
