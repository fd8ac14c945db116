"""Registration with a portal and the ``cashbox`` reply sender, against the Bitrix24
emulator: ``kassa-relay cashbox register --webhook`` reads ``catalog.vat.list``, adds the
handler (``SUPPORTS_FFD105``, PRINT_URL/CHECK_URL, the RELAY settings section) and the
cashbox with its secret; the sender pushes results with ``sale.cashbox.check.apply`` by the
UUID the relay answered."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bitrix_support import oauth_client
from kassa_appliance.channels.delivery.protocol import Delivery, DeliveryFailed, Outcome
from kassa_appliance.channels.relay.senders import CashboxSender
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_relay.bus import Bus, BusOptions
from kassa_relay.registry import Cashbox, cashbox_key
from relay_cluster import RELAY_PASSWORD, NatsCluster

FISCAL = {
    "fiscalDocumentNumber": 41,
    "fiscalDocumentSign": "3522337715",
    "fiscalReceiptNumber": 7,
    "fnNumber": "9999078900004312",
    "registrationNumber": "0000000001002292",
    "shiftNumber": 3,
    "fiscalDocumentDateTime": "2026-12-01T12:00:00+03:00",
}


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator() as running:
        yield running


async def relay_cli(cluster: NatsCluster, tmp_path: Path, *args: str) -> str:
    password = tmp_path / "relay-password"
    password.write_text(RELAY_PASSWORD)
    bus = [
        "--nats-user",
        "relay",
        "--nats-password-file",
        str(password),
        "--nats-ca",
        str(cluster.pki.ca),
        *[x for url in cluster.urls for x in ("--nats", url)],
    ]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kassa_relay",
        *args,
        *bus,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_register_with_a_portal_webhook(
    nats_cluster: NatsCluster, emulator: Emulator, tmp_path: Path
) -> None:
    nats_cluster.ensure_all_up()
    await relay_cli(nats_cluster, tmp_path, "tenant", "add", "shop-a", "--name", "Shop A")
    output = await relay_cli(
        nats_cluster,
        tmp_path,
        "cashbox",
        "register",
        "shop-a",
        "k1",
        "--webhook",
        emulator.webhook_url(),
        "--public-url",
        "https://relay.example.ru",
        "--email",
        "owner@example.ru",
    )
    assert "registered on the relay and on the portal" in output
    handler = emulator.cashbox.handlers["kassa_relay"]
    assert handler["SUPPORTS_FFD105"] == "Y"
    settings = handler["SETTINGS"]
    assert settings["PRINT_URL"] == "https://relay.example.ru/b24/shop-a/print"
    assert settings["CHECK_URL"] == "https://relay.example.ru/b24/shop-a/check"
    assert set(settings["CONFIG"]["RELAY"]["ITEMS"]) == {"KASSA", "SECRET"}
    (cashbox,) = emulator.cashbox.cashboxes
    relay_settings = cashbox["SETTINGS"]["RELAY"]
    assert relay_settings["KASSA"] == "k1" and len(relay_settings["SECRET"]) >= 40
    assert relay_settings["SECRET"] not in output, "the secret was echoed"

    bus = Bus(
        BusOptions(tuple(nats_cluster.urls), "relay", RELAY_PASSWORD, str(nats_cluster.pki.ca))
    )
    await bus.start()
    try:
        stored = await bus.registry_get(cashbox_key("shop-a", "k1"))
    finally:
        await bus.close()
    assert stored is not None
    record = Cashbox.from_json(stored)
    assert record.vat == {"1": "none", "2": "0", "3": "20", "4": "10"}
    assert relay_settings["SECRET"] not in str(stored), "the secret itself was stored"

    # A second registration of another kassa: the handler exists already, that is fine.
    await relay_cli(
        nats_cluster,
        tmp_path,
        "cashbox",
        "register",
        "shop-a",
        "k2",
        "--webhook",
        emulator.webhook_url(),
        "--public-url",
        "https://relay.example.ru",
    )
    assert len(emulator.cashbox.cashboxes) == 2


async def test_cashbox_sender_applies_results_by_the_relay_uuid(
    emulator: Emulator, tmp_path: Path
) -> None:
    rest = oauth_client(emulator, tmp_path / "tokens.json")
    sender = CashboxSender(rest)
    emulator.cashbox.printed("k1:" + "a" * 32)
    emulator.cashbox.printed("k1:" + "b" * 32)
    done = Outcome("check|shop|1", "done", {"type": "sell"}, result={"fiscalParams": FISCAL})
    target = {"kind": "cashbox", "uuid": "k1:" + "a" * 32}
    assert await sender.send(Delivery("check|shop|1", target, "k", 1, done)) == target["uuid"]
    assert await sender.send(Delivery("check|shop|1", target, "k", 2, done)) == target["uuid"]
    applied = emulator.cashbox.checks[target["uuid"]]
    assert applied == {
        "PRINT_END_TIME": "1796115600",
        "REG_NUMBER_KKT": "0000000001002292",
        "FISCAL_DOC_ATTR": "3522337715",
        "FISCAL_DOC_NUMBER": "41",
        "FISCAL_RECEIPT_NUMBER": "7",
        "FN_NUMBER": "9999078900004312",
        "SHIFT_NUMBER": "3",
    }
    assert emulator.cashbox.applied[0] == emulator.cashbox.applied[1], "not idempotent"
    failed = Outcome(
        "check|shop|2",
        "failed",
        {"type": "sell"},
        error_code="no-paper",
        error_message="out of paper",
    )
    other = {"kind": "cashbox", "uuid": "k1:" + "b" * 32}
    await sender.send(Delivery("check|shop|2", other, "k2", 1, failed))
    assert emulator.cashbox.checks[other["uuid"]] == {
        "STATUS": "ERROR",
        "ERROR": "no-paper: out of paper",
    }
    with pytest.raises(DeliveryFailed, match="ERROR_CHECK_NOT_FOUND"):
        await sender.send(Delivery("x", {"kind": "cashbox", "uuid": "k1:nope"}, "k3", 1, done))
    await rest.aclose()
