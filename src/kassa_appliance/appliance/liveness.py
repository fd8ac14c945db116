"""Liveness of the daemon's components: what decides whether the watchdog is fed.

Owns :class:`Supervisor`: components that must keep making progress beat more often
than their ``max_silence``, background tasks count as dead once finished. The watchdog
(:mod:`kassa_appliance.appliance.sd_notify`) pings only while :meth:`Supervisor.alive`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("kassa_appliance.appliance.watchdog")


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
