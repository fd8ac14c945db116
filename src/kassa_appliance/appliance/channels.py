"""Every channel the daemon runs beside the Bitrix24 outbox, started in one fixed order:
reply delivery first (the others register their senders with it), then the bots, CRM
automation, the LAN API and the relay.

A channel's runner (``appliance/run_<name>.py``) is imported only when its section is
``enabled``: the LAN API's HTTP server, the relay's NATS client and the bots cost the
daemon megabytes of memory it should not carry on an appliance that uses none of them.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import cast

from kassa_appliance.appliance.channel_context import ChannelContext

Runner = Callable[[ChannelContext], AbstractAsyncContextManager[None]]

ALWAYS = ("delivery",)
"""Reply delivery runs on every appliance: LAN and relay jobs need no portal."""
CHANNELS = ("delivery", "b24bot", "maxbot", "automation", "lan", "relay")


def wanted(context: ChannelContext, name: str) -> bool:
    return name in ALWAYS or bool(getattr(getattr(context.config, name), "enabled", False))


def runner(name: str) -> Runner:
    module = importlib.import_module(f"kassa_appliance.appliance.run_{name}")
    return cast(Runner, getattr(module, f"run_{name}"))


@contextlib.asynccontextmanager
async def running_channels(context: ChannelContext) -> AsyncIterator[ChannelContext]:
    async with contextlib.AsyncExitStack() as stack:
        for name in CHANNELS:
            if wanted(context, name):
                await stack.enter_async_context(runner(name)(context))
        yield context
