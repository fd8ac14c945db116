"""Small asyncio helpers shared by the long-running loops."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; True if it is set.

    Uses ``asyncio.timeout`` rather than ``wait_for``: Python 3.11's ``wait_for`` can
    swallow a cancellation that arrives together with its timeout, and a loop that
    suppresses the timeout then runs on after it was told to stop (seen as a daemon
    that never exits on SIGTERM).
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
