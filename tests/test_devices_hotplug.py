"""Hotplug of an Atol register (USB vendor 2912) simulated with umockdev.

pyudev talks to libudev, which umockdev's preload library redirects to a test bed; the
preload only works in a process started under ``umockdev-wrapper``. So each test runs this
very file as a child process under the wrapper (``python test_devices_hotplug.py child``).
The child builds the test bed through libumockdev's C API (ctypes: python3-gi is not in the
venv), runs a :class:`DeviceWatcher` on asyncio, obeys JSON commands on stdin (plug, unplug,
bursts of both) and prints every ``on_change`` report as a JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

REPORT_TIMEOUT = 10.0
"""Generous bound for one report to arrive (the debounce in the child is 0.3 s)."""


# ---------------------------------------------------------------------------------------------
# Child side: the umockdev test bed and the watcher under test.


class UmockdevTestbed:
    """The few libumockdev calls the tests need (``UMockdevTestbed`` without GObject
    introspection). Creating it points ``$UMOCKDEV_DIR`` of this process at a fresh test bed
    in ``$TMPDIR``."""

    def __init__(self) -> None:
        lib = ctypes.CDLL("libumockdev.so.0")
        lib.umockdev_testbed_new.restype = ctypes.c_void_p
        lib.umockdev_testbed_new.argtypes = []
        lib.umockdev_testbed_add_devicev.restype = ctypes.c_char_p
        lib.umockdev_testbed_add_devicev.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(ctypes.c_char_p),
        ]
        lib.umockdev_testbed_uevent.restype = None
        lib.umockdev_testbed_uevent.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.umockdev_testbed_remove_device.restype = None
        lib.umockdev_testbed_remove_device.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self._lib = lib
        self._testbed = lib.umockdev_testbed_new()
        if not self._testbed:
            raise RuntimeError("umockdev_testbed_new() failed")
        self._paths: dict[str, bytes] = {}

    @staticmethod
    def _strv(*items: str) -> Any:
        array = (ctypes.c_char_p * (len(items) + 1))()
        for index, item in enumerate(items):
            array[index] = item.encode()
        array[len(items)] = None
        return array

    def plug(self, name: str, vendor: str, product: str, serial: str, busnum: int) -> None:
        """Add a ``usb_device``; umockdev itself emits the ``add`` uevent (snap-notes §5)."""
        devnum = len(self._paths) + 2
        node = f"/dev/bus/usb/{busnum:03d}/{devnum:03d}"
        attributes = self._strv(
            "idVendor", vendor, "idProduct", product, "serial", serial, "busnum", str(busnum)
        )
        properties = self._strv(
            "DEVTYPE", "usb_device", "ID_VENDOR_ID", vendor, "ID_MODEL_ID", product,
            "ID_SERIAL_SHORT", serial, "DEVNAME", node,
            "PRODUCT", f"{int(vendor, 16):x}/{int(product, 16):x}/100",
        )  # fmt: skip
        path = self._lib.umockdev_testbed_add_devicev(
            self._testbed, b"usb", name.encode(), None, attributes, properties
        )
        if not path:
            raise RuntimeError(f"umockdev could not add device {name}")
        self._paths[name] = path

    def unplug(self, name: str) -> None:
        """Emit ``remove`` first: ``remove_device()`` alone sends no uevent (snap-notes §5)."""
        path = self._paths.pop(name)
        self._lib.umockdev_testbed_uevent(self._testbed, path, b"remove")
        self._lib.umockdev_testbed_remove_device(self._testbed, path)


def _device_json(device: Any) -> dict[str, Any] | None:
    return None if device is None else asdict(device)


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _serve_commands(testbed: UmockdevTestbed, current: Any) -> None:
    """Obey JSON command lists on stdin until it closes; ``current()`` is the watcher's."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    running: set[asyncio.Task[None]] = set()

    async def run_commands(commands: list[dict[str, Any]]) -> None:
        for command in commands:
            operation = command.pop("op")
            if operation == "plug":
                testbed.plug(**command)
            elif operation == "unplug":
                testbed.unplug(command["name"])
            elif operation == "pause":
                await asyncio.sleep(command["seconds"])
            elif operation == "current":
                _emit({"current": _device_json(current())})
        _emit({"done": True})

    def on_command() -> None:
        line = sys.stdin.readline()
        if not line:
            done.set()
            return
        task = loop.create_task(run_commands(json.loads(line)))
        running.add(task)
        task.add_done_callback(running.discard)

    loop.add_reader(sys.stdin.fileno(), on_command)
    await done.wait()
    loop.remove_reader(sys.stdin.fileno())


