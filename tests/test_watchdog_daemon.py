"""The real daemon (``python -m kassa_appliance run``) against a real AF_UNIX datagram
NOTIFY_SOCKET: READY after initialisation, WATCHDOG cadence, pings withheld while the event
loop is blocked but not while a driver call is slow, STOPPING on SIGTERM, snap health.

Timings are never asserted exactly: the checks are orderings and counts with wide margins
(``WATCHDOG_USEC=200000`` means a ping every 0.1 s).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.appliance.config import Config, RegisterConfig, save_config
from kassa_appliance.appliance.daemon import daemon_command, journal_path
from kassa_appliance.fiscal.journal import Journal

SRC = Path(__file__).resolve().parents[1] / "src"
SAMPLE_SELL = SRC / "kassa_appliance/samples/01-sell-cash.json"
WAIT = 15.0
"""Upper bound for anything to happen; generous for a loaded 2-core CI machine."""


class NotifyReceiver:
    """A fake service manager: an abstract-namespace datagram socket that records every
    message with its arrival time, read by a thread."""

    def __init__(self) -> None:
        self.address = f"@kassa-test-{uuid.uuid4().hex}"
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind("\0" + self.address[1:])
        self._socket.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed:
            try:
                data = self._socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))
                self._lock.notify_all()

    def wait_for(self, field: str, timeout: float = WAIT, start: int = 0) -> int:
        """Index of the first message from ``start`` on that has the ``field`` line."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for index in range(start, len(self.messages)):
                    if field in self.messages[index][1].split("\n"):
                        return index
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {field!r} within {timeout} s: {self.texts()}")
                self._lock.wait(remaining)

    def texts(self) -> list[str]:
        with self._lock:
            return [text for _, text in self.messages]

    def pings(self, start: int = 0, end: int | None = None) -> list[float]:
        with self._lock:
            return [at for at, text in self.messages[start:end] if text == "WATCHDOG=1"]

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2)
        self._socket.close()


