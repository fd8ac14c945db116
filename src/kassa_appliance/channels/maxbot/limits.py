"""MAX's rate limits, kept on our side (max-notes §1.4): at most 30 requests per second to
the platform API per bot, at most 2 messages and 2 callback answers per second into one
chat, and after a 429 a pause for every request, not only the one refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

GLOBAL_RATE = 25.0
"""Requests per second on average; with :data:`GLOBAL_BURST` no second holds more than 30."""
GLOBAL_BURST = 5
PER_CHAT_INTERVAL = 0.55
"""Seconds between two messages (or two answers) into one chat: under 2 per second with
room for jitter on the way."""


class RateLimiter:
    def __init__(
        self,
        rate: float = GLOBAL_RATE,
        burst: int = GLOBAL_BURST,
        per_chat_interval: float = PER_CHAT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._interval = per_chat_interval
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._paused_until = 0.0
        self._next_in_chat: dict[tuple[str, str], float] = {}
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait for a slot in the bot's global budget (and any pause after a 429)."""
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self._rate)

    async def chat_slot(self, kind: str, chat_id: str) -> None:
        """Wait until one more ``kind`` (``messages``/``answers``) may go into ``chat_id``."""
        key = (kind, chat_id)
        while True:
            now = self._clock()
            due = self._next_in_chat.get(key, 0.0)
            if now >= due:
                self._next_in_chat[key] = now + self._interval
                if len(self._next_in_chat) > 1000:
                    self._forget(now)
                return
            await asyncio.sleep(due - now)

    def pause(self, seconds: float) -> None:
        """After a 429: nothing is sent for ``seconds``."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _forget(self, now: float) -> None:
        for key in [k for k, due in self._next_in_chat.items() if due < now]:
            del self._next_in_chat[key]
