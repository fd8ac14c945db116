"""CRM automation with the portal's real REST limit on (the emulator's ``standard`` profile:
2 requests/s, burst 50): how long a won deal takes to print, and what a burst costs.

Set-up (all loopback): the portal emulator (REST, offline events, CRM, push) runs in this
process; the daemon runs as a real subprocess (``python -m kassa_appliance run``) on the
simulated register, as automation host and kassa at once, polling the offline queue every
``--poll-seconds``. Deals are moved by "a portal user" in-process (the emulator's CRM
controls raise the offline events), so every REST request the emulator admits is the
daemon's.

1. **isolated** (``--deals``): one deal moved to WON once the previous one's receipt is
   done; latency = the move → the KASSAJOB item reads ``done`` (the receipt is printed and
   written back), and → the result comment on the deal's timeline. Each move lands at a
   random point of the poll cycle, so the figures include the wait for the next poll (on
   average half of ``--poll-seconds``).
2. **burst** (``--burst``): that many deals moved to WON at once; time until every one is
   printed, and until every result is on its deal; REST requests spent, 503s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kassa_appliance.appliance.config import (
    BitrixConfig,
    Config,
    KassaConfig,
    RegisterConfig,
    save_config,
)
from kassa_appliance.appliance.daemon import daemon_command
from kassa_appliance.bitrix.auth import OAuthAuth, TokenFile
from kassa_appliance.bitrix.central_settings import SETTINGS_ENTITY
from kassa_appliance.bitrix.protocol import JOB_ENTITY
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.channels.automation.rules_store import RULES_ITEM, SETTINGS_PROPERTIES
from kassa_appliance.channels.automation.settings import AutomationConfig
from kassa_appliance.testbeds.bitrix24.app import Emulator, oauth_credentials
from kassa_appliance.testbeds.bitrix24.limits import PRODUCER_ADDRESS
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings
from kassa_appliance.testbeds.bitrix24.rest_crm_state import CONTACT
from kassa_appliance.testbeds.bitrix24.state import Item

KASSA = "bench-auto"
DEFAULT_DEALS = 20
DEFAULT_BURST = 500
DEFAULT_POLL = 2.0
SETTLE_SECONDS = 30.0
TIMEOUT = 900.0
PAIRING_KEYS = ("portal", "client_id", "client_secret", "refresh_token", "token_url")
RULES = json.dumps(
    {
        "rules": [
            {
                "id": "won",
                "kassa": KASSA,
                "trigger": {"kind": "deal_stage", "stage_id": "WON"},
                "taxation": "osn",
                "electronic": True,
            }
        ]
    }
)
ROWS = [{"productName": "Кабель USB-B", "price": 350, "quantity": 2, "taxRate": 20}]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Bench:
    def __init__(self, emulator: Emulator, data_dir: Path) -> None:
        self.emulator = emulator
        self.crm = emulator.crm
        self.data_dir = data_dir
        self.client = self.crm.add_party(CONTACT, "Покупатель", email="buyer@example.ru")

    def item(self, deal: int) -> Item | None:
        entity = self.emulator.state.entities.get(JOB_ENTITY)
        if entity is None:
            return None
        prefix = f"auto:deal:{deal}:"
        return next((i for i in entity.items.values() if i.name.startswith(prefix)), None)

    def printed(self, deal: int) -> bool:
        found = self.item(deal)
        return found is not None and found.properties.get("STATE") == "done"

    def commented(self, deal: int) -> bool:
        return any(c.entity_id == deal and "ФД №" in c.text for c in self.crm.comments.values())

    def requests(self) -> int:
        return int(self.emulator.limits.stats.admitted)

    def refused(self) -> int:
        return int(self.emulator.limits.stats.refused)

    def deal(self) -> int:
        return int(self.crm.add_deal("Заказ", ROWS, contact_id=self.client))


async def until(predicate: Any, what: str, timeout: float = TIMEOUT, step: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench.automation: {what} did not happen in {timeout:.0f} s")
        await asyncio.sleep(step)


async def store_rules(emulator: Emulator, token_file: Path) -> None:
    """The rules item as the Kassa app's settings page stores it (from the app's address)."""
    auth = OAuthAuth(oauth_credentials(emulator.credentials()), TokenFile(token_file))
    async with RestClient(auth, local_address=PRODUCER_ADDRESS) as admin:
        await admin.result(
            "entity.add", {"ENTITY": SETTINGS_ENTITY, "NAME": "Kassa settings", "ACCESS": {}}
        )
        await admin.batch(
            [
                ("entity.item.property.add", {"ENTITY": SETTINGS_ENTITY, "PROPERTY": c, "NAME": c})
                for c in SETTINGS_PROPERTIES
            ]
        )
        await admin.result(
            "entity.item.add",
            {
                "ENTITY": SETTINGS_ENTITY,
                "NAME": RULES_ITEM,
                "PROPERTY_VALUES": {"SETTINGS": RULES, "VERSION": "1"},
            },
        )


async def run(deals: int, burst: int, poll: float) -> None:
    os.environ.pop("KASSA_EMULATOR_LIMITS", None)
    push = PushServer(PushSettings(buffer_delay=(0.0, 0.0)))
    await push.start("127.0.0.1", 0)
    emulator = Emulator(push=push, limits="standard")
    await emulator.start()
    with tempfile.TemporaryDirectory(prefix="bench-automation-") as tmp:
        data_dir = Path(tmp)
        await store_rules(emulator, data_dir / "app-tokens.json")
        pairing = emulator.credentials()
        save_config(
            data_dir,
            Config(
                register=RegisterConfig(driver="simulator"),
                kassa=KassaConfig(id=KASSA),
                bitrix=BitrixConfig.model_validate({k: pairing[k] for k in PAIRING_KEYS}),
                automation=AutomationConfig(enabled=True, poll_seconds=poll),
            ),
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KASSA_", "SNAP"))}
        with open(data_dir / "daemon.log", "ab") as log:
            daemon = await asyncio.create_subprocess_exec(
                *daemon_command(data_dir, os.environ.get("BENCH_LOG", "warning")),
                env=env,
                stdout=log,
                stderr=log,
            )
        bench = Bench(emulator, data_dir)
        try:
            await until(lambda: len(emulator.events.bindings) == 3, "the offline bindings", 60)
            # start-up (storages, bindings) spent the daemon's own REST budget (1.8/s,
            # burst 40): let it refill, so the isolated figures are not its start-up debt
            await asyncio.sleep(SETTLE_SECONDS)
            to_print: list[float] = []
            to_comment: list[float] = []
            before = bench.requests()
            for _ in range(deals):
                deal = bench.deal()
                await asyncio.sleep(random.uniform(0, poll))  # any phase of the poll cycle
                moved = time.monotonic()
                bench.crm.move_deal(deal, "WON")
                await until(lambda d=deal: bench.printed(d), "an isolated receipt")
                to_print.append(time.monotonic() - moved)
                await until(lambda d=deal: bench.commented(d), "an isolated result comment")
                to_comment.append(time.monotonic() - moved)
            isolated_requests = bench.requests() - before
            print(
                f"isolated ({deals} deals, poll {poll:g} s): won → printed p50 "
                f"{statistics.median(to_print) * 1000:.0f} ms, p99 "
                f"{percentile(to_print, 0.99) * 1000:.0f} ms; → result on the deal p50 "
                f"{statistics.median(to_comment) * 1000:.0f} ms, p99 "
                f"{percentile(to_comment, 0.99) * 1000:.0f} ms; "
                f"{isolated_requests / deals:.1f} REST requests per deal (incl. polls)"
            )
            ids = [bench.deal() for _ in range(burst)]
            before, refused = bench.requests(), bench.refused()
            started = time.monotonic()
            for deal in ids:
                bench.crm.move_deal(deal, "WON")
            await until(lambda: all(bench.printed(d) for d in ids), "the burst printed", step=0.2)
            printed_at = time.monotonic() - started
            printed_requests = bench.requests() - before
            await until(lambda: all(bench.commented(d) for d in ids), "the burst results", step=0.2)
            commented_at = time.monotonic() - started
            spent = bench.requests() - before
            print(
                f"burst of {burst} won deals: all printed in {printed_at:.1f} s "
                f"({burst / printed_at:.1f} receipts/s, {printed_requests} REST requests); "
                f"all results on their deals in {commented_at:.1f} s; {spent} requests in all "
                f"({spent / burst:.2f} per deal, {spent / commented_at:.2f}/s), "
                f"{bench.refused() - refused} × 503"
            )
        finally:
            if os.environ.get("BENCH_LOG"):
                print((data_dir / "daemon.log").read_text()[-6000:])
                print(sorted(emulator.api.calls.items(), key=lambda kv: -kv[1]))
            if daemon.returncode is None:
                daemon.send_signal(signal.SIGTERM)
                await asyncio.wait_for(daemon.wait(), 60)
            await emulator.stop()
            await push.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.automation", description=__doc__)
    parser.add_argument("--deals", type=int, default=DEFAULT_DEALS)
    parser.add_argument("--burst", type=int, default=DEFAULT_BURST)
    parser.add_argument("--poll-seconds", type=float, default=DEFAULT_POLL)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    asyncio.run(run(args.deals, args.burst, args.poll_seconds))


if __name__ == "__main__":
    main()
