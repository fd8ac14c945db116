"""Token refresh safety with the real daemon process (issue 9, defect 3): a SIGKILL after
the token server rotated and before the new pair is saved, and a pairing no chain can save.

The emulator and push server run in this process (loopback), the daemon is a subprocess
(``daemon_command``) on the simulator register. The SIGKILL window is made reachable by the
test-only pause ``KASSA_DEBUG_PAUSE_BEFORE_TOKEN_SAVE`` (inert without ``KASSA_DEBUG_HOOKS=1``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bitrix_support import oauth_client
from kassa_appliance.appliance.config import (
    BitrixConfig,
    Config,
    KassaConfig,
    RegisterConfig,
    save_config,
)
from kassa_appliance.appliance.daemon import daemon_command, read_status_file
from kassa_appliance.bitrix.jobs import JOB_ENTITY, publish_job
from kassa_appliance.bitrix.pairing import DEBUG_PAUSE_BEFORE_TOKEN_SAVE_ENV
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID
from sample_tasks import sell

KASSA = "kassa-t"
PAIRING_KEYS = ("portal", "client_id", "client_secret", "refresh_token", "token_url")
WAIT = 60.0


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"{what} never happened"
        await asyncio.sleep(0.05)


@dataclass
class Portal:
    emulator: Emulator
    push: PushServer

    def item_state(self, job_id: str) -> str | None:
        entity = self.emulator.state.entities.get(JOB_ENTITY)
        items = [] if entity is None else [i for i in entity.items.values() if i.name == job_id]
        return items[0].properties.get("STATE") if items else None


@pytest.fixture
async def portal() -> AsyncIterator[Portal]:
    push = PushServer(PushSettings(buffer_delay=(0.0, 0.0)))
    await push.start("127.0.0.1", 0)
    emulator = Emulator(push=push)
    await emulator.start()
    try:
        yield Portal(emulator, push)
    finally:
        await emulator.stop()
        await push.stop()


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("NOTIFY_", "WATCHDOG_", "SNAP", "KASSA_"))
    }
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def configure(data_dir: Path, pairing: dict[str, Any]) -> None:
    save_config(
        data_dir,
        Config(
            register=RegisterConfig(driver="simulator"),
            kassa=KassaConfig(id=KASSA),
            bitrix=BitrixConfig.model_validate({k: pairing[k] for k in PAIRING_KEYS}),
        ),
    )


async def start_daemon(data_dir: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    with open(data_dir / "daemon.log", "ab") as log:  # the child keeps its own copy
        return await asyncio.create_subprocess_exec(
            *daemon_command(data_dir, "info"),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )


async def stop_daemon(daemon: asyncio.subprocess.Process) -> None:
    if daemon.returncode is None:
        daemon.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(daemon.wait(), WAIT) == 0


async def cli(data_dir: Path, *args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kassa_appliance",
        "--data-dir",
        str(data_dir),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_sigkill_after_the_server_rotated_and_before_the_save_recovers_on_restart(
    portal: Portal, tmp_path: Path
) -> None:
    emulator = portal.emulator
    data_dir = tmp_path / "data"
    pairing = emulator.credentials()
    main = pairing["refresh_token"]
    spare = emulator.state.issue_refresh_token(pairing["user_id"])
    configure(data_dir, {**pairing, "refresh_token": f"{main},{spare}"})
    paused = tmp_path / "paused-before-token-save"
    env = clean_env(KASSA_DEBUG_HOOKS="1", **{DEBUG_PAUSE_BEFORE_TOKEN_SAVE_ENV: str(paused)})

    daemon = await start_daemon(data_dir, env)
    try:
        await wait_until(paused.exists, "the pause before the token save")
        assert emulator.state.refresh_count == 1 and main not in emulator.state.refresh_tokens
        daemon.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(daemon.wait(), WAIT) == -signal.SIGKILL
        stored = json.loads((data_dir / "tokens.json").read_text())
        assert stored["in_flight"]["chain"] == "main"
        assert stored["refresh_token"] == main  # the rotated answer never reached the disk
        assert stat.S_IMODE((data_dir / "tokens.json").stat().st_mode) == 0o600

        daemon = await start_daemon(data_dir, env)  # the pause is spent: it runs on
        await wait_until(
            lambda: JOB_ENTITY in emulator.state.entities and portal.push.stats.connections > 0,
            "the restarted daemon's storage bootstrap and push connection",
        )
        producer = oauth_client(
            emulator, tmp_path / "producer.json", pairing=emulator.credentials(CASHIER_USER_ID)
        )
        job_id = str(uuid.uuid4())
        async with producer:
            await publish_job(producer, job_id=job_id, kassa=KASSA, task=sell(), ring=True)
        await wait_until(lambda: portal.item_state(job_id) == "done", "the job written back")
        assert spare not in emulator.state.refresh_tokens  # the spare chain re-seeded it
        code, output = await cli(data_dir, "status", "--json", env=clean_env())
        assert code == 0
        status = json.loads(output)
        assert status["bitrix_paired"] is True and status["bitrix_spare_chain"] == "used"
    finally:
        await stop_daemon(daemon)
    log_text = (data_dir / "daemon.log").read_text()
    assert main not in log_text and spare not in log_text
    assert "re-seeding the main chain from the spare chain" in log_text


async def test_when_every_chain_is_refused_status_health_say_so_and_local_jobs_print(
    portal: Portal, tmp_path: Path
) -> None:
    emulator = portal.emulator
    data_dir = tmp_path / "data"
    pairing = emulator.credentials()
    spare = emulator.state.issue_refresh_token(pairing["user_id"])
    emulator.state.rotate(pairing["refresh_token"])  # both used up elsewhere
    emulator.state.rotate(spare)
    configure(data_dir, {**pairing, "refresh_token": f"{pairing['refresh_token']},{spare}"})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    snapctl = bin_dir / "snapctl"
    snapctl.write_text(
        '#!/bin/sh\nprintf "%s|" "$@" >> "$(dirname "$0")/calls.txt"\necho >> '
        '"$(dirname "$0")/calls.txt"\n'
    )
    snapctl.chmod(snapctl.stat().st_mode | stat.S_IXUSR)
    calls = bin_dir / "calls.txt"
    env = clean_env(SNAP=str(tmp_path / "snap"), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    daemon = await start_daemon(data_dir, env)
    try:
        await wait_until(
            lambda: calls.exists() and "bitrix-unpaired" in calls.read_text(), "health blocked"
        )
        health = [line for line in calls.read_text().splitlines() if "bitrix-unpaired" in line]
        assert health[-1] == (
            "set-health|--code=bitrix-unpaired|blocked|"
            "pair again: snap set kassa-appliance bitrix.refresh-token=<new token>|"
        )
        refreshes = emulator.state.refresh_count
        code, output = await cli(data_dir, "status", "--json", env=clean_env())
        assert code == 0, output
        status = json.loads(output)
        assert status["bitrix_paired"] is False
        problem = status["bitrix_pairing_problem"]
        assert "refused" in problem and "bitrix.refresh-token=<new token>" in problem
        assert pairing["refresh_token"] not in output and spare not in output

        task = tmp_path / "sell.json"
        task.write_text(json.dumps(sell(), ensure_ascii=False))
        code, output = await cli(data_dir, "print", str(task), "--timeout", "45", env=clean_env())
        assert code == 0, output  # the daemon keeps printing local jobs
        assert (read_status_file(data_dir) or {}).get("pid") == daemon.pid
        assert emulator.state.refresh_count == refreshes  # nothing more asked of the server
    finally:
        await stop_daemon(daemon)
