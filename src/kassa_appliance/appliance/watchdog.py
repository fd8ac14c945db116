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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

logger = logging.getLogger(__name__)

DEBUG_HOOKS_ENV = "KASSA_DEBUG_HOOKS"
"""Set to ``1`` to enable test-only hooks (SIGUSR1 blocks the event loop). Never set on a
device: it exists so tests can prove a blocked loop stops the watchdog pings."""
DEBUG_BLOCK_SECONDS_ENV = "KASSA_DEBUG_BLOCK_LOOP_SECONDS"

_REPEAT_LOG_INTERVAL = 60.0
SNAPCTL_TIMEOUT = 10.0


class Notifier:
    """Sends sd_notify datagrams to ``$NOTIFY_SOCKET``; a no-op when there is none.

    The socket is non-blocking: a service manager that stops reading must not freeze the
    event loop. Every failure is logged; repeats of the same failure at most once a minute,
    with a count.
    """

    def __init__(self, socket_path: str | None) -> None:
        self._address: str | bytes | None = None
        if socket_path:
            if socket_path.startswith("@"):
                self._address = b"\0" + socket_path[1:].encode()
            elif socket_path.startswith("/"):
                self._address = socket_path
            else:
                logger.error(
                    "NOTIFY_SOCKET=%r is neither an absolute path nor an abstract '@' name; "
                    "systemd will not hear from this service",
                    socket_path,
                )
        self._socket_path = socket_path
        self._socket: socket.socket | None = None
        self._failing: str | None = None
        self._repeats = 0
        self._last_logged = 0.0
        self.failures = 0
        """How many notifications could not be delivered."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields as one datagram; False (and a log line) if it failed."""
        if self._address is None:
            return False
        message = "\n".join(fields).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            self._socket.sendto(message, self._address)
        except OSError as error:
            self.failures += 1
            self._log_failure(fields[0] if fields else "", error)
            return False
        if self._failing is not None:
            logger.info("sd_notify works again on %s", self._socket_path)
            self._failing = None
        return True

    def _log_failure(self, first_field: str, error: OSError) -> None:
        reason = f"{type(error).__name__}: {error.strerror or error}"
        now = time.monotonic()
        if reason == self._failing and now - self._last_logged < _REPEAT_LOG_INTERVAL:
            self._repeats += 1
            return
        hint = ""
        if isinstance(error, PermissionError):
            hint = " (inside a snap: is the daemon-notify plug connected?)"
        repeats = (
            f"; {self._repeats} similar failures since the last report" if self._repeats else ""
        )
        logger.error(
            "cannot notify systemd on %s (%s): %s%s%s",
            self._socket_path,
            first_field,
            reason,
            hint,
            repeats,
        )
        self._failing = reason
        self._repeats = 0
        self._last_logged = now

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float:
    """Seconds between pings (``WATCHDOG_USEC/2``), or 0.0 when no watchdog applies to us."""
    env = os.environ if environ is None else environ
    raw_usec = env.get("WATCHDOG_USEC")
    if not raw_usec:
        return 0.0
    raw_pid = env.get("WATCHDOG_PID")
    if raw_pid:
        own_pid = os.getpid() if pid is None else pid
        if raw_pid.strip() != str(own_pid):
            logger.info("WATCHDOG_PID=%s is not this process (%d): no watchdog", raw_pid, own_pid)
            return 0.0
    try:
        usec = int(raw_usec)
    except ValueError:
        usec = 0
    if usec <= 0:
        logger.error("WATCHDOG_USEC=%r is not a positive integer: no watchdog pings", raw_usec)
        return 0.0
    return usec / 2 / 1_000_000


