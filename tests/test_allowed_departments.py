"""Who may create jobs by department (``bitrix.allowed-departments``), end to end: the
emulated portal (REST + push, ``user.get``/``department.get``), the real link and engine on
the simulator, the daemon's central-settings validator and the ``snap set`` parser.

The company structure used (department ids)::

    1 Компания
    ├── 5 Продажи            (allowed)
    │   └── 6 Магазин на Ленина
    └── 3 Склад
"""

# ruff: noqa: F811  (pytest fixtures imported by name)
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from bitrix_support import oauth_client
from kassa_appliance.appliance.hooks.settings import InvalidSettings, config_from_snap
from kassa_appliance.bitrix.departments import USER_TTL, DepartmentDirectory
from kassa_appliance.bitrix.errors import BitrixError
from kassa_appliance.bitrix.jobs import JOB_ENTITY, publish_job
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.testbeds.bitrix24.limits import PRODUCER_ADDRESS
from kassa_appliance.testbeds.bitrix24.state import Item
from test_bitrix_link import wait_until
from test_central_settings import KASSA, Portal, appliance, portal, unsigned_sell  # noqa: F401

SALES, SHOP, STORE = 5, 6, 3
SHOP_CASHIER, SALES_HEAD, STOREKEEPER = 7, 9, 8


@pytest.fixture
def company(portal: Portal) -> Portal:
    structure = portal.emulator.portal_extras.company
    structure.add(SALES, "Продажи")
    structure.add(SHOP, "Магазин на Ленина", parent=SALES)
    structure.add(STORE, "Склад")
    for user, departments in (
        (SHOP_CASHIER, [SHOP]),
        (SALES_HEAD, [SALES]),
        (STOREKEEPER, [STORE]),
    ):
        portal.emulator.state.ensure_user(user)
        structure.place(user, departments)
    return portal


def producer(portal: Portal, tmp_path: Path, user_id: int) -> RestClient:
    """A REST client acting as ``user_id`` (its jobs carry CREATED_BY = user_id)."""
    return oauth_client(
        portal.emulator,
        tmp_path / f"user-{user_id}.json",
        pairing=portal.emulator.credentials(user_id),
        local_address=PRODUCER_ADDRESS,
    )


def job_item(portal: Portal, job_id: str) -> Item | None:
    items = portal.emulator.state.entities[JOB_ENTITY].items.values()
    return next((item for item in items if item.name == job_id), None)


def state_of(portal: Portal, job_id: str) -> str | None:
    item = job_item(portal, job_id)
    return None if item is None else str(item.properties.get("STATE") or "")


async def publish(client: RestClient, total: str = "10.00") -> str:
    job_id = str(uuid.uuid4())
    await publish_job(client, job_id=job_id, kassa=KASSA, task=unsigned_sell(total))
    return job_id


async def finished(portal: Portal, job_id: str) -> str:
    await wait_until(lambda: state_of(portal, job_id) in ("done", "failed"), f"{job_id} done")
    return str(state_of(portal, job_id))


def error_of(portal: Portal, job_id: str) -> dict[str, Any]:
    item = job_item(portal, job_id)
    assert item is not None
    error: dict[str, Any] = json.loads(str(item.properties.get("ERROR") or "{}"))
    return error


async def test_a_job_by_a_user_in_an_allowed_department_or_below_prints(
    company: Portal, tmp_path: Path
) -> None:
    shop, head = producer(company, tmp_path, SHOP_CASHIER), producer(company, tmp_path, SALES_HEAD)
    try:
        async with appliance(company, tmp_path / "a"):
            version = await company.save({"bitrix.allowed-departments": [SALES]})
            assert (await company.answered(version))["ERROR"] == ""
            first = await publish(shop)
            assert await finished(company, first) == "done"  # a sub-department of Продажи
            lookups = company.emulator.api.calls.get("user.get", 0)
            second = await publish(shop, "11.00")
            assert await finished(company, second) == "done"
            assert company.emulator.api.calls.get("user.get", 0) == lookups  # cached
            assert await finished(company, await publish(head)) == "done"  # Продажи itself
    finally:
        await shop.aclose()
        await head.aclose()


async def test_a_job_by_a_user_outside_is_refused_naming_the_departments(
    company: Portal, tmp_path: Path
) -> None:
    store = producer(company, tmp_path, STOREKEEPER)
    try:
        async with appliance(company, tmp_path / "a"):
            version = await company.save({"bitrix.allowed-departments": [SALES, 12]})
            await company.answered(version)
            job_id = await publish(store)
            assert await finished(company, job_id) == "failed"
            error = error_of(company, job_id)
            assert error["code"] == "creator-not-allowed"
            assert error["message"] == (
                f"job created by Bitrix24 user {STOREKEEPER}, who is not in the allowed "
                f"departments {SALES}, 12 (bitrix.allowed-departments, sub-departments "
                f"included; the user's departments: {STORE}); refused without printing"
            )
            assert "Склад" not in "\n".join(company.tape)  # nothing printed
    finally:
        await store.aclose()


