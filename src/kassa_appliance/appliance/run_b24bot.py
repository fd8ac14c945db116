"""Runs the Bitrix24 chat bot (imbot.v2) this appliance hosts inside the daemon, when configured."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from kassa_appliance.appliance.channel_context import ChannelContext


@contextlib.asynccontextmanager
async def run_b24bot(context: ChannelContext) -> AsyncIterator[None]:
    """Nothing runs unless ``b24bot.enabled``."""
    yield
