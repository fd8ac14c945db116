"""The test-only pause between a send and its record (``KASSA_DEBUG_HOOKS=1``).

With ``KASSA_DEBUG_PAUSE_AFTER_DELIVERY_SEND=<marker file>`` the worker, after a sender's
``send`` returned and before the delivery is recorded ``sent``, waits while the marker
file exists: a test SIGKILLs the daemon there to prove that the restarted worker looks
(``find_sent``) before sending again. Inert without ``KASSA_DEBUG_HOOKS=1``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from kassa_appliance.channels.delivery.protocol import Delivery

log = logging.getLogger(__name__)

DEBUG_PAUSE_AFTER_DELIVERY_SEND_ENV = "KASSA_DEBUG_PAUSE_AFTER_DELIVERY_SEND"
POLL_SECONDS = 0.05

PauseAfterSend = Callable[[Delivery], Awaitable[None]]


def debug_pause_after_send(environ: Mapping[str, str] | None = None) -> PauseAfterSend | None:
    """The pause of :data:`DEBUG_PAUSE_AFTER_DELIVERY_SEND_ENV`, or None (always None
    unless ``KASSA_DEBUG_HOOKS=1``)."""
    env = os.environ if environ is None else environ
    target = env.get(DEBUG_PAUSE_AFTER_DELIVERY_SEND_ENV)
    if env.get("KASSA_DEBUG_HOOKS") != "1" or not target:
        return None
    marker = Path(target)

    async def pause(delivery: Delivery) -> None:
        if not marker.exists():
            return
        log.warning(
            "debug hook: paused after sending delivery %s (%s) while %s exists",
            delivery.key,
            delivery.target.get("kind"),
            marker,
        )
        while marker.exists():
            await asyncio.sleep(POLL_SECONDS)

    return pause
