"""One write-back round: in-place answers, STATE=accepted marks and finished outcomes from
the journal, sent through :func:`~kassa_appliance.bitrix.writeback.write_back` (batches
bounded by count and bytes; a refused outcome alone, then shortened, then given up)."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Mapping

from kassa_appliance.bitrix.engine_port import EngineAdapter
from kassa_appliance.bitrix.intake import Intake
from kassa_appliance.bitrix.protocol import JOB_ENTITY, STATE_ACCEPTED, item_property
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.bitrix.supervisor import LinkHealth
from kassa_appliance.bitrix.writeback import Command, Delivery, outcome_properties, write_back

log = logging.getLogger(__name__)

OUTCOMES_PER_ROUND = 200
"""Finished jobs read from the journal per write-back round (sent in several batches)."""


class Reporter:
    def __init__(
        self, rest: RestClient, engine: EngineAdapter, intake: Intake, health: LinkHealth
    ) -> None:
        self._rest = rest
        self._engine = engine
        self._intake = intake
        self._health = health
        self._unwritable: set[str] = set()
        """Jobs whose outcome the portal refused even shortened: not sent again."""
        self.more_to_send = False
        """After a round: something is left for the next one."""

    async def report_pending(self) -> int:
        """One write-back round; returns outcomes accepted by Bitrix24. Raises
        BitrixError when the portal cannot be reached (what was settled stays settled)."""
        self.more_to_send = False
        skip = self._unwritable
        outcomes = [
            job
            for job in self._engine.unreported(OUTCOMES_PER_ROUND + len(skip))
            if job.id not in skip
        ][:OUTCOMES_PER_ROUND]
        for job in outcomes:
            self._intake.to_accept.pop(job.id, None)
        await self._resolve_item_ids([j.id for j in outcomes if j.id not in self._intake.item_ids])
        commands: list[Command] = list(self._intake.notes.values())
        commands += [
            Command("accept", job_id, item_id, {"STATE": STATE_ACCEPTED})
            for job_id, item_id in self._intake.to_accept.items()
        ]
        for job in outcomes:
            target = self._intake.item_ids.get(job.id)
            if target is None:  # the item was deleted in Bitrix24: nothing to write to
                log.warning("job %s has no KASSAJOB item any more; outcome not written", job.id)
                self._engine.mark_reported(job.id)
                continue
            commands.append(
                Command(
                    "outcome",
                    job.id,
                    target,
                    outcome_properties(job),
                    shorter=functools.partial(outcome_properties, job, short=True),
                )
            )
        if not commands:
            return 0
        reported = 0

        def delivered(command: Command, delivery: Delivery, reason: str) -> None:
            nonlocal reported
            if delivery is Delivery.VANISHED:
                log.warning("%s: item vanished (%s)", command.key, reason)
            if command.kind == "note":
                if self._intake.notes.get(command.item_id) is command:
                    del self._intake.notes[command.item_id]
                if delivery is Delivery.REFUSED:
                    self._health.record_skipped(command.key, reason)
            elif command.kind == "accept":
                if self._intake.to_accept.get(command.key) == command.item_id:
                    del self._intake.to_accept[command.key]
            elif delivery is Delivery.REFUSED:
                self._unwritable.add(command.key)
                self._health.record_skipped(f"job {command.key}", reason)
            else:
                self._engine.mark_reported(command.key)
                self._intake.item_ids.pop(command.key, None)
                reported += delivery is Delivery.WRITTEN

        await write_back(self._rest, commands, delivered)
        intake = self._intake
        self.more_to_send = bool(
            intake.to_accept or intake.notes or len(outcomes) == OUTCOMES_PER_ROUND
        )
        return reported

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
        kassa_id = self._intake.kassa_id
        for job_id, item in zip(job_ids, results, strict=True):
            if item.error is not None:
                raise item.error
            for raw in item.result or []:
                if not isinstance(raw, Mapping):
                    continue
                if raw.get("NAME") == job_id and item_property(raw, "KASSA") == kassa_id:
                    with contextlib.suppress(KeyError, TypeError, ValueError):
                        self._intake.item_ids[job_id] = int(str(raw["ID"]))
                        break