@pytest.fixture
def notify_receiver() -> Iterator[NotifyReceiver]:
    receiver = NotifyReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def fake_snapctl(tmp_path: Path) -> Path:
    """A ``snapctl`` on PATH that records its arguments, one call per line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "snapctl"
    script.write_text(
        '#!/bin/sh\nprintf "%s|" "$@" >> "$(dirname "$0")/calls.txt"\necho >> '
        '"$(dirname "$0")/calls.txt"\n',
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


DaemonFactory = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def start_daemon(tmp_path: Path, notify_receiver: NotifyReceiver) -> Iterator[DaemonFactory]:
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []

    def start(
        config: Config | None = None,
        env: dict[str, str] | None = None,
        wrapper: list[str] | None = None,
    ) -> subprocess.Popen[bytes]:
        data_dir = tmp_path / "data"
        save_config(data_dir, config or Config(register=RegisterConfig(driver="simulator")))
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("NOTIFY_", "WATCHDOG_", "SNAP", "KASSA_", "UMOCKDEV"))
        }
        environment.update(
            NOTIFY_SOCKET=notify_receiver.address,
            WATCHDOG_USEC="200000",
            PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
            PYTHONWARNINGS="ignore",
        )
        environment.update(env or {})
        log = open(tmp_path / "daemon.log", "ab")  # noqa: SIM115 - closed at teardown
        logs.append(log)
        process = subprocess.Popen(
            [*(wrapper or []), *daemon_command(data_dir)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()
    for log in logs:
        log.close()


def _submit_sell(data_dir: Path, job_id: str) -> None:
    task = json.loads(SAMPLE_SELL.read_text(encoding="utf-8"))
    with Journal(journal_path(data_dir)) as journal:
        journal.submit(job_id, task, source="test")


def _job_state(data_dir: Path, job_id: str) -> str:
    with Journal(journal_path(data_dir)) as journal:
        job = journal.get(job_id)
    assert job is not None
    return str(job.state)


def _wait_state(data_dir: Path, job_id: str, states: set[str]) -> str:
    deadline = time.monotonic() + WAIT
    while (state := _job_state(data_dir, job_id)) not in states:
        assert time.monotonic() < deadline, f"job {job_id} stuck in {state}"
        time.sleep(0.02)
    return state


def test_ready_after_initialisation_then_pings_and_stopping(
    start_daemon: DaemonFactory, notify_receiver: NotifyReceiver, tmp_path: Path
) -> None:
    daemon = start_daemon()

    ready = notify_receiver.wait_for("READY=1")
    # Initialisation is done before READY: the journal exists and the status is complete.
    assert journal_path(tmp_path / "data").exists()
    assert notify_receiver.texts()[ready] == (
        "READY=1\nSTATUS=Bitrix24 not paired; register simulator offline; queue 0; no errors"
    )
    # Cadence: WATCHDOG_USEC=0.2 s → a ping every 0.1 s; several must come within ~1 s.
    notify_receiver.wait_for("WATCHDOG=1", start=ready + 1)
    time.sleep(1.0)
    assert len(notify_receiver.pings(ready)) >= 4

    daemon.send_signal(signal.SIGTERM)
    stopping = notify_receiver.wait_for("STOPPING=1", start=ready)
    assert daemon.wait(timeout=WAIT) == 0
    assert stopping > ready


def test_ready_without_a_register_plugged_in_reports_waiting(
    start_daemon: DaemonFactory,
    notify_receiver: NotifyReceiver,
    fake_snapctl: Path,
    tmp_path: Path,
) -> None:
    """fptr10 backend, empty USB bus (an empty umockdev test bed), inside a "snap"."""
    if shutil.which("umockdev-wrapper") is None:
        pytest.skip("umockdev is not installed (scripts/install-system-deps installs it)")
    testbed = tmp_path / "testbed"
    (testbed / "sys").mkdir(parents=True)
    start_daemon(
        Config(register=RegisterConfig(driver="fptr10")),
        env={
            "UMOCKDEV_DIR": str(testbed),
            "SNAP": str(tmp_path / "snap"),
            "PATH": f"{fake_snapctl.parent}{os.pathsep}{os.environ['PATH']}",
        },
        wrapper=["umockdev-wrapper"],
    )

    ready = notify_receiver.wait_for("READY=1")
    status = notify_receiver.texts()[ready].split("\n")[1]
    assert status.startswith("STATUS=Bitrix24 not paired; register fptr10 not connected; queue 0")
    notify_receiver.wait_for("WATCHDOG=1", start=ready)  # a missing register is no reason to die

    calls = fake_snapctl.parent / "calls.txt"
    deadline = time.monotonic() + WAIT
    while not calls.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert calls.read_text().splitlines() == [
        "set-health|--code=register-missing|waiting|Atol register not connected|"
    ]


def test_pings_stop_while_the_event_loop_is_blocked(
    start_daemon: DaemonFactory, notify_receiver: NotifyReceiver
) -> None:
    daemon = start_daemon(env={"KASSA_DEBUG_HOOKS": "1", "KASSA_DEBUG_BLOCK_LOOP_SECONDS": "2.5"})
    ready = notify_receiver.wait_for("READY=1")
    first = notify_receiver.wait_for("WATCHDOG=1", start=ready)
    notify_receiver.wait_for("WATCHDOG=1", start=first + 1)

    before = len(notify_receiver.texts())
    daemon.send_signal(signal.SIGUSR1)  # the debug hook sleeps 2.5 s on the loop thread
    time.sleep(3.5)
    after_block = notify_receiver.pings(before)
    assert after_block, "pings did not resume after the loop was unblocked"
    # A ping every 0.1 s normally: the longest gap must reflect the 2.5 s block.
    gaps = [later - earlier for earlier, later in pairwise(notify_receiver.pings(first))]
    assert max(gaps) > 1.0


def test_debug_hook_is_inert_without_the_env_switch(
    start_daemon: DaemonFactory, notify_receiver: NotifyReceiver
) -> None:
    daemon = start_daemon()
    notify_receiver.wait_for("READY=1")
    daemon.send_signal(signal.SIGUSR1)  # default action: terminate, no handler installed
    assert daemon.wait(timeout=WAIT) == -signal.SIGUSR1


def test_pings_continue_while_a_driver_call_is_slow(
    start_daemon: DaemonFactory, notify_receiver: NotifyReceiver, tmp_path: Path
) -> None:
    """The simulated register takes 2.5 s to print: its worker thread is busy, the loop not."""
    start_daemon(Config(register=RegisterConfig(driver="simulator", print_delay=Decimal("2.5"))))
    notify_receiver.wait_for("READY=1")
    data_dir = tmp_path / "data"

    _submit_sell(data_dir, "slow-1")
    _wait_state(data_dir, "slow-1", {"fiscalizing"})
    during = len(notify_receiver.texts())
    assert _wait_state(data_dir, "slow-1", {"fiscalized", "failed"}) == "fiscalized"

    assert len(notify_receiver.pings(during)) >= 5


def test_no_pings_when_watchdog_pid_is_another_process(
    start_daemon: DaemonFactory, notify_receiver: NotifyReceiver
) -> None:
    daemon = start_daemon(env={"WATCHDOG_PID": "1"})
    ready = notify_receiver.wait_for("READY=1")
    time.sleep(1.0)
    daemon.send_signal(signal.SIGTERM)
    stopping = notify_receiver.wait_for("STOPPING=1")
    assert notify_receiver.pings() == []
    assert stopping > ready


def test_without_a_register_driver_the_daemon_stays_up_blocked_instead_of_crash_looping(
    start_daemon: DaemonFactory,
    notify_receiver: NotifyReceiver,
    fake_snapctl: Path,
    tmp_path: Path,
) -> None:
    daemon = start_daemon(
        Config(register=RegisterConfig(driver=None)),
        env={
            "SNAP": str(tmp_path / "snap"),
            "PATH": f"{fake_snapctl.parent}{os.pathsep}{os.environ['PATH']}",
        },
    )

    ready = notify_receiver.wait_for("READY=1")
    assert "register.driver is not set" in notify_receiver.texts()[ready]
    notify_receiver.wait_for("WATCHDOG=1", start=ready)
    calls = fake_snapctl.parent / "calls.txt"
    deadline = time.monotonic() + WAIT
    while not calls.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert calls.read_text().splitlines() == [
        "set-health|--code=register-unconfigured|blocked|register.driver is not set|"
    ]
    assert daemon.poll() is None
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=WAIT) == 0
    stopping = notify_receiver.wait_for("STOPPING=1", start=ready)
    assert stopping > ready


def test_a_missing_driver_library_reports_health_blocked_and_keeps_the_daemon_up(
    start_daemon: DaemonFactory,
    notify_receiver: NotifyReceiver,
    fake_snapctl: Path,
    tmp_path: Path,
) -> None:
    missing = tmp_path / "dto10" / "libfptr10.so"
    daemon = start_daemon(
        Config(
            register=RegisterConfig(driver="fptr10", lib_path=str(missing), usb_path="/dev/ttyACM0")
        ),
        env={
            "SNAP": str(tmp_path / "snap"),
            "PATH": f"{fake_snapctl.parent}{os.pathsep}{os.environ['PATH']}",
        },
    )

    ready = notify_receiver.wait_for("READY=1")
    notify_receiver.wait_for("WATCHDOG=1", start=ready)
    calls = fake_snapctl.parent / "calls.txt"
    deadline = time.monotonic() + WAIT
    while "blocked" not in (calls.read_text() if calls.exists() else ""):
        assert time.monotonic() < deadline, "health never became blocked"
        time.sleep(0.05)
    blocked = [line for line in calls.read_text().splitlines() if "|blocked|" in line]
    assert blocked[-1] == (
        "set-health|--code=needs-attention|blocked|"
        "register driver unusable; see kassa-appliance status|"
    )
    assert daemon.poll() is None
    status = json.loads((tmp_path / "data" / "status.json").read_text(encoding="utf-8"))
    assert str(missing) in status["last_error"]
