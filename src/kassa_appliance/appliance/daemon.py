"""`kassa-appliance run`: wires configuration, journal, register and engine into one process.

Only one engine may drive a register, so the daemon (and a CLI that runs jobs itself
when no daemon is up) holds an exclusive lock on ``<data dir>/engine.lock``; the holder
writes ``<pid> <daemon|cli>`` into it. A daemon that finds the lock held waits for it,
READY and fed to the watchdog, with the reason in STATUS (:func:`wait_for_engine_lock`);
a CLI holds it for its own job only (:func:`one_job_settings`, :func:`stop_once_final`).
The daemon publishes its status to ``<data dir>/status.json`` so `kassa-appliance status` can show
it without touching the register.

The engine lock is :mod:`kassa_appliance.appliance.engine_lock`, the status file
:mod:`kassa_appliance.appliance.status_file`; their names are re-exported here. This module
owns the daemon itself (:func:`run_daemon`, staying up unconfigured), the engine it runs
(:func:`running_engine`, :func:`engine_settings`, a CLI's one-job settings) and where the
journal is (:func:`journal_path`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import IO

from kassa_appliance.appliance.central_config import central_applier
from kassa_appliance.appliance.channel_context import ChannelContext
from kassa_appliance.appliance.channels import running_channels
from kassa_appliance.appliance.config import Config
from kassa_appliance.appliance.engine_lock import (
    CLI_HOLDER,
    DAEMON_HOLDER,
    LOCK_FILE_NAME,
    LOCK_POLL_SECONDS,
    EngineBusy,
    describe_lock_holder,
    engine_lock,
    lock_holder_role,
    wait_for_engine_lock,
)
from kassa_appliance.appliance.runtime import device_runtime
from kassa_appliance.appliance.status_file import (
    STATUS_FILE_INTERVAL,
    STATUS_FILE_NAME,
    StatusFileWriter,
    StatusSection,
    read_status_file,
    write_status_file,
)
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

__all__ = [
    "CLI_HOLDER",
    "CONFIG_UNREADABLE_HEALTH",
    "DAEMON_HOLDER",
    "JOURNAL_FILE_NAME",
    "LOCK_BUSY_HEALTH",
    "LOCK_FILE_NAME",
    "LOCK_POLL_SECONDS",
    "STATUS_FILE_INTERVAL",
    "STATUS_FILE_NAME",
    "UNCONFIGURED_HEALTH",
    "EngineBusy",
    "StatusFileWriter",
    "StatusSection",
    "daemon_command",
    "describe_lock_holder",
    "engine_lock",
    "engine_settings",
    "journal_path",
    "lock_holder_role",
    "one_job_settings",
    "read_status_file",
    "run_daemon",
    "run_without_config",
    "running_engine",
    "stop_once_final",
    "wait_for_engine_lock",
    "write_status_file",
]

log = logging.getLogger(__name__)

JOURNAL_FILE_NAME = "journal.sqlite3"


def daemon_command(data_dir: Path, log_level: str | None = None) -> list[str]:
    """The command that runs the daemon on ``data_dir`` with this Python, for whatever
    starts it as a process of its own (the demo stack, tests, benchmarks)."""
    options = [] if log_level is None else ["--log-level", log_level]
    return [sys.executable, "-m", "kassa_appliance", "--data-dir", str(data_dir), *options, "run"]


def journal_path(data_dir: Path) -> Path:
    return data_dir / JOURNAL_FILE_NAME


def default_operator(config: Config) -> dict[str, str] | None:
    """The operator filled into tasks without one (``operator.vatin`` only with a name)."""
    if not config.operator.name:
        return None
    operator = {"name": config.operator.name}
    if config.operator.vatin:
        operator["vatin"] = config.operator.vatin
    return operator


def engine_settings(config: Config) -> EngineSettings:
    return EngineSettings(
        auto_open_shift=config.shift.auto_open,
        auto_close_expired_shift=config.shift.auto_close,
        call_timeout=config.register.task_timeout,
        default_operator=default_operator(config),
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
                        central=central_applier(config, engine, default_operator),
                    ) as link,
                ):
                    if link is not None:
                        status_file.add_section("link", link.health.snapshot)
                    channels = ChannelContext(
                        config, data_dir, engine, link, status_file.add_section
                    )
                    async with running_channels(channels):
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
    holds the lock for one job at most, see ``cli_jobs.submit_and_wait``).
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
