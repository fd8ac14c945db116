"""Reply delivery in the real daemon process: a job with a reply target stored in the
journal by another process (as the LAN API and the CLI do) is printed on the simulator, its
delivery is in the journal's ledger and in ``kassa-appliance status`` (no sender registered
for the kind: it waits, and says so), and survives a SIGKILL without being duplicated. A job
from the Bitrix24 outbox with a REPLY is left to the appliance that expected it."""

# The fixtures imported from test_token_refresh_daemon are parameters of the same name.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from pathlib import Path

from bitrix_support import oauth_client
from kassa_appliance.bitrix.jobs import JOB_ENTITY, publish_job
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.fiscal.journal_deliveries import DeliveryLedger
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID
from sample_tasks import sell
from test_token_refresh_daemon import (  # noqa: F401
    KASSA,
    WAIT,
    Portal,
    clean_env,
    cli,
    configure,
    portal,
    start_daemon,
    stop_daemon,
    wait_until,
)

TARGET = {"kind": "example", "chat": "42"}
"""A kind no channel sends: the delivery waits for a sender."""


async def delivery_status(data_dir: Path) -> dict[str, object] | None:
    code, output = await cli(data_dir, "status", "--json", env=clean_env())
    assert code == 0, output
    section = json.loads(output).get("delivery")
    return section if isinstance(section, dict) else None


async def test_the_daemon_shows_a_waiting_delivery_in_status_across_a_sigkill(
    portal: Portal, tmp_path: Path
) -> None:
    emulator = portal.emulator
    data_dir = tmp_path / "data"
    configure(data_dir, emulator.credentials())
    env = clean_env()
    daemon = await start_daemon(data_dir, env)
    try:
        await wait_until(
            lambda: JOB_ENTITY in emulator.state.entities and portal.push.stats.connections > 0,
            "the daemon's storage bootstrap and push connection",
        )
        producer = oauth_client(
            emulator, tmp_path / "producer.json", pairing=emulator.credentials(CASHIER_USER_ID)
        )
        job_id = str(uuid.uuid4())
        async with producer:
            await publish_job(
                producer,
                job_id=job_id,
                kassa=KASSA,
                task=sell(),
                reply={"targets": [TARGET]},
                ring=True,
            )
        await wait_until(lambda: portal.item_state(job_id) == "done", "the job written back")
        lan_job = str(uuid.uuid4())
        with Journal(data_dir / "journal.sqlite3") as journal:
            journal.submit(lan_job, sell(), source="lan", reply={"targets": [TARGET]})

        status: dict[str, object] | None = None
        deadline = asyncio.get_running_loop().time() + WAIT
        while status is None or status.get("pending") != 1:
            assert asyncio.get_running_loop().time() < deadline, f"delivery status: {status}"
            await asyncio.sleep(0.2)
            status = await delivery_status(data_dir)
        assert status["waiting"] == ["no sender for example (1)"]
        assert status["failed"] == 0 and status["sent"] == 0
        code, text = await cli(data_dir, "status", env=clean_env())
        assert code == 0 and "delivery: {" in text and "no sender for example" in text

        daemon.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(daemon.wait(), WAIT) == -signal.SIGKILL
        daemon = await start_daemon(data_dir, env)
        await wait_until(lambda: portal.push.stats.connections > 1, "the restarted daemon")
        status = None
        while status is None or status.get("pending") != 1:
            assert asyncio.get_running_loop().time() < deadline + WAIT, f"status: {status}"
            await asyncio.sleep(0.2)
            status = await delivery_status(data_dir)
    finally:
        await stop_daemon(daemon)
    with DeliveryLedger(data_dir / "journal.sqlite3") as ledger:
        assert ledger.for_job(job_id) == []
        (row,) = ledger.for_job(lan_job)
    assert (row.state, row.kind, row.target) == ("pending", "example", TARGET)
    assert row.outcome is not None and row.outcome["state"] == "done" and row.outcome["qr"]
