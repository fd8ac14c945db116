"""sd_notify, watchdog pacing, health and status line, with a real AF_UNIX datagram socket
and a stand-in ``snapctl`` executable (a real subprocess that records its arguments)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kassa_appliance.appliance.watchdog import (
    REGISTER_MISSING,
    Health,
    HealthReporter,
    HealthState,
    Notifier,
    ServiceReporter,
    ServiceSnapshot,
    Supervisor,
    Watchdog,
    format_status_line,
    health_for,
    install_debug_hooks,
    watchdog_interval,
)


def _bind(address: str) -> socket.socket:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + address[1:] if address.startswith("@") else address)
    receiver.settimeout(5)
    return receiver


@pytest.fixture
def notify_path_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    receiver = _bind(path)
    yield path, receiver
    receiver.close()


@pytest.fixture
def notify_abstract_socket() -> Iterator[tuple[str, socket.socket]]:
    address = f"@kassa-test-{uuid.uuid4().hex}"
    receiver = _bind(address)
    yield address, receiver
    receiver.close()


@pytest.fixture
def fake_snapctl(tmp_path: Path) -> Path:
    """An executable that appends its arguments (one call per line) to ``calls.txt`` and
    fails when ``fail`` exists next to it."""
    script = tmp_path / "snapctl"
    script.write_text(
        "#!/bin/sh\n"
        'dir=$(dirname "$0")\n'
        'printf "%s|" "$@" >> "$dir/calls.txt"\n'
        'echo >> "$dir/calls.txt"\n'
        '[ -e "$dir/fail" ] && { echo "error: cannot set health: denied" >&2; exit 1; }\n'
        "exit 0\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _snapctl_calls(snapctl: Path) -> list[list[str]]:
    calls = snapctl.parent / "calls.txt"
    if not calls.exists():
        return []
    return [line.rstrip("|").split("|") for line in calls.read_text().splitlines()]


# -- Notifier ---------------------------------------------------------------------------------


def test_notifier_sends_one_datagram_to_a_path_socket(
    notify_path_socket: tuple[str, socket.socket],
) -> None:
    path, receiver = notify_path_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path})

    assert notifier.send("READY=1", "STATUS=register simulator online")

    assert receiver.recv(4096) == b"READY=1\nSTATUS=register simulator online"
    notifier.close()


def test_notifier_supports_abstract_namespace(
    notify_abstract_socket: tuple[str, socket.socket],
) -> None:
    address, receiver = notify_abstract_socket
    notifier = Notifier(address)

    assert notifier.send("WATCHDOG=1")

    assert receiver.recv(4096) == b"WATCHDOG=1"
    notifier.close()


def test_notifier_without_socket_is_a_no_op() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.send("READY=1") is False
    assert notifier.failures == 0


def test_notifier_failure_is_logged_not_swallowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = str(tmp_path / "gone.sock")
    notifier = Notifier(missing)

    with caplog.at_level(logging.ERROR, logger="kassa_appliance.appliance.watchdog"):
        assert notifier.send("READY=1") is False
        assert notifier.send("WATCHDOG=1") is False

    assert notifier.failures == 2
    errors = [record.getMessage() for record in caplog.records]
    assert len(errors) == 1  # the identical repeat is counted, not logged again at once
    assert missing in errors[0] and "READY=1" in errors[0]
    assert "FileNotFoundError" in errors[0]


def test_notifier_rejects_relative_socket_path_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="kassa_appliance.appliance.watchdog"):
        notifier = Notifier("relative/notify.sock")
    assert not notifier.enabled
    assert "relative/notify.sock" in caplog.text


# -- watchdog interval ------------------------------------------------------------------------


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "42"}, pid=42) == 0.1


def test_watchdog_interval_respects_watchdog_pid() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "41"}, pid=42) == 0.0


@pytest.mark.parametrize("value", ["", "0", "-5", "ten"])
def test_watchdog_interval_off_for_missing_or_bad_values(value: str) -> None:
    assert watchdog_interval({"WATCHDOG_USEC": value}) == 0.0


# -- Supervisor and Watchdog ------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_supervisor_flags_a_silent_component_until_it_beats_again() -> None:
    clock = FakeClock()
    supervisor = Supervisor(clock)
    supervisor.register("bitrix-pull", max_silence=30)

    clock.now += 29
    assert supervisor.alive()
    clock.now += 2
    assert not supervisor.alive()
    assert supervisor.dead() == ["bitrix-pull silent for 31.0 s (limit 30 s)"]

    supervisor.beat("bitrix-pull")
    assert supervisor.alive()


def test_supervisor_beat_of_unknown_component_is_an_error() -> None:
    with pytest.raises(KeyError, match="reporter"):
        Supervisor().beat("reporter")


def test_supervisor_watched_task_that_ended_is_dead() -> None:
    async def scenario() -> tuple[bool, bool, list[str]]:
        supervisor = Supervisor()
        release = asyncio.Event()
        task = asyncio.create_task(release.wait())
        supervisor.watch_task("engine", task)
        alive_before = supervisor.alive()
        release.set()
        await task
        return alive_before, supervisor.alive(), supervisor.dead()

    alive_before, alive_after, dead = asyncio.run(scenario())
    assert alive_before is True
    assert alive_after is False
    assert dead == ["engine stopped"]


def test_watchdog_pings_only_while_alive(notify_path_socket: tuple[str, socket.socket]) -> None:
    path, receiver = notify_path_socket
    receiver.setblocking(False)
    alive = [True]

    async def scenario() -> tuple[int, int]:
        watchdog = Watchdog(Notifier(path), 0.01, lambda: alive[0])
        task = asyncio.create_task(watchdog.run())
        while watchdog.pings < 3:
            await asyncio.sleep(0.01)
        alive[0] = False
        pings_when_dead = watchdog.pings
        await asyncio.sleep(0.2)
        pings_after = watchdog.pings
        task.cancel()
        return pings_when_dead, pings_after

    pings_when_dead, pings_after = asyncio.run(scenario())
    received = []
    while True:
        try:
            received.append(receiver.recv(64))
        except BlockingIOError:
            break
    assert pings_after == pings_when_dead
    assert received == [b"WATCHDOG=1"] * pings_after


def test_watchdog_without_interval_does_nothing(
    notify_path_socket: tuple[str, socket.socket],
) -> None:
    path, _ = notify_path_socket
    watchdog = Watchdog(Notifier(path), 0.0, lambda: True)
    assert not watchdog.enabled
    asyncio.run(asyncio.wait_for(watchdog.run(), 1))  # returns at once
    assert watchdog.pings == 0


# -- health and status ------------------------------------------------------------------------


def test_health_command_line_for_snapctl() -> None:
    assert REGISTER_MISSING.snapctl_args() == [
        "set-health",
        "--code=register-missing",
        "waiting",
        "Atol register not connected",
    ]
    assert Health(HealthState.OKAY).snapctl_args() == ["set-health", "okay"]
    long = Health(HealthState.BLOCKED, "needs-attention", "x" * 100).snapctl_args()[-1]
    assert len(long) == 70


@pytest.mark.parametrize("code", ["ab", "Register-missing", "register_missing", "-abc", "a" * 31])
def test_health_rejects_codes_snapd_would_refuse(code: str) -> None:
    with pytest.raises(ValueError, match="health code"):
        Health(HealthState.WAITING, code, "Atol register not connected")


def test_health_rejects_short_message_and_okay_with_code() -> None:
    with pytest.raises(ValueError, match="at least 7"):
        Health(HealthState.ERROR, "driver-crash", "bad")
    with pytest.raises(ValueError, match="okay"):
        Health(HealthState.OKAY, "all-good")


def _snapshot(**changes: object) -> ServiceSnapshot:
    values: dict[str, object] = {
        "register": "fptr10",
        "register_online": True,
        "queue_depth": 0,
        "paired": True,
        "device_present": True,
    }
    values.update(changes)
    return ServiceSnapshot(**values)  # type: ignore[arg-type]


def test_health_follows_device_alerts_and_waiting() -> None:
    assert health_for(_snapshot()) == Health(HealthState.OKAY)
    assert health_for(_snapshot(device_present=False, register_online=False)) == REGISTER_MISSING
    waiting = health_for(_snapshot(waiting="no paper: load a paper roll"))
    assert (waiting.state, waiting.code) == (HealthState.WAITING, "queue-waiting")
    blocked = health_for(_snapshot(alerts=("fiscal storage fault 118: FN error",)))
    assert (blocked.state, blocked.code) == (HealthState.BLOCKED, "needs-attention")


def test_status_line_is_one_human_line() -> None:
    line = format_status_line(
        _snapshot(
            paired=False,
            register_online=False,
            device_present=False,
            queue_depth=3,
            last_error="atol-2: no\nconnection",
        )
    )
    assert line == (
        "Bitrix24 not paired; register fptr10 not connected; queue 3; "
        "last error: atol-2: no connection"
    )
    assert format_status_line(_snapshot()) == (
        "Bitrix24 paired; register fptr10 online; queue 0; no errors"
    )


def test_health_reporter_calls_snapctl_only_on_change(fake_snapctl: Path) -> None:
    reporter = HealthReporter.from_env({"SNAP": "/snap/kassa-appliance/x1", "PATH": ""})
    assert reporter.snapctl == "/usr/bin/snapctl"  # the fallback when not on PATH
    reporter = HealthReporter(str(fake_snapctl))

    async def scenario() -> None:
        await reporter.report(REGISTER_MISSING)
        await reporter.report(REGISTER_MISSING)
        await reporter.report(Health(HealthState.OKAY))

    asyncio.run(scenario())
    assert _snapctl_calls(fake_snapctl) == [
        ["set-health", "--code=register-missing", "waiting", "Atol register not connected"],
        ["set-health", "okay"],
    ]


def test_health_reporter_logs_snapctl_failure_and_retries(
    fake_snapctl: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (fake_snapctl.parent / "fail").touch()
    reporter = HealthReporter(str(fake_snapctl))

    with caplog.at_level(logging.ERROR, logger="kassa_appliance.appliance.watchdog"):
        asyncio.run(reporter.report(REGISTER_MISSING))
    assert "cannot set health: denied" in caplog.text

    (fake_snapctl.parent / "fail").unlink()
    asyncio.run(reporter.report(REGISTER_MISSING))
    assert len(_snapctl_calls(fake_snapctl)) == 2  # the failed call is retried


def test_health_reporter_outside_a_snap_runs_nothing() -> None:
    reporter = HealthReporter.from_env({"PATH": os.environ.get("PATH", "")})
    asyncio.run(reporter.report(REGISTER_MISSING))
    assert reporter.current == REGISTER_MISSING


def test_service_reporter_sends_status_only_on_change(
    notify_path_socket: tuple[str, socket.socket], fake_snapctl: Path
) -> None:
    path, receiver = notify_path_socket
    reporter = ServiceReporter(Notifier(path), HealthReporter(str(fake_snapctl)))

    async def scenario() -> None:
        task = asyncio.create_task(reporter.run())
        reporter.ready(_snapshot(device_present=False, register_online=False))
        await asyncio.sleep(0.3)
        reporter.publish(_snapshot(device_present=False, register_online=False))
        await asyncio.sleep(0.3)
        reporter.publish(_snapshot(queue_depth=2))
        await asyncio.sleep(0.3)
        reporter.stopping()
        task.cancel()

    asyncio.run(scenario())
    messages = [receiver.recv(4096).decode() for _ in range(3)]
    assert messages == [
        "READY=1\nSTATUS=Bitrix24 paired; register fptr10 not connected; queue 0; no errors",
        "STATUS=Bitrix24 paired; register fptr10 online; queue 2; no errors",
        "STOPPING=1\nSTATUS=stopping: finishing the job in flight",
    ]
    assert _snapctl_calls(fake_snapctl) == [
        ["set-health", "--code=register-missing", "waiting", "Atol register not connected"],
        ["set-health", "okay"],
    ]


def test_debug_hooks_are_inert_unless_enabled() -> None:
    async def scenario() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        disabled = install_debug_hooks(loop, {})
        enabled = install_debug_hooks(loop, {"KASSA_DEBUG_HOOKS": "1"})
        loop.remove_signal_handler(signal.SIGUSR1)
        return disabled, enabled

    assert asyncio.run(scenario()) == (False, True)
