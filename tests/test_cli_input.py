"""`kassa-appliance print` on hostile input: real processes, exit 2, one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kassa_appliance.appliance.config import Config, RegisterConfig, save_config

TIMEOUT = 60
VALID = b'{"type": "getShiftStatus"}'


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    save_config(folder, Config(register=RegisterConfig(driver="simulator")))
    return folder


def print_task(
    data_dir: Path, source: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP", "KASSA_"))}
    return subprocess.run(
        [sys.executable, "-m", "kassa_appliance", "--data-dir", str(data_dir), "print", source],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=TIMEOUT,
    )


HOSTILE: list[tuple[str, bytes, str]] = [
    (
        "not utf-8",
        b'{"type": "sell", "name": "\xcf\xf0\xe8\xe2\xe5\xf2\xff"}',
        "is not valid UTF-8",
    ),
    ("utf-16 with bom", '{"type": "sell"}'.encode("utf-16"), "the text is UTF-16 encoded"),
    ("nesting 5000 deep", b'{"type": "sell", "a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested"),
    ("integer of 5000 digits", b'{"type": "sell", "total": ' + b"7" * 5000 + b"}", "5,000"),
    ("lone surrogate", b'{"type": "sell", "name": "\\ud800"}', "\\ud800"),
    ("NaN", b'{"type": "sell", "total": NaN}', "NaN is not a JSON number"),
    ("2 MB", b'{"type": "sell", "x": "' + b"a" * 2_000_000 + b'"}', "too large"),
    ("nesting 40 deep", b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "nested 33 levels deep"),
]


@pytest.mark.parametrize(
    ("data", "expected"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_task_file_exits_2_with_one_clear_line(
    data_dir: Path, tmp_path: Path, data: bytes, expected: str
) -> None:
    task = tmp_path / "task.json"
    task.write_bytes(data)

    done = print_task(data_dir, str(task))

    stderr = done.stderr.decode("utf-8")
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr
    [line] = stderr.splitlines()
    assert line.startswith(f"kassa-appliance: {task}")
    assert expected in line
    assert len(line) < 400
    assert done.stdout == b""


@pytest.mark.parametrize(
    ("data", "expected"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_task_on_stdin_exits_2_with_one_clear_line(
    data_dir: Path, data: bytes, expected: str
) -> None:
    done = print_task(data_dir, "-", stdin=data)

    stderr = done.stderr.decode("utf-8")
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr
    [line] = stderr.splitlines()
    assert line.startswith("kassa-appliance: standard input")
    assert expected in line


def test_a_valid_task_with_a_utf8_byte_order_mark_is_accepted(
    data_dir: Path, tmp_path: Path
) -> None:
    task = tmp_path / "task.json"
    task.write_bytes(b"\xef\xbb\xbf" + VALID)

    done = print_task(data_dir, str(task))

    assert done.returncode == 0, done.stderr.decode()
    assert b"fiscalized" in done.stdout
