"""Results back without the reply-delivery worker (it is optional in the daemon): the
relay channel watches the jobs it took and publishes each final one itself — to the
results bucket and, with a Bitrix24 link, ``sale.cashbox.check.apply``.

Durable without local state: the jobs taken since start are tracked in memory, and at start
(and after each reconnection) the most recent relay jobs of the journal are compared with
the results bucket, so an outcome a crash kept from being published is published then.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.channels.delivery.protocol import DeliveryFailed, DeliveryRetry
from kassa_appliance.channels.relay.consumer import RelayConsumer
from kassa_appliance.channels.relay.results import ResultsUnavailable, record_for
from kassa_appliance.channels.relay.senders import apply_check
from kassa_appliance.channels.relay.wire import SOURCE, STATUS_WAIT
from kassa_appliance.fiscal.journal import Job, JobState, Journal

log = logging.getLogger(__name__)
SWEEP_JOBS = 2000
IDLE_SECONDS = 2.0

_STATES = {JobState.FISCALIZED: "done", JobState.FAILED: "failed"}


class ResultPublisher:
    def __init__(self, consumer: RelayConsumer, journal: Journal, rest: RestClient | None) -> None:
        self._consumer = consumer
        self._journal = journal
        self._rest = rest
        self._pending: set[str] = set()
        self._changed = asyncio.Event()
        self.published = 0

    def track(self, job_id: str) -> None:
        self._pending.add(job_id)
        self._changed.set()

    def on_engine_change(self, _status: object) -> None:
        self._changed.set()

    async def run(self) -> None:
        while True:
            await self._consumer.connected.wait()
            try:
                await self._sweep()
                while self._consumer.connected.is_set():
                    self._changed.clear()
                    for job_id in sorted(self._pending):
                        job = self._journal.get(job_id)
                        if job is None or job.state.is_final:
                            if job is not None:
                                await self._publish(job)
                            self._pending.discard(job_id)
                    try:
                        await asyncio.wait_for(self._changed.wait(), IDLE_SECONDS)
                    except TimeoutError:
                        pass
            except (ResultsUnavailable, DeliveryRetry) as error:
                log.warning("relay results: %s; trying again", error)
                await asyncio.sleep(1.0)

    async def _sweep(self) -> None:
        results = self._consumer.results
        assert results is not None
        for job in self._journal.recent(SWEEP_JOBS):
            if job.source != SOURCE:
                continue
            if not job.state.is_final:
                self._pending.add(job.id)
                continue
            target = _target(job, "relay")
            if target is None:
                continue
            record = await results.get(str(target.get("key")))
            if record is None or record.get("status") == STATUS_WAIT:
                await self._publish(job)

    async def _publish(self, job: Job) -> None:
        results = self._consumer.results
        if results is None:
            raise ResultsUnavailable("not connected")
        relay = _target(job, "relay")
        if relay is None:
            return
        record = record_for(
            check=job.id,
            state=_STATES.get(job.state, "cancelled"),
            result=job.result,
            qr=job.qr,
            error_code=job.error_code,
            error_message=job.error_message,
            printed_at=job.updated_at,
            meta=relay.get("meta") if isinstance(relay.get("meta"), dict) else None,
        )
        await results.put(str(relay.get("key")), record)
        cashbox = _target(job, "cashbox")
        if cashbox is not None and self._rest is not None:
            try:
                await apply_check(self._rest, str(cashbox.get("uuid")), record)
            except DeliveryFailed as error:
                log.warning("relay: %s", error)
        self.published += 1


def _target(job: Job, kind: str) -> dict[str, Any] | None:
    targets = (job.reply or {}).get("targets")
    if not isinstance(targets, list):
        return None
    for target in targets:
        if isinstance(target, dict) and target.get("kind") == kind:
            return target
    return None