async def _child_watcher(arguments: argparse.Namespace, testbed: UmockdevTestbed) -> None:
    from kassa_appliance.appliance.devices import AtolDevice, DeviceWatcher

    async def on_change(device: AtolDevice | None) -> None:
        _emit({"report": _device_json(device)})

    if arguments.deny_netlink:
        # What a snap without the hardware-observe plug gets when it opens the uevent socket.
        import pyudev

        def denied(*_args: Any, **_kwargs: Any) -> Any:
            raise PermissionError(13, "Permission denied")

        pyudev.Monitor.from_netlink = denied

    watcher = DeviceWatcher(on_change, debounce=arguments.debounce, poll_interval=0.2)
    await watcher.start()
    _emit({"started": True, "monitoring": watcher.monitoring})
    await _serve_commands(testbed, lambda: watcher.current)
    watcher.stop()


async def _child_engine(arguments: argparse.Namespace, testbed: UmockdevTestbed) -> None:
    """The daemon's own wiring (running_engine + device_runtime) on the simulator."""
    from kassa_appliance.appliance.config import Config, RegisterConfig
    from kassa_appliance.appliance.daemon import running_engine
    from kassa_appliance.appliance.runtime import device_runtime
    from kassa_appliance.appliance.watchdog import ServiceIntegration
    from kassa_appliance.fiscal.engine import EngineStatus

    config = Config(register=RegisterConfig(driver="simulator", print_delay=arguments.print_delay))
    service = ServiceIntegration.from_env()

    def on_status(status: EngineStatus) -> None:
        _emit({"status": asdict(status)})

    async with (
        service.running(),
        running_engine(config, arguments.engine_dir, supervisor=service.supervisor) as engine,
    ):
        engine.add_listener(on_status)
        async with device_runtime(engine, config, service, watch_usb=True) as watcher:
            assert watcher is not None
            _emit({"started": True, "monitoring": watcher.monitoring})
            await _serve_commands(testbed, lambda: watcher.current)


async def _child_main(arguments: argparse.Namespace) -> None:
    testbed = UmockdevTestbed()
    for spec in arguments.initial:
        testbed.plug(**spec)
    if arguments.engine_dir is None:
        await _child_watcher(arguments, testbed)
    else:
        await _child_engine(arguments, testbed)


def _run_child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--initial", type=json.loads, default=[])
    parser.add_argument("--debounce", type=float, default=0.3)
    parser.add_argument("--engine-dir", type=Path, default=None)
    parser.add_argument("--print-delay", type=Decimal, default=Decimal("0"))
    parser.add_argument("--deny-netlink", action="store_true")
    asyncio.run(_child_main(parser.parse_args(argv)))
    return 0


# ---------------------------------------------------------------------------------------------
# Test side.


def _umockdev_available() -> bool:
    if shutil.which("umockdev-wrapper") is None:
        return False
    try:
        ctypes.CDLL("libumockdev.so.0")
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _umockdev_available(),
    reason="umockdev is not installed (scripts/install-system-deps installs it)",
)


def atol(name: str, serial: str = "00106700000001", product: str = "0005") -> dict[str, Any]:
    return {"name": name, "vendor": "2912", "product": product, "serial": serial, "busnum": 1}


