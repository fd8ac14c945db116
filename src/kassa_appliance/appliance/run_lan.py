"""Runs the LAN API (Web Requests and KKMServer compatible) in the daemon, when configured."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from kassa_appliance.appliance.channel_context import ChannelContext


@contextlib.asynccontextmanager
async def run_lan(context: ChannelContext) -> AsyncIterator[None]:
    """Nothing runs unless ``lan.enabled``."""
    yield
