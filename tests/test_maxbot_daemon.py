"""The real daemon (``kassa-appliance run``, a process) with ``maxbot.enabled`` against the
MAX emulator: it long-polls with the token in the header, persists the marker, resumes
after SIGKILL from it, shows the bot in ``status.json``, and never logs the token (at
debug level)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kassa_appliance.appliance.config import Config, RegisterConfig, save_config
from kassa_appliance.channels.maxbot.settings import MaxBotConfig
from maxbot_support import TOKEN, Emulator, max_emulator

__all__ = ["max_emulator"]


def _wait(condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _start(data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("SNAP", "SNAP_DATA", "NOTIFY_SOCKET")}
    command = [sys.executable, "-m", "kassa_appliance", "--data-dir", str(data_dir)]
    return subprocess.Popen(
        [*command, "--log-level", "debug", "run"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env=env,
    )


def _marker(data_dir: Path) -> int | None:
    path = data_dir / "maxbot" / "marker.json"
    try:
        return int(json.loads(path.read_text())["marker"])
    except (OSError, ValueError, KeyError):
        return None


def _polls(emulator: Emulator) -> list[dict[str, Any]]:
    return [e for e in emulator.traffic() if e["path"] == "/updates"]


def test_the_daemon_polls_resumes_after_sigkill_and_never_logs_the_token(
    max_emulator: Emulator, tmp_path: Path
) -> None:
    data_dir = tmp_path / "appliance"
    log = tmp_path / "daemon.log"
    maxbot = MaxBotConfig(enabled=True, token=TOKEN, api_url=max_emulator.url, poll_timeout=5)
    save_config(data_dir, Config(register=RegisterConfig(driver="simulator"), maxbot=maxbot))
    daemon = _start(data_dir, log)
    try:
        _wait(lambda: _polls(max_emulator), what="the first long poll")
        max_emulator.write("Замена смесителя 1500")
        expected = max_emulator.state()["next_marker"]
        first = _wait(lambda: _marker(data_dir) == expected and expected, what="the marker")
        status = _wait(
            lambda: json.loads((data_dir / "status.json").read_text()).get("maxbot"),
            what="the maxbot status section",
        )
        assert status["api_url"] == max_emulator.url and status["token_rejected"] is False
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=30)

        max_emulator.write("Кран 2 х 350")
        before = len(_polls(max_emulator))
        daemon = _start(data_dir, log)
        _wait(lambda: (_marker(data_dir) or 0) > first, what="the marker to move on")
        resumed = [dict(e["query"]) for e in _polls(max_emulator)[before:]]
        assert resumed[0]["marker"] == str(first)
        assert all(e["authorized"] for e in max_emulator.traffic())
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "MAX bot: polling as" in text
    assert TOKEN not in text
    assert TOKEN not in (data_dir / "status.json").read_text()
    max_emulator.assert_traffic_valid()
