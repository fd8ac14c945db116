"""sd_notify for the daemon: the datagram sender and the watchdog pings.

Owns :class:`Notifier` (``KEY=VALUE`` datagrams to ``$NOTIFY_SOCKET``, every failure
logged, never swallowed: that is why this is not the ``sdnotify`` package, snap-notes
§1.4), :func:`watchdog_interval` (``WATCHDOG_USEC/2`` when the watchdog is ours) and
:class:`Watchdog`, the asyncio task sending ``WATCHDOG=1`` while the supervised
components are alive (:mod:`kassa_appliance.appliance.liveness`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

logger = logging.getLogger("kassa_appliance.appliance.watchdog")

_REPEAT_LOG_INTERVAL = 60.0


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
