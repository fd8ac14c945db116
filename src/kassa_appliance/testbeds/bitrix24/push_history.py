"""The push server's message history: what ``mid=<last mid>`` replays after a reconnect.

Only messages published with an expiry are kept (ps2 keeps them in Redis, so they survive a
server restart); expired ones are pruned on every add, and at most ``store_limit`` are kept,
oldest dropped first.
"""

from __future__ import annotations

from collections.abc import Callable

from kassa_appliance.testbeds.bitrix24.push_framing import StoredMessage


class MessageHistory:
    def __init__(self, store_limit: int, clock: Callable[[], float]) -> None:
        self._store_limit = store_limit
        self._clock = clock
        self._store: list[StoredMessage] = []

    def add(self, message: StoredMessage) -> None:
        """Keep ``message`` for replay (callers pass only messages with an expiry)."""
        self._store.append(message)
        self._prune()

    def replay(self, after_mid: str, channels: frozenset[str]) -> list[StoredMessage]:
        """Unexpired messages newer than ``after_mid`` on any of ``channels``, oldest first."""
        now = self._clock()
        return [
            message
            for message in self._store
            if message.mid > after_mid
            and message.channels & channels
            and message.created + message.expiry > now
        ]

    def _prune(self) -> None:
        now = self._clock()
        self._store = [m for m in self._store if m.created + m.expiry > now]
        del self._store[: max(0, len(self._store) - self._store_limit)]
