"""The engine lock between the daemon and CLI commands, with real processes.

A daemon that finds the lock held (a `kassa-appliance print` running the register itself
because no daemon was up) waits for it instead of exiting: READY for systemd, watchdog
pings going on, the reason in STATUS, and SIGTERM still exits 0 at once. The CLI holds the
lock for its own job only, so the daemon starts as soon as that job is done.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from kassa_appliance.appliance.config import Config, RegisterConfig, save_config
from kassa_appliance.appliance.daemon import (
    LOCK_FILE_NAME,
    daemon_command,
    describe_lock_holder,
    engine_lock,
    journal_path,
)
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.registers.factory import simulator_state_dir
from kassa_appliance.registers.simulator_state import load_state
from test_watchdog_daemon import SAMPLE_SELL, SRC, NotifyReceiver, notify_receiver

__all__ = ["notify_receiver"]  # fixture

WAIT = 30.0
"""Upper bound for anything to happen; generous for a loaded 2-core machine."""


def environment(notify: NotifyReceiver | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("NOTIFY_", "WATCHDOG_", "SNAP", "KASSA_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    env["PYTHONWARNINGS"] = "ignore"
    if notify is not None:
        env.update(NOTIFY_SOCKET=notify.address, WATCHDOG_USEC="200000")
    return env


class Processes:
    """Starts `kassa-appliance` processes on one data dir; kills leftovers at the end."""

    def __init__(self, data_dir: Path, logs: Path) -> None:
        self.data_dir = data_dir
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kassa_appliance", "--data-dir", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            env=environment(),
            timeout=WAIT,
        )

    def start(
        self, args: list[str], notify: NotifyReceiver | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"process-{len(self.started)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            args, env=environment(notify), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()  # the child has its own copy
        self.started.append(process)
        return process

    def start_print(self, job_id: str, timeout: float) -> subprocess.Popen[bytes]:
        return self.start(
            [
                *daemon_command(self.data_dir)[:-1],
                "print",
                str(SAMPLE_SELL),
                "--id",
                job_id,
                "--timeout",
                str(timeout),
            ]
        )

    def start_daemon(self, notify: NotifyReceiver) -> subprocess.Popen[bytes]:
        return self.start(daemon_command(self.data_dir), notify)

    def output(self, process: subprocess.Popen[bytes]) -> str:
        index = self.started.index(process)
        return (self.logs / f"process-{index}.log").read_text(errors="replace")


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    data_dir = tmp_path / "data"
    save_config(data_dir, Config(register=RegisterConfig(driver="simulator")))
    runner = Processes(data_dir, tmp_path)
    yield runner
    for process in runner.started:
        if process.poll() is None:
            process.kill()
        process.wait()


def job_state(data_dir: Path, job_id: str) -> str | None:
    with Journal(journal_path(data_dir)) as journal:
        job = journal.get(job_id)
    return None if job is None else str(job.state)


def wait_until(condition: object, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def lock_holder_pid(data_dir: Path) -> int | None:
    try:
        words = (data_dir / LOCK_FILE_NAME).read_text().split()
    except OSError:
        return None
    return int(words[0]) if words and words[0].isdigit() else None


def sells(data_dir: Path) -> int:
    state = load_state(simulator_state_dir(data_dir))
    return 0 if state is None else state.document_counts.get("sell", 0)


def status_lines(notify: NotifyReceiver) -> list[str]:
    return [
        line.removeprefix("STATUS=")
        for text in notify.texts()
        for line in text.split("\n")
        if line.startswith("STATUS=")
    ]


def test_daemon_waits_for_a_cli_holding_the_lock_then_prints_its_job(
    processes: Processes, notify_receiver: NotifyReceiver
) -> None:
    data_dir = processes.data_dir
    assert processes.cli("simulator", "fault", "no_paper").returncode == 0
    cli = processes.start_print("CLI-1", timeout=6)
    wait_until(lambda: lock_holder_pid(data_dir) == cli.pid, "the CLI holds the engine lock")
    wait_until(lambda: job_state(data_dir, "CLI-1") == "fiscalizing", "the CLI works its job")

    daemon = processes.start_daemon(notify_receiver)
    ready = notify_receiver.wait_for("READY=1", timeout=WAIT)
    waiting = f"waiting for the engine lock held by pid {cli.pid} (a kassa-appliance CLI command)"
    assert notify_receiver.texts()[ready].startswith(f"READY=1\nSTATUS={waiting}")
    notify_receiver.wait_for("WATCHDOG=1", start=ready + 1)
    time.sleep(1.0)
    assert cli.poll() is None, "the CLI was still running while the daemon waited"
    assert len(notify_receiver.pings(ready)) >= 4  # the watchdog is fed while waiting
    assert daemon.poll() is None, processes.output(daemon)

    assert cli.wait(timeout=WAIT) == 4, processes.output(cli)  # pending: no paper
    wait_until(lambda: lock_holder_pid(data_dir) == daemon.pid, "the daemon takes the lock")
    assert processes.cli("simulator", "fault", "no_paper", "--off").returncode == 0
    wait_until(lambda: job_state(data_dir, "CLI-1") == "fiscalized", "the daemon prints the job")
    assert sells(data_dir) == 1
    assert any(
        line.startswith("Bitrix24 not paired; register simulator")
        for line in status_lines(notify_receiver)
    )

    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=WAIT) == 0
    log = processes.output(daemon)
    assert log.count("not starting the engine yet") == 1  # the reason is logged once
    assert "Traceback" not in log


def test_sigterm_while_waiting_for_the_lock_exits_0_promptly(
    processes: Processes, notify_receiver: NotifyReceiver
) -> None:
    data_dir = processes.data_dir
    with engine_lock(data_dir):  # this test process plays the CLI command
        daemon = processes.start_daemon(notify_receiver)
        ready = notify_receiver.wait_for("READY=1", timeout=WAIT)
        assert (
            f"held by pid {os.getpid()} (a kassa-appliance CLI command)"
            in (notify_receiver.texts()[ready])
        )
        sent = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=WAIT) == 0, processes.output(daemon)
        assert time.monotonic() - sent < 5.0
    notify_receiver.wait_for("STOPPING=1", start=ready)
    assert not journal_path(data_dir).exists() or job_state(data_dir, "x") is None


def test_the_cli_does_not_work_jobs_queued_after_its_own(processes: Processes) -> None:
    data_dir = processes.data_dir
    slow = Config(register=RegisterConfig(driver="simulator", print_delay=Decimal("1.5")))
    save_config(data_dir, slow)
    cli = processes.start_print("CLI-1", timeout=WAIT)
    wait_until(lambda: job_state(data_dir, "CLI-1") == "fiscalizing", "the CLI works its job")
    task = json.loads(SAMPLE_SELL.read_text(encoding="utf-8"))
    with Journal(journal_path(data_dir)) as journal:
        journal.submit("LATER", task, source="test")

    assert cli.wait(timeout=WAIT) == 0, processes.output(cli)
    assert job_state(data_dir, "CLI-1") == "fiscalized"
    assert job_state(data_dir, "LATER") == "received"  # left for the daemon
    assert sells(data_dir) == 1
    with engine_lock(data_dir):  # and the lock is free again
        pass


def test_the_lock_file_names_its_holder(tmp_path: Path) -> None:
    assert describe_lock_holder(tmp_path) == "another process"
    with engine_lock(tmp_path):
        assert (
            describe_lock_holder(tmp_path) == f"pid {os.getpid()} (a kassa-appliance CLI command)"
        )
    (tmp_path / LOCK_FILE_NAME).write_text("4242\n")  # written by an older version
    assert describe_lock_holder(tmp_path) == "pid 4242 (a kassa-appliance process)"
