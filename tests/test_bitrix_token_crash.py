"""SIGKILL right after a token refresh must never unpair the appliance (persist-before-use)."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import sys
from pathlib import Path

from kassa_appliance.testbeds.bitrix24.app import Emulator

CHILD = Path(__file__).with_name("bitrix_token_child.py")


async def run_child(pairing: Path, tokens: Path, *, pause: bool) -> str:
    """Run the child; with ``pause`` SIGKILL it as soon as it reports PERSISTED."""
    args = [sys.executable, str(CHILD), str(pairing), str(tokens)]
    if pause:
        args.append("--pause-after-persist")
    child = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    line = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().strip()
    if pause:
        child.send_signal(signal.SIGKILL)
    await asyncio.wait_for(child.wait(), 30)
    if not pause:
        assert child.returncode == 0, (await child.stderr.read()).decode()  # type: ignore[union-attr]
    else:
        assert child.returncode == -signal.SIGKILL
    return line


async def test_a_kill_between_refresh_and_first_use_leaves_a_working_pairing(
    tmp_path: Path,
) -> None:
    async with Emulator() as emulator:
        pairing_path = tmp_path / "pairing.json"
        tokens = tmp_path / "data" / "tokens.json"
        pairing = emulator.credentials()
        pairing_path.write_text(json.dumps(pairing))
        for _round in range(3):
            calls_before = sum(emulator.api.calls.values())
            assert await run_child(pairing_path, tokens, pause=True) == "PERSISTED"
            assert sum(emulator.api.calls.values()) == calls_before  # killed before any use
            stored = json.loads(tokens.read_text())
            assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
            assert stored["refresh_token"] in emulator.state.refresh_tokens
            emulator.state.expire_access_tokens()  # the next run must refresh again
        assert pairing["refresh_token"] not in emulator.state.refresh_tokens  # used up
        assert await run_child(pairing_path, tokens, pause=False) == "OK 1"
        assert emulator.state.refresh_count == 4
