"""Reading KASSAJOB items in the order Bitrix24 stored them, in as few requests as it takes.

Jobs are fiscalised in item-id order whichever way the daemon learns of them (a doorbell,
a doorbell replayed after a reconnect, reconciliation): the journal is FIFO by the order
items are taken, so the link takes them in item-id order and never lets two reads
interleave.

* Every read holds one lock, so a doorbell read and a reconciliation never take items
  side by side (that race printed receipts out of order across a push-server restart).
* A doorbell does not fetch "its" item: it reads every ``new`` item of this kassa after
  the highest one taken so far (:attr:`JobReader.cursor`), in ID order, 50 per request,
  so a burst of doorbells costs one request per 50 jobs and an earlier item is never
  overtaken by a later one. Rung jobs that read did not return (a cancelled item, a
  repeated bell for a job in the queue, an item that became visible late) are fetched
  by NAME in one more request.
* Reconciliation lists ``new``/``accepted`` and unanswered ``cancelled`` items of this
  kassa in one ``batch`` per page; pages go by ``>ID`` (the last id seen), not by
  offset, so items changing state while it reads are neither skipped nor read twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from kassa_appliance.bitrix.intake import Intake
from kassa_appliance.bitrix.protocol import (
    JOB_ENTITY,
    STATE_ACCEPTED,
    STATE_CANCELLED,
    STATE_NEW,
    item_property,
)
from kassa_appliance.bitrix.rest import BatchItem, RestClient

log = logging.getLogger(__name__)

PAGE_SIZE = 50
"""Items per ``entity.item.get`` page (fixed by Bitrix24)."""


def _item_id(raw: Any) -> int | None:
    try:
        return int(str(raw["ID"]))
    except (KeyError, TypeError, ValueError):
        return None


class JobReader:
    def __init__(
        self,
        rest: RestClient,
        intake: Intake,
        *,
        is_final: Callable[[str], bool],
        is_known: Callable[[str], bool],
    ) -> None:
        self._rest = rest
        self._intake = intake
        self._is_final = is_final
        self._is_known = is_known
        self._lock = asyncio.Lock()
        self.cursor = 0
        """The highest item id of a ``new`` item taken so far: doorbell reads start after it."""
        self.reads = 0
        """``entity.item.get`` requests (batches count once) made so far."""

    @property
    def kassa_id(self) -> str:
        return self._intake.kassa_id

    def _query(self, filter_: Mapping[str, Any], after: int) -> dict[str, Any]:
        return {
            "ENTITY": JOB_ENTITY,
            "FILTER": {"PROPERTY_KASSA": self.kassa_id, **filter_, ">ID": after},
            "SORT": {"ID": "ASC"},
            "start": 0,
        }

    def _take(self, raw: Any) -> bool:
        item_id = _item_id(raw)
        if (
            item_id is not None
            and isinstance(raw, Mapping)
            and item_property(raw, "STATE") in ("", STATE_NEW)
        ):
            self.cursor = max(self.cursor, item_id)
        return self._intake.take_item(raw)

    async def read_rung(self, rung: Mapping[str, bool]) -> int:
        """After doorbells for ``rung`` (job id → it was in the journal when it rang):
        take every new item after the cursor, in ID order, then read by NAME the rung
        jobs still unaccounted for — a job known at its bell and not final (the bell may
        be a cancel), or one neither that read nor an earlier one took. Returns how many
        jobs were new."""
        async with self._lock:
            taken, seen = await self._read_new()
            missing = [
                job
                for job, known in rung.items()
                if job not in seen
                and not self._is_final(job)
                and (known or not self._is_known(job))
            ]
            for start in range(0, len(missing), PAGE_SIZE):
                taken += await self._read_names(missing[start : start + PAGE_SIZE])
            return taken

    async def _read_new(self) -> tuple[int, set[str]]:
        taken = 0
        seen: set[str] = set()
        while True:
            after = self.cursor
            self.reads += 1
            query = self._query({"PROPERTY_STATE": STATE_NEW}, after)
            page = await self._rest.call("entity.item.get", query)
            items = page.result if isinstance(page.result, list) else []
            for raw in items:
                if isinstance(raw, Mapping):
                    seen.add(str(raw.get("NAME") or ""))
                taken += self._take(raw)
            if page.next is None or len(items) < PAGE_SIZE or self.cursor <= after:
                return taken, seen

    async def _read_names(self, job_ids: list[str]) -> int:
        self.reads += 1
        items = await self._rest.result(
            "entity.item.get",
            {"ENTITY": JOB_ENTITY, "FILTER": {"NAME": job_ids}, "SORT": {"ID": "ASC"}},
        )
        wanted = set(job_ids)
        taken = 0
        for raw in items if isinstance(items, list) else []:
            if not isinstance(raw, Mapping) or raw.get("NAME") not in wanted:
                continue
            if item_property(raw, "KASSA") == self.kassa_id:
                taken += self._intake.take_item(raw)
        return taken

    async def reconcile(self) -> int:
        """Pick up every new/accepted job for this kassa and act on the cancelled ones not
        yet answered (an answered cancel carries ERROR); returns how many jobs were new."""
        queries: dict[str, dict[str, Any]] = {
            "open": {"PROPERTY_STATE": [STATE_NEW, STATE_ACCEPTED]},
            "cancelled": {"PROPERTY_STATE": STATE_CANCELLED, "PROPERTY_ERROR": False},
        }
        after = dict.fromkeys(queries, 0)
        taken = 0
        async with self._lock:
            while queries:
                names = list(queries)
                self.reads += 1
                answers = await self._rest.batch(
                    [("entity.item.get", self._query(queries[n], after[n])) for n in names]
                )
                for name, answer in zip(names, answers, strict=True):
                    taken += self._take_page(name, answer, after, queries)
        if taken:
            log.info("reconciliation picked up %d job(s)", taken)
        return taken

    def _take_page(
        self,
        name: str,
        answer: BatchItem,
        after: dict[str, int],
        queries: dict[str, dict[str, Any]],
    ) -> int:
        if answer.error is not None:
            raise answer.error
        items = answer.result if isinstance(answer.result, list) else []
        start = after[name]
        taken = 0
        for raw in items:
            taken += self._take(raw)
            item_id = _item_id(raw)
            if item_id is not None:
                after[name] = max(after[name], item_id)
        if answer.next is None or len(items) < PAGE_SIZE or after[name] <= start:
            del queries[name]
        return taken
