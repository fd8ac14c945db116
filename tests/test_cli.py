"""The command line as a script sees it: real processes, exit codes, output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest

from kassa_appliance.appliance.config import Config, RegisterConfig, save_config
from kassa_appliance.appliance.daemon import read_status_file
from kassa_appliance.registers.factory import simulator_state_dir
from kassa_appliance.registers.simulator_state import load_state

SAMPLES = resources.files("kassa_appliance") / "samples"
TIMEOUT = 60


def sample(name: str) -> str:
    return str(SAMPLES / name)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    save_config(folder, Config(register=RegisterConfig(driver="simulator")))
    return folder


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP", "KASSA_"))}
    return subprocess.run(
        [sys.executable, "-m", "kassa_appliance", "--data-dir", str(data_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
    )


def sells(data_dir: Path) -> int:
    state = load_state(simulator_state_dir(data_dir))
    return 0 if state is None else state.document_counts.get("sell", 0)


def test_print_fiscalises_a_task_and_shows_the_result_and_qr(data_dir: Path) -> None:
    done = cli(data_dir, "print", sample("01-sell-cash.json"), "--id", "order-1")

    assert done.returncode == 0, done.stderr
    assert "job order-1: fiscalized" in done.stdout
    assert "сумма 505.50" in done.stdout
    assert "QR: t=" in done.stdout and "&s=505.50&" in done.stdout
    assert sells(data_dir) == 1


def test_printing_a_known_id_again_prints_nothing_and_shows_the_stored_outcome(
    data_dir: Path,
) -> None:
    first = cli(data_dir, "print", sample("01-sell-cash.json"), "--id", "order-1", "--json")
    again = cli(data_dir, "print", sample("02-sell-card-electronic.json"), "--id", "order-1")

    assert first.returncode == 0 and again.returncode == 0
    assert "was already submitted" in again.stdout
    assert json.loads(first.stdout)["qr"] in again.stdout
    assert sells(data_dir) == 1


def test_a_task_from_stdin_is_accepted(data_dir: Path) -> None:
    task = (SAMPLES / "03-sell-return.json").read_text(encoding="utf-8")
    cli(data_dir, "print", sample("01-sell-cash.json"))  # cash in the drawer to return
    done = cli(data_dir, "print", "-", "--json", stdin=task)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["type"] == "sellReturn"


def test_an_invalid_task_fails_with_exit_3_and_its_reasons(data_dir: Path) -> None:
    failed = cli(data_dir, "print", sample("04-malformed.json"))

    assert failed.returncode == 3
    assert "error invalid-task" in failed.stdout
    assert "paymentObject" in failed.stdout and "card" in failed.stdout
    assert sells(data_dir) == 0


def test_input_that_is_not_json_is_refused_with_exit_2(data_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "sell",', encoding="utf-8")

    refused = cli(data_dir, "print", str(broken))
    missing = cli(data_dir, "print", str(tmp_path / "absent.json"))

    assert refused.returncode == 2
    assert "not valid JSON (line 1, column" in refused.stderr
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_shift_report_jobs_and_status(data_dir: Path) -> None:
    cli(data_dir, "print", sample("01-sell-cash.json"), "--id", "a")
    report = cli(data_dir, "report", "x")
    closed = cli(data_dir, "shift", "close", "--json")
    jobs = cli(data_dir, "jobs", "--json")
    status = cli(data_dir, "status", "--json")

    assert report.returncode == 0 and closed.returncode == 0
    assert json.loads(closed.stdout)["result"]["fiscalParams"]["receiptsCount"] == 1
    listed = json.loads(jobs.stdout)
    assert [job["type"] for job in listed] == ["closeShift", "reportX", "sell"]
    assert {job["state"] for job in listed} == {"fiscalized"}
    current = json.loads(status.stdout)
    assert current["daemon"] == "not running" and current["register_driver"] == "simulator"
    assert current["queue_depth"] == 0


def test_without_a_register_driver_print_exits_5(tmp_path: Path) -> None:
    folder = tmp_path / "unconfigured"
    save_config(folder, Config(register=RegisterConfig(driver=None)))

    refused = cli(folder, "print", sample("01-sell-cash.json"))

    assert refused.returncode == 5
    assert "register.driver is not set" in refused.stderr


def test_with_the_daemon_running_print_hands_the_job_to_it(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP", "KASSA_", "NOTIFY"))}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "kassa_appliance", "--data-dir", str(data_dir), "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while (read_status_file(data_dir) or {}).get("pid") != daemon.pid:
            assert daemon.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)

        done = cli(data_dir, "print", sample("01-sell-cash.json"), "--json")
        status = cli(data_dir, "status", "--json")
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=TIMEOUT) == 0

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "fiscalized"
    assert json.loads(status.stdout)["daemon"] == "running"
    assert sells(data_dir) == 1


def test_help_lists_the_commands_and_exit_codes(data_dir: Path) -> None:
    shown = cli(data_dir, "--help")
    assert shown.returncode == 0
    for command in ("run", "print", "status", "jobs", "shift", "report", "demo", "simulator"):
        assert command in shown.stdout
    assert "3 job failed" in shown.stdout
