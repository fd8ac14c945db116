"""`kassa-appliance run`: wires configuration, journal, register and engine into one process.

Only one engine may drive a register, so the daemon (and a CLI that runs jobs itself
when no daemon is up) holds an exclusive lock on ``<data dir>/engine.lock``; the holder
writes ``<pid> <daemon|cli>`` into it. A daemon that finds the lock held waits for it,
READY and fed to the watchdog, with the reason in STATUS (:func:`wait_for_engine_lock`);
a CLI holds it for its own job only (:func:`one_job_settings`, :func:`stop_once_final`).
The daemon publishes its status to ``<data dir>/status.json`` so `kassa-appliance status` can show
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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import IO

from kassa_appliance.aio import wait_event
from kassa_appliance.appliance.config import Config
from kassa_appliance.appliance.runtime import device_runtime
from kassa_appliance.appliance.watchdog import (
    Health,
    HealthState,
    ServiceIntegration,
    Supervisor,
)
from kassa_appliance.bitrix.link import bitrix_link
from kassa_appliance.fiscal.engine import Engine, EngineSettings, EngineStatus
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.registers.factory import RegisterNotConfigured, make_register, require_driver

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


CLI_HOLDER = "cli"
DAEMON_HOLDER = "daemon"
_HOLDER_WORDS = {
    CLI_HOLDER: "a kassa-appliance CLI command",
    DAEMON_HOLDER: "another kassa-appliance daemon",
}
LOCK_POLL_SECONDS = 0.25
"""How often a daemon that found the engine lock held tries it again."""


def _try_engine_lock(data_dir: Path, holder: str) -> IO[str] | None:
    """The lock file, locked and naming us (``<pid> <holder>``), or None if it is held."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / LOCK_FILE_NAME, "a+", encoding="utf-8")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()} {holder}\n")
    handle.flush()
    return handle


def _lock_file_words(data_dir: Path) -> list[str]:
    try:
        return (data_dir / LOCK_FILE_NAME).read_text(encoding="utf-8").split()
    except OSError:
        return []


def lock_holder_role(data_dir: Path) -> str | None:
    """:data:`CLI_HOLDER` or :data:`DAEMON_HOLDER` as the last holder wrote it, else None."""
    words = _lock_file_words(data_dir)
    return words[1] if len(words) > 1 and words[0].isdigit() else None


def describe_lock_holder(data_dir: Path) -> str:
    """Who holds the engine lock, from what the holder wrote into the lock file:
    ``pid 4242 (a kassa-appliance CLI command)``, or ``another process``."""
    words = _lock_file_words(data_dir)
    if not words or not words[0].isdigit():
        return "another process"
    role = _HOLDER_WORDS.get(words[1] if len(words) > 1 else "", "a kassa-appliance process")
    return f"pid {words[0]} ({role})"


@contextlib.contextmanager
def engine_lock(data_dir: Path, *, holder: str = CLI_HOLDER) -> Iterator[IO[str]]:
    """Hold the per-data-dir engine lock; raise EngineBusy if someone else has it."""
    handle = _try_engine_lock(data_dir, holder)
    if handle is None:
        raise EngineBusy(f"{describe_lock_holder(data_dir)} holds {data_dir / LOCK_FILE_NAME}")
    try:
        yield handle
    finally:
        handle.close()


async def wait_for_engine_lock(
    data_dir: Path, stop: asyncio.Event, on_busy: Callable[[str], Awaitable[None]]
) -> IO[str] | None:
    """The engine lock for the daemon, waiting while someone else holds it.

    ``on_busy(holder)`` is called when the lock is found held and again whenever the
    holder changes (a second CLI command took it first), so the reason is logged once per
    holder, not once per poll. Returns the locked file (close it to release), or None when
    ``stop`` was set while waiting. Polling rather than a blocking ``flock`` in a thread
    keeps SIGTERM prompt: there is no thread stuck in the kernel to get back.
    """
    holder: str | None = None
    while not stop.is_set():
        handle = _try_engine_lock(data_dir, DAEMON_HOLDER)
        if handle is not None:
            if holder is not None:
                log.info("the engine lock is free (it was held by %s); starting", holder)
            return handle
        now_held_by = describe_lock_holder(data_dir)
        if now_held_by != holder:
            holder = now_held_by
            await on_busy(holder)
        await wait_event(stop, LOCK_POLL_SECONDS)
    return None


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


def one_job_settings(config: Config) -> EngineSettings:
    """Settings for an engine a CLI command runs for its one job: no receipt chains, so
    nothing queued behind that job is sent to the register (see :func:`stop_once_final`)."""
    return replace(engine_settings(config), chain_receipts=False)


