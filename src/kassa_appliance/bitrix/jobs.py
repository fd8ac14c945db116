"""The Bitrix24 job protocol (ARCHITECTURE §2): storage is the truth, a push is a doorbell.

* ``KASSAJOB`` items (NAME = job id) carry KASSA, STATE (new → accepted → done | failed, or
  ``cancelled`` by an operator), TASK (Atol JSON), SOURCE, REPLY; the appliance writes
  RESULT (fiscal params + QR) or ERROR (``{"code", "message"}``) back
  (:mod:`~kassa_appliance.bitrix.protocol`).
* ``KASSADEV`` holds one item per kassa (NAME = kassa id) with the device status, kept
  current on change and at least every 5 minutes.
* A doorbell (``kassa.job``, ``{job, kassa}``) has no trustworthy sender: only the stored
  item is acted on, its CREATED_BY is recorded, and with ``bitrix.allowed-users`` set a job
  from anyone else is failed with a clear reason — never fiscalised.
* :meth:`JobLink.reconcile` lists ``new``/``accepted`` jobs (and ``cancelled`` ones not yet
  answered) for this kassa on every (re)connect and every 60 s, so nothing depends on a
  push arriving.
* An item that cannot be taken (TASK or REPLY beyond the input limits, not JSON, an unusable
  NAME, or anything unforeseen) is answered ``failed`` with its reason and never taken again
  (:mod:`~kassa_appliance.bitrix.incoming`).
* Write-backs are driven from the journal (``unreported()`` → ``mark_reported()``), in
  batches bounded by count and bytes, retried with back-off until Bitrix24 accepts them,
  across restarts; one outcome the portal refuses is sent alone, then shortened, then given
  up, so it never holds up the others (:mod:`~kassa_appliance.bitrix.writeback`).
* Every loop is supervised (:mod:`~kassa_appliance.bitrix.supervisor`): an unexpected error
  is logged, counted for ``status`` and the loop restarts.

The coupling to the local engine is the one small :class:`EnginePort` adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kassa_appliance.aio import wait_event
from kassa_appliance.bitrix.engine_port import EngineAdapter, EnginePort
from kassa_appliance.bitrix.errors import AlreadyExists, BitrixError, NotFound
from kassa_appliance.bitrix.heartbeat import DeviceHeartbeat
from kassa_appliance.bitrix.intake import Intake
from kassa_appliance.bitrix.parsing import job_id_problem
from kassa_appliance.bitrix.protocol import (
    DEVICE_ENTITY,
    DEVICE_PROPERTIES,
    JOB_ENTITY,
    JOB_PROPERTIES,
    STATE_ACCEPTED,
    STATE_CANCELLED,
    STATE_DONE,
    STATE_FAILED,
    STATE_NEW,
    StoredJob,
    dumps,
    item_property,
)
from kassa_appliance.bitrix.reporting import Reporter
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.bitrix.supervisor import LinkHealth, supervised
from kassa_appliance.bitrix.writeback import outcome_properties

__all__ = [
    "DEVICE_ENTITY",
    "JOB_ENTITY",
    "JOB_PROPERTIES",
    "STATE_ACCEPTED",
    "STATE_CANCELLED",
    "STATE_DONE",
    "STATE_FAILED",
    "STATE_NEW",
    "EngineAdapter",
    "EnginePort",
    "JobLink",
    "StoredJob",
    "outcome_properties",
    "publish_job",
]

log = logging.getLogger(__name__)

RECONCILE_INTERVAL = 60.0
HEARTBEAT_INTERVAL = 300.0
HEARTBEAT_MIN_GAP = 5.0
REPORT_SWEEP_INTERVAL = 5.0


class JobLink:
    def __init__(
        self,
        rest: RestClient,
        engine: EngineAdapter,
        *,
        kassa_id: str,
        allowed_users: frozenset[int] = frozenset(),
        device_status: Callable[[], dict[str, Any]] | None = None,
        reconcile_interval: float = RECONCILE_INTERVAL,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        heartbeat_min_gap: float = HEARTBEAT_MIN_GAP,
        sweep_interval: float = REPORT_SWEEP_INTERVAL,
        retry_base: float = 1.0,
        retry_max: float = 60.0,
        health: LinkHealth | None = None,
    ) -> None:
        self._rest = rest
        self._engine = engine
        self.kassa_id = kassa_id
        self._reconcile_interval = reconcile_interval
        self._heartbeat_min_gap = heartbeat_min_gap
        self._sweep_interval = sweep_interval
        self._retry_base = retry_base
        self._retry_max = retry_max
        self.health = health or LinkHealth()
        self._report_needed = asyncio.Event()
        self._reconcile_needed = asyncio.Event()
        self._status_changed = asyncio.Event()
        self._intake = Intake(
            engine,
            kassa_id=kassa_id,
            allowed_users=allowed_users,
            health=self.health,
            wake_reporter=self._report_needed.set,
        )
        self._heartbeat = DeviceHeartbeat(
            rest,
            kassa_id=kassa_id,
            device_status=device_status or (lambda: {}),
            interval=heartbeat_interval,
            min_gap=heartbeat_min_gap,
        )
        self._reporter = Reporter(rest, engine, self._intake, self.health)
        self._storage_ready = False
        self._tasks: list[asyncio.Task[None]] = []
        engine.on_change(self._on_engine_change)

    # -- storage bootstrap --------------------------------------------------------------

    async def ensure_storage(self) -> None:
        """Create KASSAJOB/KASSADEV and their properties where missing (idempotent)."""
        await self._ensure_entity(JOB_ENTITY, "Kassa jobs", {"AU": "W"}, JOB_PROPERTIES)
        await self._ensure_entity(DEVICE_ENTITY, "Kassa devices", {"AU": "R"}, DEVICE_PROPERTIES)
        self._storage_ready = True

    async def _ensure_entity(
        self, entity: str, name: str, access: dict[str, str], properties: tuple[str, ...]
    ) -> None:
        try:
            await self._rest.result("entity.get", {"ENTITY": entity})
        except NotFound:
            log.info("creating Bitrix24 storage %s", entity)
            with contextlib.suppress(AlreadyExists):
                await self._rest.result(
                    "entity.add", {"ENTITY": entity, "NAME": name, "ACCESS": access}
                )
        existing = await self._rest.result("entity.item.property.get", {"ENTITY": entity})
        have = {str(p.get("PROPERTY")) for p in existing or [] if isinstance(p, Mapping)}
        missing = [code for code in properties if code not in have]
        if not missing:
            return
        items = await self._rest.batch(
            [
                ("entity.item.property.add", {"ENTITY": entity, "PROPERTY": c, "NAME": c})
                for c in missing
            ]
        )
        for code, item in zip(missing, items, strict=True):
            if item.error is not None and not isinstance(item.error, AlreadyExists):
                raise item.error
            log.info("added property %s.%s", entity, code)

    # -- incoming jobs ------------------------------------------------------------------

    async def on_doorbell(self, params: Mapping[str, Any]) -> None:
        """Handle a ``kassa.job`` doorbell: fetch the stored item and act on it."""
        job_id = str(params.get("job") or "")
        kassa = params.get("kassa")
        if not job_id:
            log.warning("doorbell without a job id ignored")
            return
        if kassa is not None and str(kassa) != self.kassa_id:
            log.debug("doorbell for kassa %s ignored (this is %s)", kassa, self.kassa_id)
            return
        problem = job_id_problem(job_id)
        if problem is not None:  # the stored item (if any) is answered by reconciliation
            log.warning("doorbell ignored: %s", problem)
            self.request_reconcile()
            return
        known = self._engine.get(job_id)
        if known is not None and known.state.is_final:
            return  # repeated doorbell (a non-final job may have been cancelled: look)
        items = await self._rest.result(
            "entity.item.get",
            {"ENTITY": JOB_ENTITY, "FILTER": {"NAME": job_id}, "SORT": {"ID": "ASC"}},
        )
        for raw in items or []:
            if not isinstance(raw, Mapping):
                continue
            if raw.get("NAME") == job_id and item_property(raw, "KASSA") == self.kassa_id:
                self._intake.take_item(raw)
                return
        if known is None:
            log.warning("doorbell for job %s but no such KASSAJOB item for this kassa", job_id)

    async def reconcile(self) -> int:
        """Pick up every new/accepted job for this kassa, and act on the cancelled ones not
        yet answered; returns how many jobs were new."""
        base = {"ENTITY": JOB_ENTITY, "SORT": {"ID": "ASC"}}
        items = await self._rest.list_all(
            "entity.item.get",
            {
                **base,
                "FILTER": {
                    "PROPERTY_KASSA": self.kassa_id,
                    "PROPERTY_STATE": [STATE_NEW, STATE_ACCEPTED],
                },
            },
        )
        # An answered cancel carries ERROR, so only unanswered ones are listed again.
        items += await self._rest.list_all(
            "entity.item.get",
            {
                **base,
                "FILTER": {
                    "PROPERTY_KASSA": self.kassa_id,
                    "PROPERTY_STATE": STATE_CANCELLED,
                    "PROPERTY_ERROR": False,
                },
            },
        )
        taken = sum(1 for raw in items if self._intake.take_item(raw))
        if taken:
            log.info("reconciliation picked up %d job(s)", taken)
        return taken

    def request_reconcile(self) -> None:
        self._reconcile_needed.set()

    async def on_connect(self) -> None:
        """Push&Pull (re)connected: reconcile now (a doorbell may have been missed)."""
        self.request_reconcile()

    def _on_engine_change(self) -> None:
        self._report_needed.set()
        self._status_changed.set()

    # -- write-back ---------------------------------------------------------------------

    async def report_pending(self) -> int:
        """Write in-place answers, STATE=accepted marks and finished outcomes back; returns
        outcomes accepted by Bitrix24. Raises BitrixError when the portal cannot be
        reached (what was settled before stays settled)."""
        reported = await self._reporter.report_pending()
        if self._reporter.more_to_send:
            self._report_needed.set()
        return reported

    async def heartbeat(self, *, force: bool = False) -> bool:
        """Update the KASSADEV item if the status changed or it is due; True if written."""
        return await self._heartbeat.beat(force=force)

    # -- the loops ----------------------------------------------------------------------

    def tasks(self) -> list[asyncio.Task[None]]:
        """The running loops (for health checks and tests)."""
        return list(self._tasks)

    async def run(self) -> None:
        """Bootstrap storage, then reconcile / report / heartbeat until cancelled; every
        loop is supervised, so only cancelling ends this."""
        await supervised(
            "storage bootstrap",
            lambda: self._retrying("storage bootstrap", self.ensure_storage),
            self.health,
            self.backoff,
        )
        self._reconcile_needed.set()
        self._report_needed.set()
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            "reconciliation": lambda: self._retrying_loop(
                self._reconcile_needed, self._reconcile_interval, self.reconcile, "reconciliation"
            ),
            "write-back": lambda: self._retrying_loop(
                self._report_needed,
                self._sweep_interval,
                self.report_pending,
                "write-back to Bitrix24",
            ),
            "heartbeat": self._heartbeat_loop,
        }
        async with asyncio.TaskGroup() as group:
            self._tasks = [
                group.create_task(
                    supervised(name, body, self.health, self.backoff), name=f"bitrix-{name}"
                )
                for name, body in loops.items()
            ]

    async def _retrying(self, what: str, action: Callable[[], Awaitable[object]]) -> None:
        attempt = 0
        while True:
            try:
                await action()
                return
            except BitrixError as exc:
                attempt += 1
                delay = self.backoff(attempt)
                log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
                await asyncio.sleep(delay)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1, 2, …): exponential, with jitter."""
        ceiling = min(self._retry_max, self._retry_base * 2 ** min(max(attempt, 1) - 1, 10))
        return random.uniform(ceiling / 2, ceiling)

    async def _retrying_loop(
        self,
        needed: asyncio.Event,
        interval: float,
        work: Callable[[], Awaitable[object]],
        what: str,
    ) -> None:
        """Run ``work`` whenever ``needed`` is set and at least every ``interval``; Bitrix24
        failures are retried with back-off (the work is idempotent: it starts from the
        journal and the portal's state)."""
        while True:
            await wait_event(needed, interval)
            needed.clear()
            await self._retrying(what, work)

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self._heartbeat.beat()
            except BitrixError as exc:
                log.warning("heartbeat failed: %s", exc)
            await wait_event(self._status_changed, self._heartbeat_min_gap)
            self._status_changed.clear()


async def publish_job(
    rest: RestClient,
    *,
    job_id: str,
    kassa: str,
    task: Any,
    source: str = "cli",
    reply: dict[str, Any] | None = None,
    ring: bool = True,
) -> int:
    """What a producer (the Bitrix24 app, a bot, ``kassa-appliance send-job``) does: store a
    KASSAJOB item (STATE=new), then ring the doorbell. Returns the item id."""
    item_id = await rest.result(
        "entity.item.add",
        {
            "ENTITY": JOB_ENTITY,
            "NAME": job_id,
            "PROPERTY_VALUES": {
                "KASSA": kassa,
                "STATE": STATE_NEW,
                "TASK": task if isinstance(task, str) else dumps(task),
                "SOURCE": source,
                "REPLY": "" if reply is None else dumps(reply),
            },
        },
    )
    if ring:
        await rest.result(
            "pull.application.event.add",
            {"COMMAND": "kassa.job", "PARAMS": {"job": job_id, "kassa": kassa}},
        )
    return int(item_id)
