"""Every channel the daemon runs beside the Bitrix24 outbox, started in one fixed order:
reply delivery first (the others register their senders with it), then the bots, CRM
automation, the LAN API and the relay."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from kassa_appliance.appliance.channel_context import ChannelContext
from kassa_appliance.appliance.run_automation import run_automation
from kassa_appliance.appliance.run_b24bot import run_b24bot
from kassa_appliance.appliance.run_delivery import run_delivery
from kassa_appliance.appliance.run_lan import run_lan
from kassa_appliance.appliance.run_maxbot import run_maxbot
from kassa_appliance.appliance.run_relay import run_relay

CHANNELS = (run_delivery, run_b24bot, run_maxbot, run_automation, run_lan, run_relay)


@contextlib.asynccontextmanager
async def running_channels(context: ChannelContext) -> AsyncIterator[ChannelContext]:
    async with contextlib.AsyncExitStack() as stack:
        for run in CHANNELS:
            await stack.enter_async_context(run(context))
        yield context
