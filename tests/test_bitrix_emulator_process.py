"""The emulator as a separate process (``kassa-appliance emulator``) with the producer CLI
(``send-job``) and the appliance's job link in this process, all over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bitrix_support import FAST_RETRY, oauth_credentials
from kassa_appliance.bitrix.auth import OAuthAuth, TokenFile
from kassa_appliance.bitrix.jobs import EngineAdapter, JobLink
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.fiscal.engine import Engine, EngineSettings
from kassa_appliance.fiscal.journal import JobState, Journal
from kassa_appliance.registers.simulator import SimulatorRegister

EMULATOR_CLI = [sys.executable, "-m", "kassa_appliance.testbeds.bitrix24.cli"]
SELL = {
    "type": "sell",
    "operator": {"name": "Кассир Тестов", "vatin": "500100732259"},
    "items": [
        {
            "type": "position",
            "name": "Кофе",
            "price": 99.5,
            "quantity": 2,
            "amount": 199.0,
            "tax": {"type": "vat22"},
            "paymentMethod": "fullPayment",
            "paymentObject": "commodity",
        }
    ],
    "payments": [{"type": "electronically", "sum": 199.0}],
    "total": 199.0,
}


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A running emulator subprocess; yields the daemon pairing it wrote."""
    credentials = tmp_path / "pairing.json"
    process = subprocess.Popen(
        [
            *EMULATOR_CLI,
            "emulator",
            "--port",
            "0",
            "--no-push",
            "--state-file",
            str(tmp_path / "portal.json"),
            "--credentials-out",
            str(credentials),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        pairing = json.loads(credentials.read_text())
        assert announced["portal"] == pairing["portal"]
        assert stat.S_IMODE(os.stat(credentials).st_mode) == 0o600
        yield pairing
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert json.loads((tmp_path / "portal.json").read_text())["client_id"] == pairing["client_id"]


def send_job(
    portal: str, task_file: Path, kassa: str, job_id: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *EMULATOR_CLI,
            "send-job",
            str(task_file),
            "--kassa",
            kassa,
            "--portal",
            portal,
            "--job-id",
            job_id,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_a_job_sent_with_the_cli_is_fiscalised_through_the_emulator_process(
    emulator_process: dict[str, Any], tmp_path: Path
) -> None:
    task_file = tmp_path / "sell.json"
    task_file.write_text(json.dumps(SELL, ensure_ascii=False))
    journal = Journal(tmp_path / "journal.sqlite3")
    engine = Engine(
        journal,
        SimulatorRegister(tmp_path / "simulator"),
        EngineSettings(retry_interval=0.01, journal_poll_interval=0.02),
    )
    worker = asyncio.create_task(engine.run())
    auth = OAuthAuth(oauth_credentials(emulator_process), TokenFile(tmp_path / "tokens.json"))
    rest = RestClient(auth, retry=FAST_RETRY)
    link = JobLink(rest, EngineAdapter(engine), kassa_id="kassa-1", sweep_interval=0.05)
    try:
        await link.ensure_storage()
        job_id = str(uuid.uuid4())
        sent = await asyncio.to_thread(
            send_job, emulator_process["portal"], task_file, "kassa-1", job_id
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip() == job_id
        bad = await asyncio.to_thread(send_job, emulator_process["portal"], tmp_path, "k", "x")
        assert bad.returncode == 2 and "cannot read" in bad.stderr
        assert await link.reconcile() == 1
        job = await engine.wait_for(job_id, timeout=20)
        assert job.state is JobState.FISCALIZED
        assert await link.report_pending() == 1
        async with httpx.AsyncClient() as http:
            stats = (await http.get(emulator_process["portal"] + "/_emulator/stats")).json()
        # the doorbell the CLI rang, and the kassa.state event of the write-back batch
        assert stats["published"] == 2
        items = await rest.result(
            "entity.item.get", {"ENTITY": "KASSAJOB", "FILTER": {"NAME": job_id}}
        )
        assert items[0]["PROPERTY_VALUES"]["STATE"] == "done"
        assert items[0]["CREATED_BY"] == "2"
        assert "&s=199.00&" in json.loads(items[0]["PROPERTY_VALUES"]["RESULT"])["qr"]
    finally:
        await engine.stop()
        await worker
        await rest.aclose()
        journal.close()
