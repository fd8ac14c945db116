"""Runs CRM automation this appliance hosts inside the daemon, when configured.

With ``automation.enabled`` and a Bitrix24 link: the ``crm`` reply sender is registered with
reply delivery (``context.shared["delivery"]``) and the offline event drain
(:mod:`kassa_appliance.channels.automation.drain`) runs under supervision (an error is
logged and the drain starts again with back-off; the reserved page is taken again, so
nothing is lost or printed twice). Its state is the ``automation`` section of
``status.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from kassa_appliance.aio import stop_tasks
from kassa_appliance.appliance.channel_context import ChannelContext
from kassa_appliance.channels.automation.crm_sender import CrmSender
from kassa_appliance.channels.automation.drain import EventDrain, debug_pause_before_clear
from kassa_appliance.channels.automation.outbox import PlannedJob

log = logging.getLogger(__name__)

STATUS_SECTION = "automation"
RESTART_MIN, RESTART_MAX = 1.0, 60.0


@contextlib.asynccontextmanager
async def run_automation(context: ChannelContext) -> AsyncIterator[None]:
    """Nothing runs unless ``automation.enabled``."""
    config = context.config.automation
    if not config.enabled:
        yield
        return
    if context.link is None:
        log.warning("automation.enabled, but no Bitrix24 portal is configured: not running")
        yield
        return
    rest = context.link.rest
    delivery: Any = context.shared.get("delivery")
    if delivery is None:
        log.error(
            "automation: reply delivery is not running; receipts will print but no result "
            "or refusal is written back to the deals"
        )
    else:
        delivery.register_sender(
            CrmSender(rest, connector=config.connector, fd_field=config.fd_field)
        )

    def expect(job: PlannedJob) -> None:
        if delivery is not None:
            delivery.expect(job.job_id, [job.target], kassa=job.kassa)

    drain = EventDrain(
        rest,
        config,
        context.data_dir / "automation",
        expect=expect,
        pause_before_clear=debug_pause_before_clear(),
    )
    restarts: dict[str, Any] = {"count": 0, "last_error": None}

    def status() -> dict[str, Any]:
        return {
            **drain.snapshot(),
            "restarts": restarts["count"],
            "last_error": restarts["last_error"],
        }

    context.add_status_section(STATUS_SECTION, status)

    async def supervised() -> None:
        delay = RESTART_MIN
        while True:
            try:
                await drain.run()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                restarts["count"] = int(restarts["count"] or 0) + 1
                restarts["last_error"] = f"{type(error).__name__}: {error}"[:500]
                log.exception("automation drain stopped; starting again in %.0f s", delay)
                await asyncio.sleep(delay)
                delay = min(RESTART_MAX, delay * 2)
            else:
                delay = RESTART_MIN

    task = asyncio.create_task(supervised(), name="automation-drain")
    try:
        yield
    finally:
        await stop_tasks([task])