class HotplugChild:
    """The child process: send it commands, read its reports."""

    def __init__(
        self, tmp_path: Path, initial: list[dict[str, Any]], extra_args: list[str]
    ) -> None:
        env = dict(os.environ)
        env["TMPDIR"] = str(tmp_path)  # the umockdev test bed lives there
        env["PYTHONUNBUFFERED"] = "1"
        src = Path(__file__).resolve().parents[1] / "src"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            ["umockdev-wrapper", sys.executable, __file__, "child", "--initial",
             json.dumps(initial), *extra_args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.reports: list[dict[str, Any] | None] = []
        self.statuses: list[dict[str, Any]] = []

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(json.loads(line))
        self._lines.put(None)

    def next_message(self, timeout: float = REPORT_TIMEOUT) -> dict[str, Any]:
        message = self._lines.get(timeout=timeout)
        if message is None:
            raise AssertionError(f"child exited with {self.process.wait()}")
        if "report" in message:
            self.reports.append(message["report"])
        if "status" in message:
            self.statuses.append(message["status"])
        return message

    def wait_for(self, key: str, timeout: float = REPORT_TIMEOUT) -> dict[str, Any]:
        while True:
            message = self.next_message(timeout)
            if key in message:
                return message

    def send(self, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        """Run commands in the child; the messages it printed while running them."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(list(commands)) + "\n")
        self.process.stdin.flush()
        messages = []
        while "done" not in (message := self.next_message()):
            messages.append(message)
        return messages

    def quiet_for(self, seconds: float) -> list[dict[str, Any]]:
        """Every message that arrives within ``seconds``."""
        messages = []
        try:
            while True:
                messages.append(self.next_message(timeout=seconds))
        except queue.Empty:
            return messages

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def hotplug_child_factory(tmp_path: Path) -> Iterator[Any]:
    children: list[HotplugChild] = []

    def start(
        initial: list[dict[str, Any]] | None = None, extra_args: list[str] | None = None
    ) -> HotplugChild:
        child = HotplugChild(tmp_path, initial or [], extra_args or [])
        children.append(child)
        return child

    yield start
    for child in children:
        child.close()


def test_enumerates_register_present_at_start(hotplug_child_factory: Any) -> None:
    child = hotplug_child_factory([atol("1-1.3", serial="00106700001234")])

    first = child.wait_for("report")["report"]
    started = child.wait_for("started")

    assert started["monitoring"] is True
    assert first == {
        "devpath_basename": "1-1.3",
        "device_node": "/dev/bus/usb/001/002",
        "vendor_id": "2912",
        "product_id": "0005",
        "serial": "00106700001234",
    }


def test_other_vendors_are_ignored(hotplug_child_factory: Any) -> None:
    keyboard = {"name": "1-2", "vendor": "046d", "product": "c31c", "serial": "K", "busnum": 1}
    child = hotplug_child_factory([keyboard])
    assert child.wait_for("report")["report"] is None
    child.wait_for("started")

    child.send({"op": "plug", **keyboard, "name": "1-4"})
    child.quiet_for(1.5)

    assert child.reports == [None]


def test_plug_unplug_replug(hotplug_child_factory: Any) -> None:
    child = hotplug_child_factory()
    assert child.wait_for("report")["report"] is None
    child.wait_for("started")

    child.send({"op": "plug", **atol("1-1.3")})
    assert child.wait_for("report")["report"]["devpath_basename"] == "1-1.3"

    child.send({"op": "unplug", "name": "1-1.3"})
    assert child.wait_for("report")["report"] is None

    child.send({"op": "plug", **atol("1-1.4")})
    plugged = child.wait_for("report")["report"]
    assert plugged["devpath_basename"] == "1-1.4"
    assert child.send({"op": "current"}) == [{"current": plugged}]


def test_burst_is_reported_once_with_the_final_state(hotplug_child_factory: Any) -> None:
    child = hotplug_child_factory()
    assert child.wait_for("report")["report"] is None
    child.wait_for("started")

    # Events 50 ms apart: each lands in its own read of the monitor socket, and the whole
    # burst (~0.45 s) is longer than the 0.3 s settle window.
    pause = {"op": "pause", "seconds": 0.05}
    flap = [{"op": "plug", **atol("1-1.3")}, pause, {"op": "unplug", "name": "1-1.3"}, pause]
    child.send(*flap * 4, {"op": "plug", **atol("1-1.5", serial="FINAL")})

    final = child.wait_for("report")["report"]
    assert final["devpath_basename"] == "1-1.5"
    assert final["serial"] == "FINAL"
    child.quiet_for(1.5)
    assert len(child.reports) == 2  # the initial None, then the settled state only


def test_burst_ending_unplugged_reports_nothing_new(hotplug_child_factory: Any) -> None:
    child = hotplug_child_factory()
    assert child.wait_for("report")["report"] is None
    child.wait_for("started")

    pause = {"op": "pause", "seconds": 0.05}
    flap = [{"op": "plug", **atol("1-1.3")}, pause, {"op": "unplug", "name": "1-1.3"}, pause]
    child.send(*flap * 3)
    child.quiet_for(1.5)

    assert child.reports == [None]


def test_quick_replug_of_the_same_register_is_reported_again(hotplug_child_factory: Any) -> None:
    child = hotplug_child_factory([atol("1-1.3")])
    assert child.wait_for("report")["report"]["devpath_basename"] == "1-1.3"
    child.wait_for("started")

    child.send(
        {"op": "unplug", "name": "1-1.3"},
        {"op": "pause", "seconds": 0.05},
        {"op": "plug", **atol("1-1.3")},
    )

    again = child.wait_for("report")["report"]
    assert again["devpath_basename"] == "1-1.3"
    child.quiet_for(1.0)
    assert len(child.reports) == 2


def test_second_register_does_not_replace_the_current_one(hotplug_child_factory: Any) -> None:
    child = hotplug_child_factory([atol("1-1.4", serial="FIRST")])
    assert child.wait_for("report")["report"]["serial"] == "FIRST"
    child.wait_for("started")

    child.send({"op": "plug", **atol("1-1.2", serial="SECOND")})
    child.quiet_for(1.5)
    assert len(child.reports) == 1

    child.send({"op": "unplug", "name": "1-1.4"})
    assert child.wait_for("report")["report"]["serial"] == "SECOND"


def test_without_udev_events_the_bus_is_polled(hotplug_child_factory: Any) -> None:
    child = hotplug_child_factory([], ["--deny-netlink"])
    assert child.wait_for("report")["report"] is None
    assert child.wait_for("started")["monitoring"] is False

    child.send({"op": "plug", **atol("1-1.3")})
    assert child.wait_for("report")["report"]["devpath_basename"] == "1-1.3"
    child.send({"op": "unplug", "name": "1-1.3"})
    assert child.wait_for("report")["report"] is None


# ---------------------------------------------------------------------------------------------
# Through the real engine: unplugging mid-queue makes jobs wait, replugging resumes them.

SAMPLE_SELL = Path(__file__).resolve().parents[1] / "src/kassa_appliance/samples/01-sell-cash.json"


def _job_states(journal_path: Path, job_ids: list[str]) -> dict[str, str]:
    from kassa_appliance.fiscal.journal import Journal

    with Journal(journal_path) as journal:
        states = {}
        for job_id in job_ids:
            job = journal.get(job_id)
            assert job is not None
            states[job_id] = str(job.state)
        return states


def _wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_unplug_mid_queue_waits_and_replug_resumes(
    hotplug_child_factory: Any, tmp_path: Path
) -> None:
    from kassa_appliance.appliance.daemon import journal_path
    from kassa_appliance.fiscal.journal import Journal

    data_dir = tmp_path / "data"
    journal_file = journal_path(data_dir)
    child = hotplug_child_factory(
        [atol("1-1.3")], ["--engine-dir", str(data_dir), "--print-delay", "0.4"]
    )
    child.wait_for("started")
    task = json.loads(SAMPLE_SELL.read_text(encoding="utf-8"))
    job_ids = [f"hotplug-{index}" for index in range(5)]
    with Journal(journal_file) as journal:
        for job_id in job_ids:
            journal.submit(job_id, task, source="test")

    def fiscalized() -> int:
        return list(_job_states(journal_file, job_ids).values()).count("fiscalized")

    _wait_until(lambda: fiscalized() >= 1, REPORT_TIMEOUT, "the first receipt")
    child.send({"op": "unplug", "name": "1-1.3"})

    # The job in flight may finish; after that nothing moves and nothing fails.
    _wait_until(
        lambda: "fiscalizing" not in _job_states(journal_file, job_ids).values(),
        REPORT_TIMEOUT,
        "the receipt in flight to finish",
    )
    done_while_plugged = fiscalized()
    child.quiet_for(1.5)
    states = _job_states(journal_file, job_ids)
    assert done_while_plugged < len(job_ids), "unplugged too late to test anything"
    assert list(states.values()).count("fiscalized") == done_while_plugged
    assert "failed" not in states.values()
    waiting = [status["waiting"] for status in child.statuses if status["waiting"]]
    assert any("unplugged" in reason for reason in waiting)
    assert child.statuses[-1]["register_online"] is False

    child.send({"op": "plug", **atol("1-1.3")})
    _wait_until(lambda: fiscalized() == len(job_ids), 30.0, "every receipt after replug")

    with Journal(journal_file) as journal:
        jobs = [journal.get(job_id) for job_id in job_ids]
    fd_numbers = [
        job.result["fiscalParams"]["fiscalDocumentNumber"] for job in jobs if job and job.result
    ]
    assert len(set(fd_numbers)) == len(job_ids)  # each printed once


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    sys.exit(_run_child(sys.argv[2:]))
