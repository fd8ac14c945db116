"""Runs the MAX bot this appliance hosts inside the daemon, when configured."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from kassa_appliance.appliance.channel_context import ChannelContext


@contextlib.asynccontextmanager
async def run_maxbot(context: ChannelContext) -> AsyncIterator[None]:
    """Nothing runs unless ``maxbot.enabled``."""
    yield
