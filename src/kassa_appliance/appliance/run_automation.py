"""Runs CRM automation this appliance hosts inside the daemon, when configured."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from kassa_appliance.appliance.channel_context import ChannelContext


@contextlib.asynccontextmanager
async def run_automation(context: ChannelContext) -> AsyncIterator[None]:
    """Nothing runs unless ``automation.enabled``."""
    yield
