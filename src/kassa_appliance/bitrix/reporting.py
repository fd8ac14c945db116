"""One write-back round: in-place answers, STATE=accepted marks and finished outcomes from
the journal, sent through :func:`~kassa_appliance.bitrix.writeback.write_back` (batches
bounded by count and bytes; a refused outcome alone, then shortened, then given up).

What keeps the request count down (docs/architecture.md "How far one portal goes"):

* a STATE=accepted mark waits ``accept_delay`` seconds: a job printed by then gets its
  outcome only (``new`` → ``done``), so a quick receipt costs one write-back request;
* every batch ends with one ``kassa.state`` event listing the states it wrote (for the
  app's live view), and carries the KASSADEV heartbeat when the status changed — so
  neither costs a request of its own while receipts flow.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from kassa_appliance.bitrix.engine_port import EngineAdapter
from kassa_appliance.bitrix.heartbeat import DeviceHeartbeat
from kassa_appliance.bitrix.intake import Intake
from kassa_appliance.bitrix.protocol import JOB_ENTITY, STATE_ACCEPTED, item_property
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.bitrix.supervisor import LinkHealth
from kassa_appliance.bitrix.writeback import (
    Command,
    Delivery,
    outcome_properties,
    state_event,
    write_back,
)

log = logging.getLogger(__name__)

OUTCOMES_PER_ROUND = 200
"""Finished jobs read from the journal per write-back round (sent in several batches)."""
ACCEPT_DELAY = 2.0
"""Seconds a STATE=accepted mark waits for the outcome that would make it needless."""


class Reporter:
    def __init__(
        self,
        rest: RestClient,
        engine: EngineAdapter,
        intake: Intake,
        health: LinkHealth,
        *,
        heartbeat: DeviceHeartbeat | None = None,
        accept_delay: float = ACCEPT_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rest = rest
        self._engine = engine
        self._intake = intake
        self._health = health
        self._heartbeat = heartbeat
        self._accept_delay = accept_delay
        self._clock = clock
        self.next_due: float | None = None
        """After a round: when (``clock``) a held-back accepted mark becomes due."""
        self._unwritable: set[str] = set()
        """Jobs whose outcome the portal refused even shortened: not sent again."""
        self.more_to_send = False
        """After a round: something is left for the next one."""

    async def report_pending(self) -> int:
        """One write-back round; returns outcomes accepted by Bitrix24. Raises
        BitrixError when the portal cannot be reached (what was settled stays settled)."""
        self.more_to_send = False
        self.next_due = None
        skip = self._unwritable
        outcomes = [
            job
            for job in self._engine.unreported(OUTCOMES_PER_ROUND + len(skip))
            if job.id not in skip
        ][:OUTCOMES_PER_ROUND]
        for job in outcomes:
            self._intake.to_accept.pop(job.id, None)
            self._intake.accept_since.pop(job.id, None)
        await self._resolve_item_ids([j.id for j in outcomes if j.id not in self._intake.item_ids])
        commands: list[Command] = list(self._intake.notes.values())
        commands += self._due_accepts()
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
        commands += self._heartbeat_commands(bool(commands))
        if not commands:
            return 0
        reported = 0

        def delivered(command: Command, delivery: Delivery, reason: str) -> None:
            nonlocal reported
            if command.on_settled is not None:
                command.on_settled(delivery)
            if command.kind == "heartbeat":
                return
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
                    self._intake.accept_since.pop(command.key, None)
            elif delivery is Delivery.REFUSED:
                self._unwritable.add(command.key)
                self._health.record_skipped(f"job {command.key}", reason)
            else:
                self._engine.mark_reported(command.key)
                self._intake.item_ids.pop(command.key, None)
                reported += delivery is Delivery.WRITTEN

        kassa_id = self._intake.kassa_id
        await write_back(
            self._rest,
            commands,
            delivered,
            event_for=lambda batch: state_event(kassa_id, batch),
        )
        intake = self._intake
        self.more_to_send = bool(intake.notes or len(outcomes) == OUTCOMES_PER_ROUND)
        return reported

    def _due_accepts(self) -> list[Command]:
        """STATE=accepted marks older than ``accept_delay`` (the rest wait: their outcome
        may come first and make them needless); sets ``next_due`` for the earliest."""
        now = self._clock()
        due: list[Command] = []
        since = self._intake.accept_since
        for job_id, item_id in self._intake.to_accept.items():
            queued = since.setdefault(job_id, now)
            if now - queued >= self._accept_delay:
                due.append(Command("accept", job_id, item_id, {"STATE": STATE_ACCEPTED}))
            else:
                moment = queued + self._accept_delay
                self.next_due = moment if self.next_due is None else min(self.next_due, moment)
        return due

    def _heartbeat_commands(self, riding: bool) -> Sequence[Command]:
        """The KASSADEV update: riding along when other commands go out, alone only
        when it is wanted on its own."""
        heartbeat = self._heartbeat
        if heartbeat is None or not heartbeat.known:
            return []
        command = heartbeat.command(alone=not riding)
        return [] if command is None else [command]

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
