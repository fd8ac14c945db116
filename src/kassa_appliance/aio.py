"""Small asyncio helpers shared by the long-running loops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


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


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], *, ignore_errors: bool = False) -> None:
    """Cancel ``tasks`` and wait for each to end (a channel runner's shutdown).

    A task's own cancellation is expected and swallowed; with ``ignore_errors`` so is any
    error it ended with (one that already failed must not keep the others from stopping).
    """
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    ignored: tuple[type[BaseException], ...] = (
        (asyncio.CancelledError, Exception) if ignore_errors else (asyncio.CancelledError,)
    )
    for task in tasks:
        with contextlib.suppress(*ignored):
            await task