async def test_a_failing_lookup_makes_the_job_wait_then_print(
    company: Portal, tmp_path: Path
) -> None:
    shop = producer(company, tmp_path, SHOP_CASHIER)
    other = producer(company, tmp_path, 1)  # an allowed user: not held up meanwhile
    try:
        async with appliance(company, tmp_path / "a") as running:
            version = await company.save(
                {"bitrix.allowed-departments": [SALES], "bitrix.allowed-users": [1]}
            )
            await company.answered(version)
            company.emulator.faults.add("error500", count=None, methods=["user.get"])
            waiting = await publish(shop)
            await wait_until(
                lambda: company.emulator.faults.fired["error500"] >= 5, "a lookup failed"
            )
            assert await finished(company, await publish(other, "3.00")) == "done"
            assert state_of(company, waiting) == "new"
            assert running.journal.get(waiting) is None  # not taken, not refused
            company.emulator.faults.clear()
            assert await finished(company, waiting) == "done"
    finally:
        await shop.aclose()
        await other.aclose()


async def test_a_failing_department_lookup_makes_the_job_wait_then_print(
    company: Portal, tmp_path: Path
) -> None:
    """department.get failing: a user below an allowed department cannot be decided yet,
    so the job waits (it is not refused); once the portal answers, it prints."""
    shop = producer(company, tmp_path, SHOP_CASHIER)
    try:
        async with appliance(company, tmp_path / "a") as running:
            version = await company.save({"bitrix.allowed-departments": [SALES]})
            await company.answered(version)
            company.emulator.faults.add("error500", count=7, methods=["department.get"])
            job_id = await publish(shop)
            await wait_until(
                lambda: company.emulator.faults.fired["error500"] >= 5, "department.get failed"
            )
            assert state_of(company, job_id) == "new" and running.journal.get(job_id) is None
            assert await finished(company, job_id) == "done"
    finally:
        await shop.aclose()


async def test_a_bad_central_departments_value_is_refused_and_the_old_kept(
    company: Portal, tmp_path: Path
) -> None:
    shop, store = producer(company, tmp_path, SHOP_CASHIER), producer(company, tmp_path, 8)
    try:
        async with appliance(company, tmp_path / "a"):
            good = await company.save({"bitrix.allowed-departments": [SALES]})
            await company.answered(good)
            bad = await company.save({"bitrix.allowed-departments": "5,Склад"})
            stored = await company.answered(bad)
            assert stored["APPLIED"] == str(good)
            assert stored["ERROR"] == (
                'bitrix.allowed-departments: "5,Склад" is not allowed; expected '
                "comma-separated Bitrix24 department ids, e.g. 1,5,12"
            )
            # the old rule holds: Продажи in, Склад out
            assert await finished(company, await publish(shop)) == "done"
            refused = await publish(store)
            assert await finished(company, refused) == "failed"
            assert "allowed departments 5 " in error_of(company, refused)["message"]
    finally:
        await shop.aclose()
        await store.aclose()


async def test_snap_set_departments_admit_and_refuse(company: Portal, tmp_path: Path) -> None:
    shop, store = producer(company, tmp_path, SHOP_CASHIER), producer(company, tmp_path, 8)
    try:
        async with appliance(company, tmp_path / "a", snap_bitrix={"allowed_departments": [5]}):
            assert await finished(company, await publish(shop)) == "done"
            refused = await publish(store)
            assert await finished(company, refused) == "failed"
            assert error_of(company, refused)["code"] == "creator-not-allowed"
    finally:
        await shop.aclose()
        await store.aclose()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("5,6", (5, 6)), (5, (5,)), ([5, "6", 5], (5, 6)), ("", ())],
)
def test_snap_set_parses_department_ids(raw: object, expected: tuple[int, ...]) -> None:
    config = config_from_snap({"bitrix": {"allowed-departments": raw}})
    assert config.bitrix.allowed_departments == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", 'bitrix.allowed-departments: "0" is not allowed; expected positive Bitrix24'),
        (True, "bitrix.allowed-departments: true is not allowed; expected comma-separated"),
        ("1;2", 'bitrix.allowed-departments: "1;2" is not allowed; expected comma-separated'),
        (",".join(map(str, range(1, 102))), 'bitrix.allowed-departments: "1,2,3'),
    ],
)
def test_snap_set_refuses_bad_department_ids(raw: object, message: str) -> None:
    with pytest.raises(InvalidSettings) as refused:
        config_from_snap({"bitrix": {"allowed-departments": raw}})
    assert refused.value.messages[0].startswith(message), refused.value.messages
    if isinstance(raw, str) and raw.count(",") > 99:
        assert "expected at most 100" in refused.value.messages[0]


