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
* Doorbells are coalesced: the push loop only rings (:mod:`~kassa_appliance.bitrix.doorbells`),
  the doorbell loop reads every new item of this kassa in item-id order, 50 per request
  (:mod:`~kassa_appliance.bitrix.reading`), so jobs are fiscalised in the order Bitrix24
  stored them.
* :meth:`JobLink.reconcile` lists ``new``/``accepted`` jobs (and ``cancelled`` ones not yet
  answered) for this kassa on every (re)connect, every 60 s while the push connection is
  down and every 5 minutes while it is up, so nothing depends on a push arriving.
* An item that cannot be taken (TASK or REPLY beyond the input limits, not JSON, an unusable
  NAME, or anything unforeseen) is answered ``failed`` with its reason and never taken again
  (:mod:`~kassa_appliance.bitrix.incoming`).
* Write-backs are driven from the journal (``unreported()`` → ``mark_reported()``), in
  batches bounded by count and bytes that also carry the state event for the app and the
  heartbeat (:mod:`~kassa_appliance.bitrix.reporting`), retried with back-off until
  Bitrix24 accepts them, across restarts; one outcome the portal refuses is sent alone,
  then shortened, then given up, so it never holds up the others
  (:mod:`~kassa_appliance.bitrix.writeback`).
* Every loop is supervised (:mod:`~kassa_appliance.bitrix.supervisor`): an unexpected error
  is logged, counted for ``status`` and the loop restarts.

