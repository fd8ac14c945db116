"""The emulated portal's offline events and CRM methods, through real REST calls, against
what b24restdocs ``events/`` and ``crm/`` say (bitrix-app-notes §3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from automation_support import CrmPortal, make_portal
from bitrix_support import oauth_client
from kassa_appliance.bitrix.errors import AccessDenied, BitrixError
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[CrmPortal]:
    made = await make_portal(tmp_path)
    try:
        yield made
    finally:
        await made.admin.aclose()
        await made.emulator.stop()


async def bind(rest: RestClient, event: str = "ONCRMDEALUPDATE", connector: str = "c1") -> None:
    await rest.result(
        "event.bind", {"event": event, "event_type": "offline", "auth_connector": connector}
    )


async def test_offline_binding_needs_an_admin_and_the_app(
    portal: CrmPortal, tmp_path: Path
) -> None:
    cashier = oauth_client(
        portal.emulator, tmp_path / "c.json", pairing=portal.emulator.credentials(CASHIER_USER_ID)
    )
    async with cashier:
        with pytest.raises(AccessDenied, match="administrator"):
            await bind(cashier)
    await bind(portal.admin)
    with pytest.raises(BitrixError, match="already"):
        await bind(portal.admin)
    listed = await portal.admin.result("event.get", {})
    assert listed == [
        {
            "event": "ONCRMDEALUPDATE",
            "handler": "",
            "auth_type": "0",
            "offline": 1,
            "connector_id": "c1",
        }
    ]
    with pytest.raises(BitrixError, match="Offline event cannot be registered"):
        await bind(portal.admin, "ONOFFLINEEVENT")


async def test_changes_collapse_reservations_hide_and_clear_deletes(portal: CrmPortal) -> None:
    admin = portal.admin
    await bind(admin)
    deal = portal.deal()
    for _ in range(5):
        portal.crm.deal_changed(deal, 1, None)
    listed = await admin.result("event.offline.list", {"auth_connector": "c1"})
    assert len(listed) == 1 and listed[0]["PROCESS_ID"] == ""  # one row: the latest state
    got = await admin.result("event.offline.get", {"clear": 0, "auth_connector": "c1"})
    process_id = got["process_id"]
    assert len(process_id) == 32 and got["events"][0]["EVENT_DATA"] == {"FIELDS": {"ID": deal}}
    assert (await admin.result("event.offline.get", {"clear": 0, "auth_connector": "c1"}))[
        "events"
    ] == []
    portal.crm.deal_changed(deal, 1, None)  # changed while reserved: a new, free row
    again = await admin.result(
        "event.offline.get", {"process_id": process_id, "clear": 0, "auth_connector": "c1"}
    )
    assert [e["ID"] for e in again["events"]] == [e["ID"] for e in got["events"]]
    listed = await admin.result("event.offline.list", {"auth_connector": "c1"})
    assert sorted(r["PROCESS_ID"] for r in listed) == ["", process_id]
    await admin.result("event.offline.clear", {"process_id": process_id, "auth_connector": "c1"})
    rest_of = await admin.result("event.offline.get", {"auth_connector": "c1"})  # clear=1
    assert len(rest_of["events"]) == 1 and rest_of["process_id"] is None
    assert portal.queued() == 0


async def test_error_marks_unreserve_and_read_back_with_error_1(portal: CrmPortal) -> None:
    admin = portal.admin
    await bind(admin)
    deal = portal.deal()
    portal.crm.deal_changed(deal, 1, None)
    got = await admin.result("event.offline.get", {"clear": 0, "auth_connector": "c1"})
    message = got["events"][0]["MESSAGE_ID"]
    await admin.result(
        "event.offline.error",
        {"process_id": got["process_id"], "message_id": [message], "auth_connector": "c1"},
    )
    assert (await admin.result("event.offline.get", {"clear": 0, "auth_connector": "c1"}))[
        "events"
    ] == []
    errors = await admin.result("event.offline.get", {"error": 1, "auth_connector": "c1"})
    assert [e["MESSAGE_ID"] for e in errors["events"]] == [message]


async def test_a_change_made_with_the_connector_is_not_queued_for_it(portal: CrmPortal) -> None:
    admin = portal.admin
    await bind(admin, connector="c1")
    await bind(admin, connector="c2")
    deal = portal.deal()
    await admin.result("event.offline.get", {"auth_connector": "c1"})
    await admin.result("event.offline.get", {"auth_connector": "c2"})
    await admin.result(
        "crm.item.update",
        {"entityTypeId": 2, "id": deal, "fields": {"title": "T"}, "auth_connector": "c1"},
    )
    assert len(portal.emulator.events.pending("c1")) == 0
    assert len(portal.emulator.events.pending("c2")) == 1


async def test_crm_rows_timeline_and_user_fields(portal: CrmPortal) -> None:
    admin = portal.admin
    deal = portal.deal(
        [
            {
                "productName": "iphone 14",
                "price": 90000,
                "quantity": 3,
                "discountRate": 10,
                "taxRate": 10,
            }
        ]
    )
    rows = await admin.result(
        "crm.item.productrow.list", {"filter": {"=ownerType": "D", "=ownerId": deal}}
    )
    row = rows["productRows"][0]  # the docs' own example numbers
    assert (row["priceExclusive"], row["priceNetto"], row["priceBrutto"]) == (
        81818.18,
        90909.09,
        100000,
    )
    assert row["discountSum"] == 9090.91
    item = await admin.result("crm.item.get", {"entityTypeId": 2, "id": deal})
    assert item["item"]["opportunity"] == 270000 and item["item"]["currencyId"] == "RUB"
    await admin.result(
        "crm.deal.userfield.add", {"fields": {"FIELD_NAME": "KASSA_FD", "USER_TYPE_ID": "string"}}
    )
    await admin.result(
        "crm.item.update",
        {
            "entityTypeId": 2,
            "id": deal,
            "useOriginalUfNames": "Y",
            "fields": {"UF_CRM_KASSA_FD": "17"},
        },
    )
    item = await admin.result("crm.item.get", {"entityTypeId": 2, "id": deal})
    assert item["item"]["ufCrmKassaFd"] == "17"
    comment = await admin.result(
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal", "COMMENT": "hi"}},
    )
    listed = await admin.result(
        "crm.timeline.comment.list", {"filter": {"ENTITY_ID": deal, "ENTITY_TYPE": "deal"}}
    )
    assert [(c["ID"], c["COMMENT"]) for c in listed] == [(str(comment), "hi")]
    with pytest.raises(BitrixError, match="Owner"):
        await admin.result(
            "crm.timeline.comment.add",
            {"fields": {"ENTITY_ID": 999, "ENTITY_TYPE": "deal", "COMMENT": "x"}},
        )
    stages = await admin.result("crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}})
    assert {"WON", "LOSE"} <= {s["STATUS_ID"] for s in stages}