async def test_the_emulator_answers_user_get_and_department_get(company: Portal) -> None:
    rest = company.admin
    users = await rest.result(
        "user.get", {"FILTER": {"@ID": [SHOP_CASHIER, 8, 4242]}, "select": ["UF_DEPARTMENT"]}
    )
    assert users == [
        {"ID": str(SHOP_CASHIER), "UF_DEPARTMENT": [SHOP]},
        {"ID": "8", "UF_DEPARTMENT": [STORE]},
    ]
    in_sales = await rest.result("user.get", {"UF_DEPARTMENT": SALES})
    assert [u["ID"] for u in in_sales] == [str(SALES_HEAD)]
    assert in_sales[0]["ACTIVE"] is True and in_sales[0]["USER_TYPE"] == "employee"
    departments = await rest.result("department.get", {"ID": [SHOP, 1]})
    assert departments == [
        {"ID": "1", "NAME": "Компания", "SORT": 500},
        {"ID": "6", "NAME": "Магазин на Ленина", "SORT": 500, "PARENT": "5"},
    ]
    children = await rest.result("department.get", {"PARENT": 1, "sort": "NAME"})
    assert [d["NAME"] for d in children] == ["Продажи", "Склад"]
    page = await rest.call("user.get", {"start": 0})
    assert page.total == len(company.emulator.state.users) and page.next is None


async def test_the_directory_caches_for_its_ttl_and_survives_a_cycle(company: Portal) -> None:
    """Answers come from the cache until they expire; then the portal is asked again (a
    user moved out of Продажи is refused from then on). A PARENT loop ends the walk."""
    now = [0.0]
    answered: list[int] = []
    directory = DepartmentDirectory(
        company.admin,
        on_answer=lambda: answered.append(1),
        backoff=lambda attempt: 0.0,
        clock=lambda: now[0],
    )
    directory.allowed = frozenset({SALES})
    assert directory.membership(SHOP_CASHIER) is None  # not known: queued
    assert await directory.look_up() == 1
    member = directory.membership(SHOP_CASHIER)
    assert member is not None and member.allowed and member.departments == {SHOP}
    calls = dict(company.emulator.api.calls)

    structure = company.emulator.portal_extras.company
    structure.place(SHOP_CASHIER, [STORE])
    now[0] += USER_TTL - 1
    still = directory.membership(SHOP_CASHIER)
    assert still is not None and still.allowed  # cached: no request
    assert company.emulator.api.calls == calls
    now[0] += 2
    assert directory.membership(SHOP_CASHIER) is None  # expired: asked again
    await directory.look_up()
    moved = directory.membership(SHOP_CASHIER)
    assert moved is not None and not moved.allowed and moved.departments == {STORE}

    structure.add(20, "Петля", parent=None)
    structure.add(21, "Петля 2", parent=20)
    structure.departments[20].parent = 21  # a broken structure: 20 → 21 → 20
    structure.place(SALES_HEAD, [20])
    assert directory.membership(SALES_HEAD) is None
    await directory.look_up()
    looped = directory.membership(SALES_HEAD)
    assert looped is not None and not looped.allowed
    assert directory.membership(4242) is None  # not a user of the portal
    await directory.look_up()
    nobody = directory.membership(4242)
    assert nobody is not None and not nobody.found and not nobody.allowed
    assert directory.snapshot()["waiting_creators"] == 0


async def test_an_answer_without_uf_department_is_no_answer(company: Portal) -> None:
    """A scope without user fields leaves UF_DEPARTMENT out: that is "not told", so the
    creator stays undecided (the job waits) rather than "in no department" (refused)."""
    directory = DepartmentDirectory(company.admin, on_answer=lambda: None, backoff=lambda a: 0)
    directory.allowed = frozenset({SALES})
    company.emulator.portal_extras.company.user_fields = False
    assert directory.membership(SALES_HEAD) is None
    with pytest.raises(BitrixError, match="no UF_DEPARTMENT; the Kassa app needs the user"):
        await directory.look_up()
    assert directory.membership(SALES_HEAD) is None
    company.emulator.portal_extras.company.user_fields = True
    assert await directory.look_up() == 1
    answer = directory.membership(SALES_HEAD)
    assert answer is not None and answer.allowed
