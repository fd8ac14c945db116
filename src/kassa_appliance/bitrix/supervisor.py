"""Supervision of the Bitrix24 link's loops: no error ends the link silently.

Each loop (storage bootstrap, reconciliation, write-back, heartbeat, the push connection,
the doorbell handler) runs under :func:`supervised`. A Bitrix24 failure is the loop's own
business (it retries with back-off); any *other* exception is a bug or an input nobody
foresaw: it is logged with its traceback, counted per loop in :class:`LinkHealth` (shown by
``kassa-appliance status`` under ``link``), and the loop starts again after a back-off —
the job link keeps taking jobs and writing results back.

:class:`LinkHealth` also lists the items the link gave up on: a KASSAJOB item that could
not be taken, or an outcome the portal refused even shortened. They are skipped (never
retried in a loop) until the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kassa_appliance.inputs import shorten

log = logging.getLogger(__name__)

ERROR_TEXT_LIMIT = 300
"""Characters of the last error kept per loop for ``status``."""
SKIPPED_SHOWN = 20
"""Skipped items listed in ``status`` (the most recent ones); all are counted."""


def error_text(error: BaseException) -> str:
    """``ExceptionType: message``, shortened and escaped, for logs and ``status``."""
    message = str(error)
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return shorten(text, ERROR_TEXT_LIMIT)


@dataclass
class LoopErrors:
    count: int = 0
    last_error: str = ""
    last_error_at: str = ""


class LinkHealth:
    """Unexpected errors per loop and skipped items, for ``status``."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.loops: dict[str, LoopErrors] = {}
        self.skipped: dict[str, str] = {}
        self.skipped_total = 0
        self._on_change = on_change
        self._sections: dict[str, Callable[[], Any]] = {}

    def add_section(self, name: str, section: Callable[[], Any]) -> None:
        """Show ``section()`` under ``name`` in :meth:`snapshot` (e.g. the REST budget)."""
        self._sections[name] = section

    def set_on_change(self, callback: Callable[[], None] | None) -> None:
        self._on_change = callback

    def record_error(self, loop: str, error: BaseException) -> None:
        entry = self.loops.setdefault(loop, LoopErrors())
        entry.count += 1
        entry.last_error = error_text(error)
        entry.last_error_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._changed()

    def record_skipped(self, key: str, reason: str) -> None:
        """``key`` names the item (``item 12`` / ``job <id>``)."""
        if key in self.skipped:
            return
        self.skipped[key] = shorten(reason, ERROR_TEXT_LIMIT)
        self.skipped_total += 1
        while len(self.skipped) > SKIPPED_SHOWN:
            del self.skipped[next(iter(self.skipped))]
        self._changed()

    def snapshot(self) -> dict[str, Any]:
        return {
            "loops": {
                name: {
                    "errors": entry.count,
                    "last_error": entry.last_error,
                    "last_error_at": entry.last_error_at,
                }
                for name, entry in self.loops.items()
            },
            "skipped_items": [{"item": k, "reason": v} for k, v in self.skipped.items()],
            "skipped_total": self.skipped_total,
            **{name: section() for name, section in self._sections.items()},
        }

    def changed(self) -> None:
        """A section has news: tell ``on_change`` (the daemon rewrites ``status.json``)."""
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:  # reporting health must never break the link
                log.exception("could not publish the Bitrix24 link status")


async def supervised(
    name: str,
    body: Callable[[], Awaitable[None]],
    health: LinkHealth,
    backoff: Callable[[int], float],
) -> None:
    """Run ``body`` until it returns; restart it after an unexpected exception.

    ``backoff(attempt)`` gives the pause before restart ``attempt`` (1, 2, …); the count
    starts again once the body has run for a while without failing.
    """
    attempt = 0
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            await body()
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            health.record_error(name, error)
            if loop.time() - started > backoff(attempt + 1) * 4:
                attempt = 0
            attempt += 1
            delay = backoff(attempt)
            log.exception(
                "Bitrix24 link: %s failed unexpectedly (%s); restarting it in %.1fs",
                name,
                error_text(error),
                delay,
            )
            await asyncio.sleep(delay)
