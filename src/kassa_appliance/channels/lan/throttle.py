"""Lock-out after repeated wrong passwords: a LAN API password is guessed by trying, so an
address that fails :data:`FAILURES` times within :data:`WINDOW` seconds is answered 429
(with ``Retry-After``) for :data:`LOCKOUT` seconds — even with the right password, so a
guess that happens to be right during the lock-out tells nothing. A right password outside
a lock-out forgets the address's failures. Bounded: at most :data:`ADDRESSES` addresses are
remembered (the oldest forgotten first), so a flood of spoofed-looking peers costs memory
once, not without end."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

FAILURES = 10
WINDOW = 60.0
LOCKOUT = 60.0
ADDRESSES = 1024


class LoginThrottle:
    def __init__(
        self,
        *,
        failures: int = FAILURES,
        window: float = WINDOW,
        lockout: float = LOCKOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failures = failures
        self._window = window
        self._lockout = lockout
        self._clock = clock
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked_until: dict[str, float] = {}
        self.lockouts = 0

    def retry_after(self, address: str) -> float | None:
        """Seconds the address is still locked out for, or None."""
        until = self._locked_until.get(address)
        if until is None:
            return None
        left = until - self._clock()
        if left <= 0:
            del self._locked_until[address]
            return None
        return left

    def failed(self, address: str) -> None:
        now = self._clock()
        recent = self._recent.pop(address, None) or deque()
        recent.append(now)
        while recent and recent[0] <= now - self._window:
            recent.popleft()
        if len(recent) >= self._failures:
            self._locked_until[address] = now + self._lockout
            self.lockouts += 1
            recent.clear()
        self._recent[address] = recent
        while len(self._recent) > ADDRESSES:
            self._recent.popitem(last=False)
        if len(self._locked_until) > ADDRESSES:
            for stale in [a for a, until in self._locked_until.items() if until <= now]:
                del self._locked_until[stale]

    def succeeded(self, address: str) -> None:
        self._recent.pop(address, None)

    def locked_addresses(self) -> int:
        now = self._clock()
        return sum(1 for until in self._locked_until.values() if until > now)
