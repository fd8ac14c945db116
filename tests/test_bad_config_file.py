"""A config.json the daemon cannot read (edited by hand, or left by a newer version) is
named with its problem; the CLI exits 5 and the daemon stays up, blocked, instead of
crash-looping under systemd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_cli import cli


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"register": {"driver": "foo"}}', "register.driver: value is not allowed"),
        ('{"register": {"url": "http://127.0.0.1:abc"}}', "register.url"),
        ("{bad", "is not valid JSON"),
        ('{"schema": 99}', "newer than this version understands"),
    ],
)
def test_status_names_the_problem_of_a_bad_config_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "config.json").write_text(text, encoding="utf-8")
    result = cli(tmp_path, "status")
    assert result.returncode == 5, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_the_daemon_stays_up_blocked_on_a_bad_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"register": {"driver": "foo"}}', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP", "KASSA_"))}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "kassa_appliance", "--data-dir", str(tmp_path), "run"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        time.sleep(3)
        assert daemon.poll() is None, "the daemon exited on a bad config.json"
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    assert daemon.returncode == 0
    assert "not running jobs" in stderr and "register.driver" in stderr
