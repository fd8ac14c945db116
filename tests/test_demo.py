"""`kassa-appliance demo` end to end: the real CLI as a subprocess runs the loopback portal
emulator, starts the real daemon as its own subprocess, sends the sample tasks through
Bitrix24 storage + Push&Pull, and reads the outcomes back from Bitrix24."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kassa_appliance.fiscal.journal import JobState, Journal

DEMO_TIMEOUT_SECONDS = 55
HEADER = re.compile(r"^=== (\d+)/(\d+) (\S+): (\S+)$", re.MULTILINE)


def demo_sections(stdout: str) -> dict[str, str]:
    """The demo's output cut into one section per sample file."""
    headers = list(HEADER.finditer(stdout))
    sections: dict[str, str] = {}
    for number, header in enumerate(headers):
        end = headers[number + 1].start() if number + 1 < len(headers) else len(stdout)
        sections[header.group(3)] = stdout[header.start() : end]
    return sections


def assert_chat_transcript(stdout: str) -> None:
    """The chat part of the demo: the conversation as a transcript, the receipt summary
    and the QR image read back by zbar equal to the register's QR string."""
    chat = stdout[stdout.index("=== chat: a technician composes a receipt") :]
    for line in (
        "  Техник: Замена смесителя 1500",
        "          Кран 2 х 350",
        "  Бот:    Черновик чека:",
        "  Техник: [Пробить]",
        "  Техник: [Картой или по QR]",
        "  Техник: 8 916 123-45-67",
        "  Бот:    Проверьте чек:",
        "  Бот:    [QR-код, картинка]",
        "          ✅ Чек пробит на кассе «demo-kassa».",
    ):
        assert f"\n{line}" in chat, line
    assert chat.index("Проверьте чек") < chat.index("[QR-код, картинка]")
    assert re.search(r"Проверить чек на сайте ФНС: https://kkt-online\.nalog\.ru/\?", chat)
    done = re.search(r"^<<< chat receipt (chat-b24-[0-9a-f]+): done$", chat, re.MULTILINE)
    assert done is not None, chat
    decoded = re.search(r"^    QR decoded: (t=\S+) — the register's QR string$", chat, re.MULTILINE)
    assert decoded is not None, chat
    assert "&s=2200.00&" in decoded.group(1)
    assert "the chat receipt's QR reached the chat — as expected" in stdout


@pytest.fixture
def demo_run(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The full-path demo run to the end with an instant printer; (process, demo dir)."""
    demo_dir = tmp_path / "demo"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    for variable in ("SNAP", "SNAP_DATA", "KASSA_DATA_DIR", "NOTIFY_SOCKET"):
        env.pop(variable, None)
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "kassa_appliance",
            "demo",
            "--print-delay",
            "0",
            "--job-timeout",
            "30",
            "--demo-dir",
            str(demo_dir),
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=DEMO_TIMEOUT_SECONDS,
        env=env,
        cwd=tmp_path,
    )
    return process, demo_dir


def test_the_demo_runs_the_samples_through_bitrix24_and_the_daemon(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    process, demo_dir = demo_run
    assert process.returncode == 0, process.stdout + process.stderr
    sections = demo_sections(process.stdout)
    assert sorted(sections) == [
        "01-sell-cash.json",
        "02-sell-card-electronic.json",
        "03-sell-return.json",
        "04-malformed.json",
    ]
    totals = {
        "01-sell-cash.json": "505.50",
        "02-sell-card-electronic.json": "3000.00",
        "03-sell-return.json": "145.50",
    }
    for name, total in totals.items():
        section = sections[name]
        assert re.search(r"^<<< demo-\d\d-[0-9a-f]{8}: done$", section, re.MULTILINE), section
        qr = re.search(r"^    QR: (t=\S+)$", section, re.MULTILINE)
        assert qr is not None, section
        assert f"&s={total}&" in qr.group(1)
        assert re.search(r"&fn=\d{16}&i=\d+&fp=\d+&n=[12]$", qr.group(1))
    assert "&n=2" in sections["03-sell-return.json"]  # a return of income is operation 2
    cash_tape = sections["01-sell-cash.json"]
    assert "│ ИТОГ                     =505.50" in cash_tape  # the paper tape came through
    malformed = sections["04-malformed.json"]
    assert re.search(r"^<<< demo-04-[0-9a-f]{8}: failed$", malformed, re.MULTILINE), malformed
    error = re.search(r"^    ERROR invalid-task: (.+)$", malformed, re.MULTILINE)
    assert error is not None, malformed
    assert "paymentObject" in malformed and "card" in malformed
    assert "nothing printed twice" in process.stdout
    assert_chat_transcript(process.stdout)
    assert "daemon exited with status 0" in process.stdout

    with Journal(demo_dir / "appliance" / "journal.sqlite3") as journal:
        bitrix_jobs = [job for job in journal.all_jobs() if job.source == "bitrix"]
    jobs = {job.id[:7]: job for job in bitrix_jobs if job.id.startswith("demo-")}
    assert sorted(jobs) == ["demo-01", "demo-02", "demo-03", "demo-04"]
    [chat_job] = [job for job in bitrix_jobs if not job.id.startswith("demo-")]
    assert chat_job.state is JobState.REPORTED and chat_job.qr
    for prefix in ("demo-01", "demo-02", "demo-03"):
        assert jobs[prefix].state is JobState.REPORTED
    assert jobs["demo-04"].state is JobState.FAILED
    assert jobs["demo-04"].reported_at is not None  # the failure was written back too
