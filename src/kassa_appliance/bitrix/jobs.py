"""The Bitrix24 job protocol (ARCHITECTURE §2): storage is the truth, a push is a doorbell.

* ``KASSAJOB`` items (NAME = job id) carry KASSA, STATE (new → accepted → done | failed),
  TASK (Atol JSON), SOURCE, REPLY; the appliance writes RESULT (fiscal params + QR) or
  ERROR (``{"code", "message"}``) back.
* ``KASSADEV`` holds one item per kassa (NAME = kassa id) with the device status, kept
  current on change and at least every 5 minutes.
* A doorbell (``kassa.job``, ``{job, kassa}``) has no trustworthy sender: only the stored
  item is acted on, its CREATED_BY is recorded, and with ``bitrix.allowed-users`` set a job
  from anyone else is failed with a clear reason — never fiscalised.
* :meth:`JobLink.reconcile` lists ``new``/``accepted`` jobs for this kassa on every
  (re)connect and every 60 s, so nothing depends on a push arriving.
* Write-backs are driven from the journal (``unreported()`` → ``mark_reported()``), batched
  (≤ 50 per request) and retried with back-off until Bitrix24 accepts them, across restarts.

The coupling to the local engine is the one small :class:`EnginePort` adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kassa_appliance.aio import wait_event
from kassa_appliance.bitrix.errors import AlreadyExists, BitrixError, NotFound
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.journal import Job, JobState, Journal

log = logging.getLogger(__name__)

JOB_ENTITY = "KASSAJOB"
DEVICE_ENTITY = "KASSADEV"
JOB_PROPERTIES = ("KASSA", "STATE", "TASK", "SOURCE", "REPLY", "RESULT", "ERROR")
DEVICE_PROPERTIES = ("KASSA", "STATUS", "SEEN")
STATE_NEW = "new"
STATE_ACCEPTED = "accepted"
STATE_DONE = "done"
STATE_FAILED = "failed"
SOURCE = "bitrix"

RECONCILE_INTERVAL = 60.0
HEARTBEAT_INTERVAL = 300.0
HEARTBEAT_MIN_GAP = 5.0
REPORT_SWEEP_INTERVAL = 5.0


class EnginePort(Protocol):
    """What the job link needs from the local engine (see :class:`EngineAdapter`)."""

    @property
    def journal(self) -> Journal: ...

    def wake(self) -> None: ...

    def add_listener(self, listener: Callable[[Any], None]) -> None: ...


class EngineAdapter:
    """The one place that knows the Journal/Engine API.

    ``submit`` records a job for the engine and wakes it. ``refuse`` records a job as
    failed without it ever being runnable: the stored task is a marker the engine rejects,
    and the FAILED transition follows in the same event-loop step (no await in between),
    so neither the engine nor a crash can fiscalise a refused job.
    """

    def __init__(self, engine: EnginePort) -> None:
        self._engine = engine

    @property
    def journal(self) -> Journal:
        return self._engine.journal

    def on_change(self, callback: Callable[[], None]) -> None:
        self._engine.add_listener(lambda _status: callback())

    def get(self, job_id: str) -> Job | None:
        return self.journal.get(job_id)

    def submit(
        self, job_id: str, task: Any, *, reply: dict[str, Any] | None, created_by: int | None
    ) -> bool:
        _job, created = self.journal.submit(
            job_id, task, source=SOURCE, reply=reply, created_by=created_by, needs_report=True
        )
        if created:
            self._engine.wake()
        return created

    def refuse(self, job_id: str, *, code: str, reason: str, created_by: int | None) -> bool:
        _job, created = self.journal.submit_failed(
            job_id,
            {"refused": code},
            source=SOURCE,
            error_code=code,
            error_message=reason,
            created_by=created_by,
            needs_report=True,
        )
        return created

    def unreported(self, limit: int) -> list[Job]:
        return [j for j in self.journal.unreported(limit) if j.source == SOURCE]

    def mark_reported(self, job_id: str) -> None:
        self.journal.mark_reported(job_id)


@dataclass(frozen=True)
class StoredJob:
    """A KASSAJOB item as read from Bitrix24."""

    item_id: int
    job_id: str
    kassa: str
    state: str
    task_text: str
    source: str
    reply_text: str
    created_by: int | None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> StoredJob:
        props = item.get("PROPERTY_VALUES") or {}
        if not isinstance(props, Mapping):
            props = {}

        def text(name: str) -> str:
            value = props.get(name)
            return "" if value in (None, False) else str(value)

        created = item.get("CREATED_BY")
        return cls(
            item_id=int(item["ID"]),
            job_id=str(item.get("NAME") or ""),
            kassa=text("KASSA"),
            state=text("STATE") or STATE_NEW,
            task_text=text("TASK"),
            source=text("SOURCE"),
            reply_text=text("REPLY"),
            created_by=int(str(created)) if str(created or "").isdigit() else None,
        )


def outcome_properties(job: Job) -> dict[str, str]:
    """PROPERTY_VALUES for a finished job: STATE=done + RESULT, or STATE=failed + ERROR."""
    if job.state in (JobState.FISCALIZED, JobState.REPORTED):
        result: dict[str, Any] = {}
        if isinstance(job.result, dict):
            params = job.result.get("fiscalParams")
            result["fiscalParams"] = params if isinstance(params, dict) else None
            if not isinstance(params, dict):
                result["result"] = job.result
        if job.qr:
            result["qr"] = job.qr
        return {"STATE": STATE_DONE, "RESULT": _dumps(result), "ERROR": ""}
    error = {"code": job.error_code or "failed", "message": job.error_message or "job failed"}
    return {"STATE": STATE_FAILED, "ERROR": _dumps(error), "RESULT": ""}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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
    ) -> None:
        self._rest = rest
        self._engine = engine
        self.kassa_id = kassa_id
        self._allowed = allowed_users
        self._device_status = device_status or (lambda: {})
        self._reconcile_interval = reconcile_interval
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat_min_gap = heartbeat_min_gap
        self._sweep_interval = sweep_interval
        self._retry_base = retry_base
        self._retry_max = retry_max
        self._item_ids: dict[str, int] = {}
        self._to_accept: dict[str, int] = {}
        self._report_needed = asyncio.Event()
        self._reconcile_needed = asyncio.Event()
        self._status_changed = asyncio.Event()
        self._storage_ready = False
        self._device_item: int | None = None
        self._last_heartbeat: tuple[str, float] | None = None
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
        if self._engine.get(job_id) is not None:
            return  # already known: repeated doorbell
        items = await self._rest.result(
            "entity.item.get",
            {"ENTITY": JOB_ENTITY, "FILTER": {"NAME": job_id}, "SORT": {"ID": "ASC"}},
        )
        found = False
        for raw in items or []:
            stored = StoredJob.from_item(raw)
            if stored.job_id == job_id and stored.kassa == self.kassa_id:
                self._take(stored)
                found = True
                break
        if not found:
            log.warning("doorbell for job %s but no such KASSAJOB item for this kassa", job_id)

    async def reconcile(self) -> int:
        """Pick up every new/accepted job for this kassa; returns how many were new."""
        items = await self._rest.list_all(
            "entity.item.get",
            {
                "ENTITY": JOB_ENTITY,
                "FILTER": {
                    "PROPERTY_KASSA": self.kassa_id,
                    "PROPERTY_STATE": [STATE_NEW, STATE_ACCEPTED],
                },
                "SORT": {"ID": "ASC"},
            },
        )
        taken = 0
        for raw in items:
            if self._take(StoredJob.from_item(raw)):
                taken += 1
        if taken:
            log.info("reconciliation picked up %d job(s)", taken)
        return taken

    def request_reconcile(self) -> None:
        self._reconcile_needed.set()

    async def on_connect(self) -> None:
        """Push&Pull (re)connected: reconcile now (a doorbell may have been missed)."""
        self.request_reconcile()

    def _take(self, stored: StoredJob) -> bool:
        """Record one stored job in the journal; True if it was new. No awaits inside."""
        if stored.kassa != self.kassa_id or not stored.job_id:
            return False
        self._item_ids[stored.job_id] = stored.item_id
        known = self._engine.get(stored.job_id)
        if known is not None:
            if stored.state == STATE_NEW and not known.state.is_final:
                self._queue_accept(stored)
            elif known.state.is_final and known.reported_at is None:
                self._report_needed.set()
            return False
        if stored.state not in (STATE_NEW, STATE_ACCEPTED):
            return False
        if stored.state == STATE_ACCEPTED:
            created = self._engine.refuse(
                stored.job_id,
                code="unknown-accepted-job",
                reason=(
                    "the job is marked accepted but this appliance's journal has no record of "
                    "it (journal lost or another device uses the same kassa id); it was not "
                    "printed again — check the register before re-sending it"
                ),
                created_by=stored.created_by,
            )
        elif self._allowed and stored.created_by not in self._allowed:
            created = self._engine.refuse(
                stored.job_id,
                code="creator-not-allowed",
                reason=(
                    f"job created by Bitrix24 user {stored.created_by}, who is not in "
                    "bitrix.allowed-users; refused without printing"
                ),
                created_by=stored.created_by,
            )
        else:
            created = self._submit(stored)
        if created:
            log.info("job %s accepted from Bitrix24 user %s", stored.job_id, stored.created_by)
        self._report_needed.set()
        return created

    def _submit(self, stored: StoredJob) -> bool:
        try:
            task: Any = json.loads(stored.task_text)
        except ValueError as exc:
            return self._engine.refuse(
                stored.job_id,
                code="invalid-task",
                reason=f"TASK is not valid JSON ({exc}); expected an Atol JSON task object",
                created_by=stored.created_by,
            )
        if not isinstance(task, dict):
            return self._engine.refuse(
                stored.job_id,
                code="invalid-task",
                reason=f"TASK must be a JSON object (an Atol task), got {type(task).__name__}",
                created_by=stored.created_by,
            )
        reply: dict[str, Any] | None = None
        if stored.reply_text:
            try:
                parsed = json.loads(stored.reply_text)
                reply = parsed if isinstance(parsed, dict) else {"value": parsed}
            except ValueError:
                reply = {"raw": stored.reply_text}
        created = self._engine.submit(
            stored.job_id, task, reply=reply, created_by=stored.created_by
        )
        if created:
            self._queue_accept(stored)
        return created

    def _queue_accept(self, stored: StoredJob) -> None:
        self._to_accept[stored.job_id] = stored.item_id
        self._report_needed.set()

    def _on_engine_change(self) -> None:
        self._report_needed.set()
        self._status_changed.set()

    # -- write-back ---------------------------------------------------------------------

    async def report_pending(self) -> int:
        """Write STATE=accepted marks and finished outcomes back; returns outcomes accepted
        by Bitrix24. Raises BitrixError when the portal cannot be reached."""
        outcomes = self._engine.unreported(50)
        finished = {job.id for job in outcomes}
        for job_id in finished:
            self._to_accept.pop(job_id, None)
        await self._resolve_item_ids([j.id for j in outcomes if j.id not in self._item_ids])
        accepts = list(self._to_accept.items())[: 50 - min(len(outcomes), 50)]
        commands: list[tuple[str, dict[str, Any]]] = []
        kinds: list[tuple[str, str]] = []
        for job_id, item_id in accepts:
            commands.append(self._update(item_id, {"STATE": STATE_ACCEPTED}))
            kinds.append(("accept", job_id))
        orphans: list[str] = []
        for job in outcomes:
            target = self._item_ids.get(job.id)
            if target is None:
                orphans.append(job.id)
                continue
            commands.append(self._update(target, outcome_properties(job)))
            kinds.append(("outcome", job.id))
        for job_id in orphans:  # the item was deleted in Bitrix24: nothing to write to
            log.warning("job %s has no KASSAJOB item any more; outcome not written", job_id)
            self._engine.mark_reported(job_id)
        if not commands:
            return 0
        results = await self._rest.batch(commands)
        reported = 0
        for (kind, job_id), item in zip(kinds, results, strict=True):
            if item.error is not None:
                if isinstance(item.error, NotFound):
                    log.warning("job %s: item vanished (%s)", job_id, item.error)
                    if kind == "outcome":
                        self._engine.mark_reported(job_id)
                    self._to_accept.pop(job_id, None)
                    continue
                raise item.error
            if kind == "accept":
                self._to_accept.pop(job_id, None)
            else:
                self._engine.mark_reported(job_id)
                self._item_ids.pop(job_id, None)
                reported += 1
        if self._to_accept or len(outcomes) == 50:
            self._report_needed.set()
        return reported

    @staticmethod
    def _update(item_id: int, values: dict[str, str]) -> tuple[str, dict[str, Any]]:
        return (
            "entity.item.update",
            {"ENTITY": JOB_ENTITY, "ID": item_id, "PROPERTY_VALUES": values},
        )

    async def _resolve_item_ids(self, job_ids: list[str]) -> None:
        """Find KASSAJOB item ids by NAME (after a restart the cache is empty)."""
        if not job_ids:
            return
        results = await self._rest.batch(
            [
                (
                    "entity.item.get",
                    {"ENTITY": JOB_ENTITY, "FILTER": {"NAME": job_id}, "SORT": {"ID": "ASC"}},
                )
                for job_id in job_ids
            ]
        )
        for job_id, item in zip(job_ids, results, strict=True):
            if item.error is not None:
                raise item.error
            for raw in item.result or []:
                stored = StoredJob.from_item(raw)
                if stored.kassa == self.kassa_id and stored.job_id == job_id:
                    self._item_ids[job_id] = stored.item_id
                    break

    # -- heartbeat ----------------------------------------------------------------------

    async def heartbeat(self, *, force: bool = False) -> bool:
        """Update the KASSADEV item if the status changed or it is due; True if written."""
        status = _dumps(self._device_status())
        now = time.monotonic()
        last = self._last_heartbeat
        if not force and last is not None:
            same = last[0] == status
            age = now - last[1]
            if (same and age < self._heartbeat_interval) or age < self._heartbeat_min_gap:
                return False
        values = {
            "KASSA": self.kassa_id,
            "STATUS": status,
            "SEEN": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if self._device_item is None:
            found = await self._rest.result(
                "entity.item.get",
                {"ENTITY": DEVICE_ENTITY, "FILTER": {"NAME": self.kassa_id}, "SORT": {"ID": "ASC"}},
            )
            if found:
                self._device_item = int(found[0]["ID"])
        if self._device_item is None:
            new_id = await self._rest.result(
                "entity.item.add",
                {"ENTITY": DEVICE_ENTITY, "NAME": self.kassa_id, "PROPERTY_VALUES": values},
            )
            self._device_item = int(new_id)
        else:
            try:
                await self._rest.result(
                    "entity.item.update",
                    {"ENTITY": DEVICE_ENTITY, "ID": self._device_item, "PROPERTY_VALUES": values},
                )
            except NotFound:
                self._device_item = None
                raise
        self._last_heartbeat = (status, now)
        return True

    # -- the loops ----------------------------------------------------------------------

    async def run(self) -> None:
        """Bootstrap storage, then reconcile / report / heartbeat until cancelled."""
        await self._retrying("storage bootstrap", self.ensure_storage)
        self._reconcile_needed.set()
        self._report_needed.set()
        async with asyncio.TaskGroup() as group:
            group.create_task(
                self._retrying_loop(
                    self._reconcile_needed,
                    self._reconcile_interval,
                    self.reconcile,
                    "reconciliation",
                )
            )
            group.create_task(
                self._retrying_loop(
                    self._report_needed,
                    self._sweep_interval,
                    self.report_pending,
                    "write-back to Bitrix24",
                )
            )
            group.create_task(self._heartbeat_loop())

    async def _retrying(self, what: str, action: Callable[[], Any]) -> None:
        attempt = 0
        while True:
            try:
                await action()
                return
            except BitrixError as exc:
                attempt += 1
                delay = self._backoff(attempt)
                log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
                await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._retry_max, self._retry_base * 2 ** min(attempt - 1, 10))
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
                await self.heartbeat()
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
                "TASK": task if isinstance(task, str) else _dumps(task),
                "SOURCE": source,
                "REPLY": "" if reply is None else _dumps(reply),
            },
        },
    )
    if ring:
        await rest.result(
            "pull.application.event.add",
            {"COMMAND": "kassa.job", "PARAMS": {"job": job_id, "kassa": kassa}},
        )
    return int(item_id)