The coupling to the local engine is the one small :class:`EnginePort` adapter.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kassa_appliance.aio import wait_event
from kassa_appliance.bitrix.budget import budget_roomy
from kassa_appliance.bitrix.departments import DepartmentDirectory as Directory
from kassa_appliance.bitrix.doorbells import Doorbells
from kassa_appliance.bitrix.engine_port import EngineAdapter, EnginePort
from kassa_appliance.bitrix.errors import BitrixError
from kassa_appliance.bitrix.heartbeat import DeviceHeartbeat
from kassa_appliance.bitrix.intake import Intake
from kassa_appliance.bitrix.parsing import job_id_problem
from kassa_appliance.bitrix.protocol import (
    DEVICE_ENTITY,
    JOB_ENTITY,
    JOB_PROPERTIES,
    STATE_ACCEPTED,
    STATE_CANCELLED,
    STATE_DONE,
    STATE_FAILED,
    STATE_NEW,
    StoredJob,
)
from kassa_appliance.bitrix.reading import JobReader
from kassa_appliance.bitrix.reporting import ACCEPT_DELAY, Reporter
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.bitrix.storage import ensure_storage, publish_job
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
"""Reconciliation while live doorbells cannot be relied on (no push connection)."""
CONNECTED_RECONCILE_INTERVAL = 300.0
"""Reconciliation while the push connection is up (and after every reconnect)."""
HEARTBEAT_INTERVAL = 300.0
HEARTBEAT_MIN_GAP = 5.0
REPORT_SWEEP_INTERVAL = 5.0
READ_SPACING = 1.0
"""Seconds between doorbell reads while doorbells keep coming: the first bell after a
quiet spell is read at once, later ones gather for one read (one request per 50 jobs)."""
WRITE_SPACING = 2.0
"""Seconds between write-back rounds while outcomes keep coming (the same idea). With
reads at most every second, a steady stream of receipts costs at most 1.5 requests/s,
within the portal's 2/s."""
WRITE_LINGER = 0.05
"""A write-back waits this long after the first news so a batch gathers what belongs
together (the outcome, its state event, the heartbeat)."""


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
        connected_reconcile_interval: float = CONNECTED_RECONCILE_INTERVAL,
        live: Callable[[], bool] = lambda: False,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        heartbeat_min_gap: float = HEARTBEAT_MIN_GAP,
        sweep_interval: float = REPORT_SWEEP_INTERVAL,
        read_spacing: float = READ_SPACING,
        write_spacing: float = WRITE_SPACING,
        write_linger: float = WRITE_LINGER,
        accept_delay: float = ACCEPT_DELAY,
        retry_base: float = 1.0,
        retry_max: float = 60.0,
        health: LinkHealth | None = None,
    ) -> None:
        """``live()`` says whether live doorbells arrive (the push connection is up)."""
        self._rest = rest
        self._last_round_outcomes = 0
        self._engine = engine
        self.kassa_id = kassa_id
        self._reconcile_interval = reconcile_interval
        self._connected_reconcile_interval = connected_reconcile_interval
        self._live = live
        self._heartbeat_min_gap = heartbeat_min_gap
        self._sweep_interval = sweep_interval
        self._read_spacing = read_spacing
        self._write_spacing = write_spacing
        self._write_linger = write_linger
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
        self._reader = JobReader(
            rest, self._intake, is_final=self._is_final, is_known=self._is_known
        )
        self.doorbells = Doorbells()
        self._heartbeat = DeviceHeartbeat(
            rest,
            kassa_id=kassa_id,
            device_status=device_status or (lambda: {}),
            interval=heartbeat_interval,
            min_gap=heartbeat_min_gap,
        )
        self._reporter = Reporter(
            rest,
            engine,
            self._intake,
            self.health,
            heartbeat=self._heartbeat,
            accept_delay=accept_delay,
        )
        self._storage_ready = False
        self._tasks: list[asyncio.Task[None]] = []
        engine.on_change(self._on_engine_change)

    @property
    def rest(self) -> RestClient:
        """The link's REST client: the one budget every REST caller of this portal shares."""
        return self._rest

    def set_allowed_users(self, users: frozenset[int]) -> None:
        """Who may create jobs from now on (central settings; empty: anyone)."""
        self._intake.creators.users = frozenset(users)

    def set_allowed_departments(self, ids: frozenset[int], lookup: Directory | None = None) -> None:
        """Whose users (sub-departments too) may also create jobs; ``lookup``: bitrix_link's."""
        self._intake.creators.set_departments(ids, lookup)

    async def ensure_storage(self) -> None:
        """Create KASSAJOB/KASSADEV and their properties where missing (idempotent)."""
        await ensure_storage(self._rest)
        self._storage_ready = True

    # -- incoming jobs ------------------------------------------------------------------

    def _is_known(self, job_id: str) -> bool:
        return self._engine.get(job_id) is not None

    def _is_final(self, job_id: str) -> bool:
        known = self._engine.get(job_id)
        return known is not None and known.state.is_final

    def _worth_reading(self, params: Mapping[str, Any]) -> str | None:
        """The job id of a ``kassa.job`` doorbell that needs a read, else None."""
        job_id = str(params.get("job") or "")
        kassa = params.get("kassa")
        if not job_id:
            log.warning("doorbell without a job id ignored")
            return None
        if kassa is not None and str(kassa) != self.kassa_id:
            log.debug("doorbell for kassa %s ignored (this is %s)", kassa, self.kassa_id)
            return None
        problem = job_id_problem(job_id)
        if problem is not None:  # the stored item (if any) is answered by reconciliation
            log.warning("doorbell ignored: %s", problem)
            self.request_reconcile()
            return None
        if self._is_final(job_id):
            return None  # repeated doorbell (a non-final job may have been cancelled: look)
        return job_id

    def ring(self, params: Mapping[str, Any]) -> None:
        """A ``kassa.job`` doorbell from the push loop: noted at once, read by the doorbell
        loop together with the others rung meanwhile (never awaits)."""
        job_id = self._worth_reading(params)
        if job_id is not None:
            self.doorbells.ring(job_id, known=self._is_known(job_id))

    async def on_doorbell(self, params: Mapping[str, Any]) -> None:
        """Handle one ``kassa.job`` doorbell now: read the new items (and this job's)."""
        job_id = self._worth_reading(params)
        if job_id is not None:
            await self._reader.read_rung({job_id: self._is_known(job_id)})

    async def reconcile(self) -> int:
        """Pick up every new/accepted job for this kassa, and act on the cancelled ones not
        yet answered; returns how many jobs were new."""
        return await self._reader.reconcile()

    def request_reconcile(self) -> None:
        self._reconcile_needed.set()

    async def on_connect(self) -> None:
        """Push&Pull (re)connected: reconcile now (a doorbell may have been missed)."""
        self.request_reconcile()

    def _on_engine_change(self) -> None:
        self._report_needed.set()
        self._status_changed.set()

    @property
    def reads(self) -> int:
        """``entity.item.get`` requests made for jobs so far."""
        return self._reader.reads

    # -- write-back ---------------------------------------------------------------------

    async def report_pending(self) -> int:
        """Write in-place answers, due STATE=accepted marks and finished outcomes back;
        returns outcomes accepted by Bitrix24. Raises BitrixError when the portal cannot be
        reached (what was settled before stays settled)."""
        reported = await self._reporter.report_pending()
        self._last_round_outcomes = reported
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
        """Bootstrap storage, then read doorbells / reconcile / report / heartbeat until
        cancelled; every loop is supervised, so only cancelling ends this."""
        await supervised(
            "storage bootstrap",
            lambda: self._retrying("storage bootstrap", self.ensure_storage),
            self.health,
            self.backoff,
        )
        self._reconcile_needed.set()
        self._report_needed.set()
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            "doorbells": self._doorbell_loop,
            "reconciliation": self._reconcile_loop,
            "write-back": self._report_loop,
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

    async def _doorbell_loop(self) -> None:
        """Read rung doorbells, coalesced: the first bell after a quiet spell is read at
        once, later ones wait until ``read_spacing`` seconds after the previous read and
        are read together. A failed read leaves the jobs to reconciliation."""
        loop = asyncio.get_running_loop()
        last_read = -self._read_spacing
        failures = 0
        while True:
            await self.doorbells.ready.wait()
            pause = last_read + self._read_spacing - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            rung, overflowed = self.doorbells.take()
            if overflowed:
                self.request_reconcile()
            last_read = loop.time()
            try:
                await self._reader.read_rung(rung)
                failures = 0
            except BitrixError as exc:
                failures += 1
                log.warning("doorbell read failed (%s); reconciliation picks the jobs up", exc)
                self.request_reconcile()
                await asyncio.sleep(self.backoff(failures))

    async def _reconcile_loop(self) -> None:
        while True:
            interval = (
                self._connected_reconcile_interval if self._live() else self._reconcile_interval
            )
            await wait_event(self._reconcile_needed, interval)
            self._reconcile_needed.clear()
            await self._retrying("reconciliation", self.reconcile)

    async def _report_loop(self) -> None:
        """Write back whenever there is news, gathering it: ``write_linger`` after the first
        news after a quiet spell, else not before ``write_spacing`` seconds after the
        previous round (a round sends all there is, in as many batches as it takes); and
        when a held-back accepted mark becomes due."""
        loop = asyncio.get_running_loop()
        last_round = -self._write_spacing
        while True:
            interval = self._sweep_interval
            due = self._reporter.next_due
            if due is not None:
                interval = max(0.0, min(interval, due - loop.time()))
            await wait_event(self._report_needed, interval)
            gap = last_round + self._write_spacing - loop.time()
            await asyncio.sleep(max(self._write_linger, gap))
            self._report_needed.clear()
            last_round = loop.time()
            self._last_round_outcomes = 0
            await self._retrying("write-back to Bitrix24", self.report_pending)
            if self._reporter.more_to_send:
                last_round = -self._write_spacing  # a full round: go on at once
            elif self._last_round_outcomes <= 1 and budget_roomy(self._rest.budget):
                # A quiet kassa (a round with one outcome at most, the REST budget half
                # full or more) does not hold the next sale's outcome back by the
                # spacing: that outcome is what the cashier waits for. Under load the
                # rounds carry many outcomes or drain the budget, and the spacing is back,
                # so a burst still gathers them (< 0.1 requests per receipt).
                last_round = -self._write_spacing

    async def _heartbeat_loop(self) -> None:
        """Find (or create) the KASSADEV item, then ask the write-back for a heartbeat when
        one is wanted on its own; otherwise heartbeats ride in write-back batches."""
        while True:
            try:
                if not self._heartbeat.known:
                    await self._heartbeat.beat(force=True)
                elif self._heartbeat.wanted():
                    self._report_needed.set()
            except BitrixError as exc:
                log.warning("heartbeat failed: %s", exc)
            await wait_event(self._status_changed, self._heartbeat_min_gap)
            self._status_changed.clear()
