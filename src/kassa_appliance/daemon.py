"""`kassa-appliance run`: wires configuration, journal, register and engine into one process.

Only one engine may drive a register, so the daemon (and a CLI that runs jobs itself
when no daemon is up) holds an exclusive lock on ``<data dir>/engine.lock``. The daemon
publishes its status to ``<data dir>/status.json`` so `kassa-appliance status` can show
it without touching the register.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO

from kassa_appliance.bitrix.link import bitrix_link
from kassa_appliance.config import Config
from kassa_appliance.engine import Engine, EngineSettings, EngineStatus
from kassa_appliance.journal import Journal
from kassa_appliance.registers.factory import RegisterNotConfigured, make_register, require_driver
from kassa_appliance.runtime import device_runtime
from kassa_appliance.watchdog import (
    Health,
    HealthState,
    ServiceIntegration,
    Supervisor,
)

log = logging.getLogger(__name__)

JOURNAL_FILE_NAME = "journal.sqlite3"
LOCK_FILE_NAME = "engine.lock"
STATUS_FILE_NAME = "status.json"
STATUS_FILE_INTERVAL = 0.5


class EngineBusy(Exception):
    """Another process (normally the daemon) already drives the register."""


def daemon_command(data_dir: Path, log_level: str | None = None) -> list[str]:
    """The command that runs the daemon on ``data_dir`` with this Python, for whatever
    starts it as a process of its own (the demo stack, tests, benchmarks)."""
    options = [] if log_level is None else ["--log-level", log_level]
    return [sys.executable, "-m", "kassa_appliance", "--data-dir", str(data_dir), *options, "run"]


def journal_path(data_dir: Path) -> Path:
    return data_dir / JOURNAL_FILE_NAME


@contextlib.contextmanager
def engine_lock(data_dir: Path) -> Iterator[IO[str]]:
    """Hold the per-data-dir engine lock; raise EngineBusy if someone else has it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / LOCK_FILE_NAME, "a+", encoding="utf-8")  # noqa: SIM115
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EngineBusy(f"another process holds {data_dir / LOCK_FILE_NAME}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield handle
    finally:
        handle.close()


def engine_settings(config: Config) -> EngineSettings:
    operator = None
    if config.operator.name:
        operator = {"name": config.operator.name}
        if config.operator.vatin:
            operator["vatin"] = config.operator.vatin
    return EngineSettings(
        auto_open_shift=config.shift.auto_open,
        auto_close_expired_shift=config.shift.auto_close,
        call_timeout=config.register.task_timeout,
        default_operator=operator,
        default_taxation=config.company.taxation,
    )


def write_status_file(data_dir: Path, status: EngineStatus) -> None:
    """Replace the status file atomically (rename). Not fsynced: it is advisory, rewritten
    on every start, and an fsync per job would cost the queue more than it is worth."""
    path = data_dir / STATUS_FILE_NAME
    text = json.dumps({"pid": os.getpid(), **asdict(status)}, ensure_ascii=False) + "\n"
    fd, tmp_name = tempfile.mkstemp(dir=data_dir, prefix=f".{STATUS_FILE_NAME}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class StatusFileWriter:
    """Keeps ``status.json`` current without writing it for every job: at most one write
    per ``interval``, and the latest status is always written at the end of a burst."""

    def __init__(self, data_dir: Path, interval: float = STATUS_FILE_INTERVAL) -> None:
        self._data_dir = data_dir
        self._interval = interval
        self._latest: EngineStatus | None = None
        self._last_write = 0.0
        self._scheduled: asyncio.TimerHandle | None = None

    def __call__(self, status: EngineStatus) -> None:
        self._latest = status
        if self._scheduled is not None:
            return
        loop = asyncio.get_running_loop()
        delay = self._last_write + self._interval - loop.time()
        if delay <= 0:
            self._write()
        else:
            self._scheduled = loop.call_later(delay, self._write)

    def _write(self) -> None:
        self._scheduled = None
        if self._latest is not None:
            self._last_write = asyncio.get_running_loop().time()
            try:
                write_status_file(self._data_dir, self._latest)
            except OSError as error:
                log.warning("cannot write %s: %s", STATUS_FILE_NAME, error)

    def flush(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
        self._write()


def read_status_file(data_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads((data_dir / STATUS_FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.asynccontextmanager
async def running_engine(
    config: Config,
    data_dir: Path,
    settings: EngineSettings | None = None,
    supervisor: Supervisor | None = None,
) -> AsyncIterator[Engine]:
    """An engine working the journal in the background for the duration of the block."""
    journal = Journal(journal_path(data_dir))
    register = make_register(config, data_dir)
    engine = Engine(journal, register, settings or engine_settings(config))
    task = asyncio.create_task(engine.run(), name="engine")
    if supervisor is not None:  # a crashed engine task stops the watchdog pings
        supervisor.watch_task("engine", task)
    try:
        yield engine
    finally:
        await engine.stop()
        await task
        journal.close()


async def run_daemon(config: Config, data_dir: Path) -> int:
    """Run until SIGTERM/SIGINT; finish the receipt in flight before returning."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service = ServiceIntegration.from_env()
    try:
        require_driver(config)
    except RegisterNotConfigured as error:
        return await _run_unconfigured(service, str(error), stop)
    # The watchdog keeps pinging until the engine has finished the job in flight.
    status_file = StatusFileWriter(data_dir)
    with engine_lock(data_dir):
        async with (
            service.running(),
            running_engine(config, data_dir, supervisor=service.supervisor) as engine,
        ):
            engine.add_listener(status_file)
            write_status_file(data_dir, engine.status())
            async with (
                device_runtime(engine, config, service),  # sends READY=1
                bitrix_link(config, data_dir, engine),
            ):
                log.info("kassa-appliance running: %s", engine.status().summary())
                await stop.wait()
                service.reporter.stopping()  # STOPPING=1
                log.info("stopping: finishing the job in flight")
                # The engine stops first, so the Bitrix24 link can still write back the
                # outcome of the receipt that was in flight.
                await engine.stop()
                await engine.stopped()
        status_file.flush()
    return 0


async def _run_unconfigured(service: ServiceIntegration, reason: str, stop: asyncio.Event) -> int:
    """Stay up, READY and blocked, until `snap set` gives a driver and restarts us.

    Exiting would only make systemd restart the daemon in a loop; staying up keeps the
    watchdog fed and shows the reason in `snap info` health and `systemctl status`.
    """
    log.error("not running jobs: %s", reason)
    async with service.running():
        service.notifier.send("READY=1", f"STATUS=not running jobs: {reason}")
        await service.reporter.set_health(
            Health(HealthState.BLOCKED, "register-unconfigured", "register.driver is not set")
        )
        await stop.wait()
        service.reporter.stopping()
    return 0
