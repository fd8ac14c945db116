"""Moving to a new push connection without a gap in live delivery (bitrix24-notes.md §1.8).

``config_expire`` and ``server_restart`` ask every client to fetch the config again after
a random 10–120 s, so a fleet does not reconnect at once; channel expiry and a stale
config ask for a new connection too. Closing at once and waiting the jitter, as the docs
literally say, leaves a kassa a minute on average without doorbells. Instead, a
:class:`Handover` keeps the old connection in use (while the server keeps it): after the
jitter the new connection is opened next to it — with ``mid=<last mid>``, so whatever was
published meanwhile is replayed and the mid dedup drops what both delivered — and only
once it is up is the old one closed. If the server drops the old connection first, the
client waits out the rest of the jitter and reconnects then, as the docs require.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection

from kassa_appliance.bitrix.pull_config import PullConfig
from kassa_appliance.bitrix.pull_dispatch import ActionOutcome

log = logging.getLogger("kassa_appliance.bitrix.pull")

Opener = Callable[[PullConfig], Awaitable[ClientConnection]]
ConfigLoader = Callable[[], Awaitable[PullConfig]]


@dataclass
class Handover:
    """A new connection to be opened at ``at`` (event-loop time) next to the current one."""

    action: ActionOutcome
    """What asked for it: its code closes the old connection; ``refetch``/``config`` say
    which config the new connection uses."""
    at: float
    attempts: int = 0
    task: asyncio.Task[tuple[ClientConnection, PullConfig]] | None = field(default=None)

    def start(self, current: PullConfig, load: ConfigLoader, open_: Opener) -> None:
        async def prepare() -> tuple[ClientConnection, PullConfig]:
            config = await load() if self.action.refetch else (self.action.config or current)
            return await open_(config), config

        self.task = asyncio.get_running_loop().create_task(prepare(), name="push-handover")

    @property
    def ready(self) -> bool:
        return self.task is not None and self.task.done()

    def result(
        self, retry_in: Callable[[int], float], now: float
    ) -> tuple[ClientConnection, PullConfig] | None:
        """The new connection once prepared; None (and a retry scheduled) if that failed."""
        assert self.task is not None and self.task.done()
        task, self.task = self.task, None
        try:
            return task.result()
        except Exception as exc:
            self.attempts += 1
            delay = retry_in(self.attempts)
            log.warning(
                "push: the new connection could not be opened (%s); the current one stays, "
                "next try in %.1f s",
                exc.__class__.__name__,
                delay,
            )
            self.at = now + delay
            return None

    async def cancel(self) -> None:
        """Drop the preparation (and a connection it opened)."""
        task, self.task = self.task, None
        if task is None:
            return
        task.cancel()
        try:
            connection, _config = await task
        except BaseException:
            return
        await connection.close()