class Supervisor:
    """Liveness of the daemon's components, for the watchdog.

    A component that must keep making progress registers with a ``max_silence`` and calls
    :meth:`beat` more often than that; a background task can be watched instead, and it
    counts as dead once it has finished. A worker thread stuck in a driver call is *not* a
    supervised component: a hung register must not get the whole appliance restarted.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._limits: dict[str, float] = {}
        self._last_beat: dict[str, float] = {}
        self._tasks: dict[str, asyncio.Future[Any]] = {}
        self._reported: tuple[str, ...] = ()

    def register(self, name: str, max_silence: float) -> None:
        if max_silence <= 0:
            raise ValueError(f"max_silence for {name!r} must be > 0 seconds, got {max_silence}")
        self._limits[name] = max_silence
        self._last_beat[name] = self._clock()

    def unregister(self, name: str) -> None:
        self._limits.pop(name, None)
        self._last_beat.pop(name, None)
        self._tasks.pop(name, None)

    def beat(self, name: str) -> None:
        if name not in self._limits:
            raise KeyError(f"component {name!r} is not registered with the supervisor")
        self._last_beat[name] = self._clock()

    def watch_task(self, name: str, task: asyncio.Future[Any]) -> None:
        self._tasks[name] = task

    def dead(self) -> list[str]:
        """The components that are not alive, each with the reason."""
        now = self._clock()
        problems = [
            f"{name} silent for {now - self._last_beat[name]:.1f} s (limit {limit:g} s)"
            for name, limit in self._limits.items()
            if now - self._last_beat[name] > limit
        ]
        problems += [f"{name} stopped" for name, task in self._tasks.items() if task.done()]
        return problems

    def alive(self) -> bool:
        problems = tuple(self.dead())
        if problems != self._reported:
            if problems:
                logger.error("withholding watchdog pings: %s", "; ".join(problems))
            else:
                logger.info("all supervised components are alive again")
            self._reported = problems
        return not problems


class Watchdog:
    """Sends ``WATCHDOG=1`` every ``interval`` seconds while ``liveness_check()`` is true.

    It runs as an asyncio task on purpose: a blocked event loop must starve it.
    """

    def __init__(
        self, notifier: Notifier, interval: float, liveness_check: Callable[[], bool]
    ) -> None:
        self._notifier = notifier
        self._interval = interval
        self._liveness_check = liveness_check
        self.pings = 0

    @property
    def enabled(self) -> bool:
        return self._interval > 0 and self._notifier.enabled

    async def run(self) -> None:
        if not self.enabled:
            return
        while True:
            if self._liveness_check() and self._notifier.send("WATCHDOG=1"):
                self.pings += 1
            await asyncio.sleep(self._interval)


class HealthState(StrEnum):
    OKAY = "okay"
    WAITING = "waiting"
    BLOCKED = "blocked"
    ERROR = "error"


_HEALTH_CODE = re.compile(r"^[a-z](?:-?[a-z0-9])+$")


@dataclass(frozen=True)
class Health:
    """What ``snapctl set-health`` takes: a state, and for anything but okay a code and a
    message (code: lowercase/digits/single dashes, 3–30 chars; message: 7–70 chars)."""

    state: HealthState
    code: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.state is HealthState.OKAY:
            if self.code is not None or self.message is not None:
                raise ValueError("health 'okay' takes no code and no message")
            return
        if self.code is None or not (3 <= len(self.code) <= 30 and _HEALTH_CODE.match(self.code)):
            raise ValueError(
                f"health code {self.code!r} must be 3-30 chars of lowercase letters, digits "
                "and single dashes, starting with a letter"
            )
        if self.message is None or len(self.message) < 7:
            raise ValueError(f"health message {self.message!r} must be at least 7 characters")

    def snapctl_args(self) -> list[str]:
        if self.state is HealthState.OKAY:
            return ["set-health", "okay"]
        assert self.code is not None and self.message is not None
        message = " ".join(self.message.split())
        if len(message) > 70:
            message = message[:69] + "…"
        return ["set-health", f"--code={self.code}", str(self.state), message]


OKAY = Health(HealthState.OKAY)


class HealthReporter:
    """Reports health to snapd with ``snapctl set-health``, only when it changes.

    Outside a snap (``snapctl`` is None) it only remembers the value. A failed snapctl call
    is logged and retried with the next report.
    """

    def __init__(self, snapctl: str | None) -> None:
        self._snapctl = snapctl
        self._reported: Health | None = None
        self.current: Health | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HealthReporter:
        env = os.environ if environ is None else environ
        if not env.get("SNAP"):
            return cls(None)
        return cls(shutil.which("snapctl", path=env.get("PATH")) or "/usr/bin/snapctl")

    @property
    def snapctl(self) -> str | None:
        """The snapctl executable used, None outside a snap."""
        return self._snapctl

    async def report(self, health: Health) -> None:
        self.current = health
        if health == self._reported:
            return
        if self._snapctl is None:
            self._reported = health
            return
        if await self._run_snapctl(health.snapctl_args()):
            self._reported = health

    async def _run_snapctl(self, args: list[str]) -> bool:
        command = " ".join(["snapctl", *args[:2]])
        try:
            process = await asyncio.create_subprocess_exec(
                self._snapctl or "snapctl",
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as error:
            logger.error("cannot run %s: %s", command, error)
            return False
        try:
            output, _ = await asyncio.wait_for(process.communicate(), SNAPCTL_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            logger.error("%s did not finish within %g s", command, SNAPCTL_TIMEOUT)
            return False
        if process.returncode != 0:
            logger.error(
                "%s failed (exit %s): %s",
                command,
                process.returncode,
                output.decode(errors="replace").strip() or "no output",
            )
            return False
        return True


@dataclass(frozen=True)
class ServiceSnapshot:
    """Everything the status line and the health are made from."""

    register: str
    register_online: bool
    queue_depth: int
    waiting: str | None = None
    last_error: str | None = None
    alerts: tuple[str, ...] = ()
    paired: bool | None = None
    """Bitrix24 link configured; None when not applicable."""
    device_present: bool | None = None
    """An Atol USB device is plugged in; None when the backend is not a USB one."""
    pairing_problem: str | None = None
    """Why the Bitrix24 pairing is lost (every refresh token refused); None otherwise."""


REGISTER_MISSING = Health(HealthState.WAITING, "register-missing", "Atol register not connected")
BITRIX_UNPAIRED = Health(
    HealthState.BLOCKED,
    "bitrix-unpaired",
    "pair again: snap set kassa-appliance bitrix.refresh-token=<new token>",
)


def health_for(snapshot: ServiceSnapshot) -> Health:
    if snapshot.device_present is False:
        return REGISTER_MISSING
    if snapshot.pairing_problem:
        return BITRIX_UNPAIRED
    if snapshot.alerts:
        return Health(HealthState.BLOCKED, "needs-attention", _message(snapshot.alerts[0]))
    if snapshot.waiting:
        return Health(HealthState.WAITING, "queue-waiting", _message(snapshot.waiting))
    return OKAY


def _message(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) >= 7 else f"{text} (see status)"


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