def stop_once_final(engine: Engine, job_id: str) -> Callable[[EngineStatus], None]:
    """A status listener that stops ``engine`` as soon as ``job_id`` is final.

    The engine publishes its status when a job's work ends, and its loop checks for stop
    before it takes the next job; a listener runs inside that publish, so stopping here
    is the only way to stop before the next job. ``Engine.stop()`` only sets flags and
    never suspends, so it is driven to completion synchronously.
    """

    def listener(status: EngineStatus) -> None:
        state = engine.journal.state_of(job_id)
        if state is None or not state.is_final:
            return
        stopping = engine.stop()
        try:
            stopping.send(None)
        except StopIteration:
            return
        stopping.close()
        raise RuntimeError("Engine.stop() suspended; it cannot be called from a listener")

    return listener


StatusSection = Callable[[], object]
"""What a part beside the engine adds to ``status.json`` (e.g. ``link``: the Bitrix24
link's loops and the items it gave up on), read each time the file is written."""


def write_status_file(
    data_dir: Path, status: EngineStatus, sections: Mapping[str, StatusSection] | None = None
) -> None:
    """Replace the status file atomically (rename). Not fsynced: it is advisory, rewritten
    on every start, and an fsync per job would cost the queue more than it is worth."""
    path = data_dir / STATUS_FILE_NAME
    extra = {name: section() for name, section in (sections or {}).items()}
    text = json.dumps({"pid": os.getpid(), **asdict(status), **extra}, ensure_ascii=False)
    text += "\n"
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
        self._sections: dict[str, StatusSection] = {}

    def add_section(self, name: str, section: StatusSection) -> None:
        """Write ``section()`` under ``name`` beside the engine status from now on."""
        self._sections[name] = section
        self.refresh()

    def refresh(self) -> None:
        """A section beside the engine status changed: write the latest status again."""
        if self._latest is not None:
            self(self._latest)

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
                write_status_file(self._data_dir, self._latest, self._sections)
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
    register = make_register(config.register, data_dir)
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
        require_driver(config.register)
    except RegisterNotConfigured as error:
        return await _run_unconfigured(service, str(error), stop)
    # The watchdog keeps pinging until the engine has finished the job in flight.
    status_file = StatusFileWriter(data_dir)
    async with service.running():
        lock = await _engine_lock_for_daemon(data_dir, service, stop)
        if lock is None:  # SIGTERM while a CLI command held the register
            service.reporter.stopping()
            return 0
        with lock:
            async with running_engine(config, data_dir, supervisor=service.supervisor) as engine:
                engine.add_listener(status_file)
                write_status_file(data_dir, engine.status())
                async with (
                    device_runtime(engine, config, service),  # sends READY=1
                    bitrix_link(
                        config.bitrix,
                        config.kassa.id,
                        data_dir,
                        engine,
                        on_health_change=status_file.refresh,
                    ) as link,
                ):
                    if link is not None:
                        status_file.add_section("link", link.health.snapshot)
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


LOCK_BUSY_HEALTH = Health(
    HealthState.WAITING, "engine-lock-busy", "waiting for a CLI command to release the register"
)


async def _engine_lock_for_daemon(
    data_dir: Path, service: ServiceIntegration, stop: asyncio.Event
) -> IO[str] | None:
    """The engine lock, waited for while a CLI command (``print`` with no daemon up, or
    ``demo``) drives the register: exiting would only make systemd restart us in a loop.

    While waiting the daemon is READY (the watchdog is fed: nothing supervised runs yet)
    with the reason in STATUS and snap health ``waiting``. The Bitrix24 link needs the
    engine, so it starts with it: jobs from Bitrix24 wait in the portal meanwhile (the CLI
    holds the lock for one job at most, see ``cli.submit_and_wait``).
    """

    async def on_busy(holder: str) -> None:
        reason = f"waiting for the engine lock held by {holder}; jobs start when it exits"
        log.warning("not starting the engine yet: %s", reason)
        service.notifier.send("READY=1", f"STATUS={reason}")
        await service.reporter.set_health(LOCK_BUSY_HEALTH)

    return await wait_for_engine_lock(data_dir, stop, on_busy)


UNCONFIGURED_HEALTH = Health(
    HealthState.BLOCKED, "register-unconfigured", "register.driver is not set"
)
CONFIG_UNREADABLE_HEALTH = Health(
    HealthState.BLOCKED, "config-unreadable", "config.json is not valid; see the daemon log"
)


async def run_without_config(reason: str) -> int:
    """``config.json`` cannot be read (edited by hand, or written by a newer version):
    stay up, READY and blocked with the reason, as with no register chosen."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service = ServiceIntegration.from_env()
    return await _run_unconfigured(service, reason, stop, CONFIG_UNREADABLE_HEALTH)


async def _run_unconfigured(
    service: ServiceIntegration,
    reason: str,
    stop: asyncio.Event,
    health: Health = UNCONFIGURED_HEALTH,
) -> int:
    """Stay up, READY and blocked, until `snap set` gives a driver and restarts us.

    Exiting would only make systemd restart the daemon in a loop; staying up keeps the
    watchdog fed and shows the reason in `snap info` health and `systemctl status`.
    """
    log.error("not running jobs: %s", reason)
    async with service.running():
        service.notifier.send("READY=1", f"STATUS=not running jobs: {reason}")
        await service.reporter.set_health(health)
        await stop.wait()
        service.reporter.stopping()
    return 0
