"""Shared pieces of the LAN API tests: a free port, the LAN API in-process on a real engine
(for scenarios that need the register to go offline on cue), and the real daemon process
with the LAN API on (for SIGKILL, the fuzz and the client shapes)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kassa_appliance.appliance.config import Config, RegisterConfig, save_config
from kassa_appliance.appliance.daemon import daemon_command, read_status_file
from kassa_appliance.channels.lan.server import LanServer
from kassa_appliance.channels.lan.settings import LanConfig
from kassa_appliance.fiscal.engine import Engine, EngineSettings
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.registers.base import (
    CONNECTION_LOST,
    FISCAL_TASK_TYPES,
    NO_CONNECTION,
    JsonDict,
    RegisterError,
)
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_state import load_state

USER, PASSWORD = "kassa1c", "Very-Secret-42"
AUTH = (USER, PASSWORD)
DEADLINE = 30.0
FAST_ENGINE = EngineSettings(
    retry_interval=0.01, max_retry_interval=0.05, journal_poll_interval=0.02, call_timeout=5.0
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def lan_config(port: int, **overrides: Any) -> LanConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "port": port,
        "bind": "127.0.0.1",
        "username": USER,
        "password": PASSWORD,
    }
    values.update(overrides)
    return LanConfig.model_validate(values)


def sells_on(simulator_dir: Path) -> int:
    state = load_state(simulator_dir)
    return 0 if state is None else int(state.document_counts.get("sell", 0))


class DeviceOnCue:
    """The simulator behind a USB cable the test can pull, like the fake KKT of
    kktsite-agent's test: ``lose_after_next_fiscal`` fiscalises the next document and then
    drops the connection (error 241); ``lose_before_next_fiscal`` drops it before the
    document closes (error 2, nothing stored); while ``offline`` every call gets error 2."""

    name = "simulator"

    def __init__(self, simulator: SimulatorRegister) -> None:
        self.simulator = simulator
        self.offline = False
        self.lose_after_next_fiscal = False
        self.lose_before_next_fiscal = False

    def open(self) -> None:
        if self.offline:
            raise RegisterError(NO_CONNECTION, "Нет связи")
        self.simulator.open()

    def close(self) -> None:
        self.simulator.close()

    def process(self, task: JsonDict, *, request_id: str | None = None) -> JsonDict:
        if self.offline:
            raise RegisterError(NO_CONNECTION, "Нет связи")
        fiscal = task.get("type") in FISCAL_TASK_TYPES
        if fiscal and self.lose_before_next_fiscal:
            self.lose_before_next_fiscal = False
            self.offline = True
            raise RegisterError(NO_CONNECTION, "Нет связи")
        result = self.simulator.process(task, request_id=request_id)
        if fiscal and self.lose_after_next_fiscal:
            self.lose_after_next_fiscal = False
            self.offline = True
            raise RegisterError(CONNECTION_LOST, "Соединение потеряно")
        return result


@dataclass
class InProcessLan:
    """The LAN API server on a real engine, journal and simulator, in this event loop."""

    base: str
    engine: Engine
    journal: Journal
    device: DeviceOnCue
    server: LanServer
    data_dir: Path
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, **options: Any) -> httpx.AsyncClient:
        options.setdefault("auth", AUTH)
        client = httpx.AsyncClient(base_url=self.base, timeout=20.0, **options)
        self.clients.append(client)
        return client

    @property
    def sells(self) -> int:
        return sells_on(self.data_dir / "simulator")


async def wait_until(predicate: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} never happened"
        await asyncio.sleep(0.02)


async def in_process_lan(
    tmp_path: Path, config: LanConfig | None = None
) -> AsyncIterator[InProcessLan]:
    data_dir = tmp_path / "data"
    journal = Journal(data_dir / "journal.sqlite3")
    device = DeviceOnCue(SimulatorRegister(data_dir / "simulator"))
    engine = Engine(journal, device, FAST_ENGINE)
    worker = asyncio.create_task(engine.run())
    port = free_port()
    server = LanServer(
        config or lan_config(port),
        engine,
        data_dir,
        kassa="kassa-7",
        usb_path="auto",
        mirror=False,
    )
    await server.start()
    scheme = "https" if server.config.tls_cert else "http"
    lan = InProcessLan(
        f"{scheme}://127.0.0.1:{server.config.port}", engine, journal, device, server, data_dir
    )
    try:
        yield lan
    finally:
        for client in lan.clients:
            await client.aclose()
        await server.stop()
        await engine.stop()
        await worker
        journal.close()


class LanDaemon:
    """The real appliance process with the LAN API on, on the simulator."""

    def __init__(self, data_dir: Path, *, print_delay: str = "0", **lan: Any) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.config = Config(
            register=RegisterConfig(driver="simulator", print_delay=print_delay),
            lan=lan_config(self.port, **lan),
        )
        save_config(data_dir, self.config)
        self.process: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            daemon_command(self.data_dir, "warning"),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + DEADLINE
        while True:
            assert self.process.poll() is None, "the daemon exited on its own"
            status = read_status_file(self.data_dir) or {}
            if status.get("pid") == self.process.pid and (status.get("lan") or {}).get("listening"):
                return
            assert time.monotonic() < deadline, "the daemon's LAN API never came up"
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def simulator_dir(self) -> Path:
        return self.data_dir / "simulator"

    @property
    def sells(self) -> int:
        return sells_on(self.simulator_dir)
