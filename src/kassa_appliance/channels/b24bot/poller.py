"""Polling ``imbot.v2.Event.get`` with the offset persisted, at an adaptive pace.

Pace (chat-bots-v2/index.md#polling): every ``active_poll_seconds`` (1 s) while a
conversation is open — someone wrote, pressed a button or the bot sent something within
``active_window_seconds`` —, every ``idle_poll_seconds`` (10 s) otherwise, and 2 s after an
answer with ``hasMore`` (the docs' minimum pause then). Each poll is one REST request taken
from the link's budget, so an idle bot costs 0.1 requests/s of the app's 2/s, an active one 1.

The offset: the events of a batch are handled in order, then ``nextOffset`` is saved
atomically and passed on the next call, which confirms them (event-get.md). A handler that
fails leaves the offset at the failed event (it is retried after a pause; after
``MAX_TRIES`` it is skipped with a warning, so one bad event cannot stall the bot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kassa_appliance.bitrix.errors import BitrixError
from kassa_appliance.channels.b24bot.api import BotApi
from kassa_appliance.channels.b24bot.events import incoming_of, message_ids
from kassa_appliance.channels.b24bot.settings import B24BotConfig
from kassa_appliance.channels.b24bot.state import BotState, BotStateFile
from kassa_appliance.channels.conversation.transport import Incoming

log = logging.getLogger(__name__)

HAS_MORE_PAUSE = 2.0
ERROR_PAUSE_MAX = 60.0
MAX_TRIES = 3

Handler = Callable[[Incoming], Awaitable[None]]


class BotLost(Exception):
    """``BOT_NOT_FOUND``: the bot was deleted in Bitrix24; the host registers it again."""


@dataclass
class PollStats:
    polls: int = 0
    events: int = 0
    handled: int = 0
    skipped_failures: int = 0
    last_error: str = ""
    last_poll_at: float = 0.0
    intervals: list[float] = field(default_factory=list)


class EventPoller:
    def __init__(
        self,
        api: BotApi,
        state: BotState,
        store: BotStateFile,
        handle: Handler,
        config: B24BotConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.state = state
        self.store = store
        self.handle = handle
        self.config = config
        self.clock = clock
        self.stats = PollStats()
        self._active_until = 0.0
        self._wake = asyncio.Event()
        self._failures: dict[int, int] = {}

    # -- pace -------------------------------------------------------------------------------

    def mark_active(self) -> None:
        """A conversation moved: poll at the fast pace for the next active window."""
        was_idle = not self.active
        self._active_until = self.clock() + self.config.active_window_seconds
        if was_idle:
            self._wake.set()

    @property
    def active(self) -> bool:
        return self.clock() < self._active_until

    def interval(self) -> float:
        return self.config.active_poll_seconds if self.active else self.config.idle_poll_seconds

    # -- polling ----------------------------------------------------------------------------

    async def poll_once(self) -> bool:
        """One ``Event.get`` and its events handled; True when the portal has more."""
        batch = await self.api.events(self.state.offset)
        self.stats.polls += 1
        self.stats.last_poll_at = time.time()
        confirmed = batch.next_offset
        for event in batch.events:
            self.stats.events += 1
            event_id = event.get("eventId")
            seen = message_ids(event)
            if seen is not None:
                self.state.note_message(*seen)
            incoming = incoming_of(event, self.api.bot_id)
            if incoming is None:
                continue
            self.mark_active()
            try:
                await self.handle(incoming)
            except Exception as error:
                if not isinstance(event_id, int) or self._give_up(event_id, error):
                    continue
                confirmed = event_id
                self._save(confirmed)
                raise
            self.stats.handled += 1
        self._save(confirmed)
        return batch.has_more

    def _give_up(self, event_id: int, error: Exception) -> bool:
        tries = self._failures.get(event_id, 0) + 1
        self._failures[event_id] = tries
        if tries < MAX_TRIES:
            return False
        log.warning("bot event %d failed %d times (%s); skipping it", event_id, tries, error)
        self.stats.skipped_failures += 1
        self._failures.pop(event_id, None)
        return True

    def _save(self, offset: int | None) -> None:
        if offset is not None:
            self.state.offset = offset
        self.store.save(self.state)

    async def run(self) -> None:
        """Poll until cancelled; errors back off (the REST client already retried)."""
        error_pause = 0.0
        while True:
            started = self.clock()
            try:
                has_more = await self.poll_once()
                error_pause = 0.0
                pause = HAS_MORE_PAUSE if has_more else self.interval()
            except asyncio.CancelledError:
                raise
            except BitrixError as error:
                if error.code == "BOT_NOT_FOUND":
                    raise BotLost(error.description) from error
                self.stats.last_error = str(error)
                log.warning("imbot.v2.Event.get failed: %s", error)
                error_pause = min(ERROR_PAUSE_MAX, max(self.interval(), error_pause * 2))
                pause = error_pause
            except Exception as error:
                self.stats.last_error = str(error)
                log.exception("bot event handling failed")
                error_pause = min(ERROR_PAUSE_MAX, max(self.interval(), error_pause * 2))
                pause = error_pause
            await self._sleep_from(started, pause)

    async def _sleep_from(self, started: float, pause: float) -> None:
        """Sleep until ``started + pause``; a wake-up (idle → active) shortens the pause to
        the active pace."""
        self._wake.clear()
        while True:
            remaining = started + pause - self.clock()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)
                self._wake.clear()
                pause = min(pause, self.interval())
