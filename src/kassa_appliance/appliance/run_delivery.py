"""Runs reply delivery (channels/delivery) inside the daemon."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from kassa_appliance.appliance.channel_context import ChannelContext


@contextlib.asynccontextmanager
async def run_delivery(context: ChannelContext) -> AsyncIterator[None]:
    yield
