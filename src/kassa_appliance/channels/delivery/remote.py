"""Following expected jobs: the outcomes of jobs handed to the Bitrix24 outbox.

While any delivery awaits an outcome, their KASSAJOB items are read every
``poll_interval`` (50 job ids per ``entity.item.get``, through the link's REST client and
so its one budget; never more often than :data:`MIN_SPACING`, however often ``expect``
wakes it), and rarely when none wait. Jobs that are in the local journal are left to the
worker's main loop (it reads their outcome from the journal). A job whose item is not
found ``missing_item_grace`` seconds after it was expected fails with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from kassa_appliance.aio import wait_event
from kassa_appliance.bitrix.errors import BitrixError
from kassa_appliance.channels.delivery.outcomes import RemoteOutcomes, outcome_to_json
from kassa_appliance.channels.delivery.status import LoopErrors
from kassa_appliance.fiscal.journal_deliveries import DeliveryLedger

log = logging.getLogger("kassa_appliance.channels.delivery")

MIN_SPACING = 0.5
"""Seconds between two reads of expected jobs."""
MAX_ERROR_DELAY = 60.0
SECONDS_PER_READ = 1.0
"""A round of N reads waits at least N seconds before the next: with many expected jobs
the polling stays within half the portal's 2 requests/s."""


class ExpectedJobs:
    def __init__(
        self,
        ledger: DeliveryLedger,
        remote: RemoteOutcomes | None,
        *,
        poll_interval: float,
        idle_interval: float,
        missing_item_grace: float,
        errors: LoopErrors,
        resolved: Callable[[], None],
    ) -> None:
        """``remote`` None: no portal (expected jobs wait for the local journal).
        ``resolved`` is called when outcomes were found (or rows failed)."""
        self._ledger = ledger
        self._remote = remote
        self._poll_interval = poll_interval
        self._idle_interval = idle_interval
        self._missing_item_grace = missing_item_grace
        self._errors = errors
        self._resolved = resolved
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        last_read = 0.0
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            delay = self._idle_interval
            try:
                awaiting = self._ledger.awaiting()
                if awaiting and self._remote is not None:
                    delay = self._poll_interval
                    spacing = last_read + MIN_SPACING - loop.time()
                    if spacing > 0:
                        await asyncio.sleep(spacing)
                    last_read = loop.time()
                    reads = self._remote.reads
                    await self._read(self._remote, awaiting)
                    delay = max(delay, (self._remote.reads - reads) * SECONDS_PER_READ)
                failures = 0
            except BitrixError as error:
                failures += 1
                delay = min(MAX_ERROR_DELAY, self._poll_interval * 2**failures)
                log.warning("reply delivery: cannot read expected jobs from Bitrix24: %s", error)
            except Exception as error:
                failures += 1
                self._errors.note(error)
                delay = min(MAX_ERROR_DELAY, self._poll_interval * 2**failures)
                log.exception("reply delivery: reading expected jobs failed")
            await wait_event(self._wake, delay)

    async def _read(
        self, remote: RemoteOutcomes, awaiting: list[tuple[str, str | None, float]]
    ) -> None:
        local = self._ledger.known_jobs([job_id for job_id, _kassa, _at in awaiting])
        wanted = [(job_id, kassa) for job_id, kassa, _at in awaiting if job_id not in local]
        if not wanted:
            return
        outcomes, found = await remote.read(wanted)
        changed = 0
        for job_id, outcome in outcomes.items():
            changed += self._ledger.resolve(job_id, outcome_to_json(outcome))
        now = time.time()
        for job_id, kassa, since in awaiting:
            if job_id in local or job_id in found or now - since < self._missing_item_grace:
                continue
            where = f" of kassa {kassa}" if kassa else ""
            changed += self._ledger.fail_job(
                job_id,
                f"job {job_id}{where} has no KASSAJOB item in Bitrix24 "
                f"{self._missing_item_grace / 3600:g} h after it was expected (deleted, or "
                "never created), and it is not in this appliance's journal",
            )
        if changed:
            self._resolved()
