"""What systemd and snapd learn about the running daemon: readiness, liveness, status, health.

* ``READY=1`` once configuration, journal and register backend are set up (a register that
  is not plugged in still means ready: health says ``waiting``).
* ``WATCHDOG=1`` every ``WATCHDOG_USEC/2``, sent by an asyncio task, and only while the
  supervised components are alive. A blocked event loop therefore stops the pings (systemd
  kills and restarts us); a driver call hung in its worker thread does not, because the
  loop is still serving the queue, status and Bitrix24 (the engine reports the register
  as not answering instead).
* ``STATUS=`` one human line, sent when it changes; ``STOPPING=1`` on shutdown.
* Inside a snap, ``snapctl set-health`` when the health changes (snap-notes §1.8).

Notification failures (``daemon-notify`` plug not connected, socket gone) are logged,
never swallowed: that is why this is not the ``sdnotify`` package (snap-notes §1.4).

This module owns the ``STATUS=`` line (:func:`format_status_line`), the reporter turning
engine snapshots into status and health (:class:`ServiceReporter`), the test-only debug
hooks and :class:`ServiceIntegration`, which wires them up from the environment. The parts
are one module each, their names re-exported here: ``sd_notify`` (the notifier and the
watchdog pings), ``liveness`` (the supervisor of components) and ``health`` (snap health).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping

from kassa_appliance.appliance.health import (
    BITRIX_UNPAIRED,
    OKAY,
    REGISTER_MISSING,
    SNAPCTL_TIMEOUT,
    Health,
    HealthReporter,
    HealthState,
    ServiceSnapshot,
    health_for,
)
from kassa_appliance.appliance.liveness import Supervisor
from kassa_appliance.appliance.sd_notify import Notifier, Watchdog, watchdog_interval

__all__ = [
    "BITRIX_UNPAIRED",
    "DEBUG_BLOCK_SECONDS_ENV",
    "DEBUG_HOOKS_ENV",
    "OKAY",
    "REGISTER_MISSING",
    "SNAPCTL_TIMEOUT",
    "Health",
    "HealthReporter",
    "HealthState",
    "Notifier",
    "ServiceIntegration",
    "ServiceReporter",
    "ServiceSnapshot",
    "Supervisor",
    "Watchdog",
    "format_status_line",
    "health_for",
    "install_debug_hooks",
    "watchdog_interval",
]

logger = logging.getLogger(__name__)

DEBUG_HOOKS_ENV = "KASSA_DEBUG_HOOKS"
"""Set to ``1`` to enable test-only hooks (SIGUSR1 blocks the event loop). Never set on a
device: it exists so tests can prove a blocked loop stops the watchdog pings."""
DEBUG_BLOCK_SECONDS_ENV = "KASSA_DEBUG_BLOCK_LOOP_SECONDS"


def format_status_line(snapshot: ServiceSnapshot) -> str:
    """One line for ``systemctl status``: pairing, register, queue, what it waits on, last error."""
    parts = []
    if snapshot.pairing_problem:
        parts.append("Bitrix24 pairing lost: pair again (see kassa-appliance status)")
    elif snapshot.paired is not None:
        parts.append("Bitrix24 paired" if snapshot.paired else "Bitrix24 not paired")
    if snapshot.device_present is False:
        register_state = "not connected"
    else:
        register_state = "online" if snapshot.register_online else "offline"
    parts.append(f"register {snapshot.register} {register_state}")
    parts.append(f"queue {snapshot.queue_depth}")
    if snapshot.alerts:
        parts.append(f"ATTENTION: {snapshot.alerts[0]}")
    if snapshot.waiting:
        parts.append(f"waiting: {snapshot.waiting}")
    parts.append(f"last error: {snapshot.last_error}" if snapshot.last_error else "no errors")
    line = " ".join("; ".join(parts).split())
    return line if len(line) <= 200 else line[:199] + "…"


class ServiceReporter:
    """Publishes READY/STATUS/STOPPING and health; the latest snapshot wins.

    :meth:`publish` is synchronous so it can be an engine status listener; a background
    task (:meth:`run`) turns the latest snapshot into a STATUS line and a health report.
    """

    def __init__(self, notifier: Notifier, health: HealthReporter) -> None:
        self._notifier = notifier
        self._health = health
        self._latest: ServiceSnapshot | None = None
        self._changed = asyncio.Event()
        self._status_line: str | None = None

    @property
    def status_line(self) -> str | None:
        return self._status_line

    def ready(self, snapshot: ServiceSnapshot) -> None:
        """Initialisation is done: READY=1 with the first status line."""
        line = format_status_line(snapshot)
        self._notifier.send("READY=1", f"STATUS={line}")
        self._status_line = line
        self.publish(snapshot)
        logger.info("ready: %s", line)

    def publish(self, snapshot: ServiceSnapshot) -> None:
        self._latest = snapshot
        self._changed.set()

    def stopping(self) -> None:
        self._notifier.send("STOPPING=1", "STATUS=stopping: finishing the job in flight")

    async def set_health(self, health: Health) -> None:
        """Report a health that does not come from an engine snapshot."""
        await self._health.report(health)

    async def run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            snapshot = self._latest
            if snapshot is None:
                continue
            line = format_status_line(snapshot)
            if line != self._status_line:
                self._notifier.send(f"STATUS={line}")
                self._status_line = line
            await self._health.report(health_for(snapshot))


def install_debug_hooks(
    loop: asyncio.AbstractEventLoop, environ: Mapping[str, str] | None = None
) -> bool:
    """Test-only: with ``KASSA_DEBUG_HOOKS=1``, SIGUSR1 blocks the event loop for
    ``KASSA_DEBUG_BLOCK_LOOP_SECONDS`` (default 5) seconds. Inert otherwise."""
    env = os.environ if environ is None else environ
    if env.get(DEBUG_HOOKS_ENV) != "1":
        return False
    seconds = float(env.get(DEBUG_BLOCK_SECONDS_ENV, "5"))

    def block_loop() -> None:
        logger.warning("debug hook: blocking the event loop for %g s", seconds)
        time.sleep(seconds)  # deliberately on the loop thread
        logger.warning("debug hook: event loop unblocked")

    loop.add_signal_handler(signal.SIGUSR1, block_loop)
    logger.warning("debug hooks are enabled (%s=1): not for production", DEBUG_HOOKS_ENV)
    return True


class ServiceIntegration:
    """The daemon's link to systemd and snapd, built from the environment."""

    def __init__(
        self,
        notifier: Notifier,
        health: HealthReporter,
        interval: float,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.notifier = notifier
        self.supervisor = Supervisor()
        self.reporter = ServiceReporter(notifier, health)
        self.watchdog = Watchdog(notifier, interval, self.supervisor.alive)
        self._environ = environ

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceIntegration:
        return cls(
            Notifier.from_env(environ),
            HealthReporter.from_env(environ),
            watchdog_interval(environ),
            environ,
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ServiceIntegration]:
        """Run the watchdog and the reporter for the duration of the block."""
        install_debug_hooks(asyncio.get_running_loop(), self._environ)
        tasks = [
            asyncio.create_task(self.watchdog.run(), name="watchdog"),
            asyncio.create_task(self.reporter.run(), name="service-reporter"),
        ]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.notifier.close()
