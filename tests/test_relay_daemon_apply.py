"""``sale.cashbox.check.apply`` through the real daemon: the appliance is paired with the
Bitrix24 emulator and takes checks from the relay on the 3-node cluster. A check posted to
PRINT_URL is printed once and the portal records exactly one ``check.apply`` with every
fiscal field — also when the daemon is SIGKILLed after printing and before applying: the
emulator answers ``check.apply`` with 500 until the daemon is killed (the delivery pause
hook does not serve here: the ``relay`` and ``cashbox`` deliveries of one job run in no
fixed order, and a kill after an apply is repeated by design, ``CashboxSender.find_sent``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kassa_appliance.appliance.config import (
    BitrixConfig,
    Config,
    KassaConfig,
    RegisterConfig,
    save_config,
)
from kassa_appliance.bitrix.phpquery import build_query
from kassa_appliance.channels.relay.settings import RelayConfig
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_relay.bus import Bus, BusOptions
from kassa_relay.registry import Cashbox, cashbox_key
from relay_cluster import RELAY_PASSWORD, NatsCluster, kassa_password, register, start_relays
from test_relay_cluster import FORM, b24_check, printed_once
from test_token_refresh_daemon import PAIRING_KEYS, WAIT, clean_env, start_daemon, stop_daemon

TENANT, KASSA = "shop-b", "k1"
FISCAL_FIELDS = {
    "PRINT_END_TIME",
    "REG_NUMBER_KKT",
    "FISCAL_DOC_ATTR",
    "FISCAL_DOC_NUMBER",
    "FISCAL_RECEIPT_NUMBER",
    "FN_NUMBER",
    "SHIFT_NUMBER",
}


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator() as running:
        yield running


async def wait_until(predicate: Any, what: str, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"{what} never happened"
        await asyncio.sleep(0.1)


async def relay_uuid(cluster: NatsCluster, check_uuid: str) -> str:
    """The UUID the relay will answer (kassa:HMAC of the check uuid under the cashbox key):
    the test "prints" it on the portal before posting, as Bitrix24 records its checks."""
    bus = Bus(BusOptions(tuple(cluster.urls), "relay", RELAY_PASSWORD, str(cluster.pki.ca)))
    await bus.start()
    try:
        stored = await bus.registry_get(cashbox_key(TENANT, KASSA))
    finally:
        await bus.close()
    assert stored is not None
    return f"{KASSA}:{Cashbox.from_json(stored).digest(check_uuid)}"


def configure(data_dir: Path, emulator: Emulator, cluster: NatsCluster) -> None:
    pairing = emulator.credentials()
    save_config(
        data_dir,
        Config(
            register=RegisterConfig(driver="simulator"),
            kassa=KassaConfig(id=KASSA),
            bitrix=BitrixConfig.model_validate({k: pairing[k] for k in PAIRING_KEYS}),
            relay=RelayConfig(
                enabled=True,
                servers=tuple(cluster.urls),
                tenant=TENANT,
                password=kassa_password(TENANT, KASSA),
                ca_file=str(cluster.pki.ca),
            ),
        ),
    )


async def test_a_check_is_applied_once_even_after_a_kill_between_print_and_apply(
    nats_cluster: NatsCluster, emulator: Emulator, tmp_path: Path
) -> None:
    nats_cluster.ensure_all_up()
    secret = register(nats_cluster, tmp_path, TENANT, KASSA, "--vat", "3=20", "--vat", "1=none")
    (relay,) = start_relays(nats_cluster, tmp_path, 1)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    configure(data_dir, emulator, nats_cluster)
    env = clean_env()
    verify = nats_cluster.pki.client_context()
    checks = [b24_check(1, "sell", secret), b24_check(2, "sellreturn", secret)]
    uuids = [await relay_uuid(nats_cluster, check["uuid"]) for check in checks]
    for uuid in uuids:
        emulator.cashbox.printed(uuid)
    daemon = await start_daemon(data_dir, env)
    try:
        async with httpx.AsyncClient(verify=verify, timeout=15) as client:

            async def post(check: dict[str, Any]) -> str:
                answer = await client.post(
                    f"{relay.url}/b24/{TENANT}/print", content=build_query(check), headers=FORM
                )
                assert answer.status_code == 200, answer.text
                return str(answer.json()["UUID"])

            async def status(uuid: str) -> dict[str, Any]:
                answer = await client.post(f"{relay.url}/b24/{TENANT}/check", data={"uuid": uuid})
                return dict(answer.json())

            async def wait_for_status(uuid: str) -> None:
                for _ in range(int(WAIT * 5)):
                    answer = await status(uuid)
                    if answer["STATUS"] != "WAIT":
                        break
                    await asyncio.sleep(0.2)
                assert answer["STATUS"] == "DONE", (uuid, answer)
                assert set(answer) >= FISCAL_FIELDS, answer

            # 1. plain: printed, applied once with every fiscal field
            assert await post(checks[0]) == uuids[0]
            await wait_until(lambda: len(emulator.cashbox.applied) == 1, "the first apply")

            # 2. printed, the result on the bus, the apply failing (the portal answers 500):
            #    SIGKILL there, the portal recovers, the restarted daemon applies once
            emulator.faults.add("error500", count=None, methods=["sale.cashbox.check.apply"])
            assert await post(checks[1]) == uuids[1]
            await wait_for_status(uuids[1])
            await wait_until(lambda: emulator.faults.fired["error500"] >= 1, "an apply attempt")
            assert len(emulator.cashbox.applied) == 1, "applied through the fault"
            daemon.kill()
            await daemon.wait()
            emulator.faults.clear()
            daemon = await start_daemon(data_dir, env)
            await wait_until(lambda: len(emulator.cashbox.applied) == 2, "the second apply")
            for uuid in uuids:
                await wait_for_status(uuid)
            await stop_daemon(daemon)  # the worker has settled: nothing more to send
    finally:
        if daemon.returncode is None:
            daemon.kill()
            await daemon.wait()
        relay.kill()
    applied = emulator.cashbox.applied
    assert [entry["UUID"] for entry in applied] == uuids, json.dumps(applied)
    for entry in applied:
        assert set(entry) >= FISCAL_FIELDS, entry
        assert "STATUS" not in entry or entry["STATUS"] != "ERROR", entry
    numbers = {entry["FISCAL_DOC_NUMBER"] for entry in applied}
    assert len(numbers) == 2, "two checks claim one fiscal document"
    printed_once(data_dir, {check["uuid"] for check in checks})
