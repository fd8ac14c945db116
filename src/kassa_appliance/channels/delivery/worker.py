"""The reply-delivery worker: every reply target of a job gets its outcome exactly once.

What the channels see (``context.shared["delivery"]``, docs/delivery.md)::

    worker.register_sender(sender)                  # one per kind
    worker.expect(job_id, targets, kassa=...)       # a job handed to the Bitrix24 outbox
    worker.wake()                                   # something changed, look now

Three loops share one ledger (:class:`~kassa_appliance.fiscal.journal_deliveries.DeliveryLedger`):

* the main loop, woken by :meth:`wake`, by the engine's status changes and by each
  finished attempt: creates rows for final local jobs whose REPLY names targets (a scan
  after a persisted cursor), settles expected jobs that turned out to be local, and starts
  an attempt (:mod:`.attempt`) for every due row whose kind has a sender;
* the remote loop: while expected jobs wait, reads their KASSAJOB items every
  ``remote_poll_interval`` (50 per request, through the link's REST client and its one
  budget), slower when none wait;
* one task per attempt, so a slow or failing target never holds up another (at most
  ``max_in_flight`` at once, ``max_in_flight_per_kind`` of one kind).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kassa_appliance.aio import wait_event
from kassa_appliance.bitrix.protocol import SOURCE as OUTBOX_SOURCE
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.channels.delivery.attempt import AttemptSettings, attempt_delivery
from kassa_appliance.channels.delivery.backoff import Backoff
from kassa_appliance.channels.delivery.debug_hooks import PauseAfterSend, debug_pause_after_send
from kassa_appliance.channels.delivery.outcomes import RemoteOutcomes, job_outcome, outcome_to_json
from kassa_appliance.channels.delivery.protocol import Sender
from kassa_appliance.channels.delivery.remote import ExpectedJobs
from kassa_appliance.channels.delivery.status import LoopErrors, delivery_status
from kassa_appliance.fiscal.journal_deliveries import (
    MAX_TARGETS,
    DeliveryLedger,
    DeliveryRow,
    reply_targets,
)
from kassa_appliance.fiscal.journal_schema import Job
from kassa_appliance.inputs import shorten

log = logging.getLogger("kassa_appliance.channels.delivery")

SCAN_PAGE = 200
SCAN_PAGES_PER_TICK = 10
CURSOR_SAVE_STEP = 500
"""The scan cursor is saved when it moved this far (and at stop): it only saves re-reading
(rows are created idempotently), so it is not worth a commit per job."""
_UNSET: Any = object()


class DeliveryWorker:
    def __init__(
        self,
        journal_path: Path,
        *,
        kassa_id: str | None,
        rest: RestClient | None = None,
        backoff: Backoff | None = None,
        remote_poll_interval: float = 2.0,
        idle_interval: float = 30.0,
        missing_item_grace: float = 3600.0,
        send_timeout: float = 120.0,
        max_in_flight: int = 32,
        max_in_flight_per_kind: int = 8,
        stop_grace: float = 5.0,
        pause_after_send: PauseAfterSend | None = _UNSET,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """``rest``: the link's REST client, for expected jobs printed elsewhere (None: no
        portal; they wait unless printed here). ``missing_item_grace``: seconds an expected
        job may have no KASSAJOB item before its deliveries fail. ``pause_after_send``:
        the test hook (default: from the environment, see :mod:`.debug_hooks`)."""
        self.kassa_id = kassa_id
        self._ledger = DeliveryLedger(journal_path)
        self._remote = None if rest is None else RemoteOutcomes(rest)
        self._idle_interval = idle_interval
        self._max_in_flight = max_in_flight
        self._max_per_kind = max_in_flight_per_kind
        self._stop_grace = stop_grace
        self._attempt = AttemptSettings(
            backoff=backoff or Backoff(),
            send_timeout=send_timeout,
            pause_after_send=(
                debug_pause_after_send() if pause_after_send is _UNSET else pause_after_send
            ),
        )
        self._on_change = on_change
        self._senders: dict[str, Sender] = {}
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._in_flight_kind: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._cursor = self._ledger.local_cursor()
        self._saved_cursor = self._cursor
        self._added_after_cursor: dict[int, str] = {}
        self._warned_targets: set[str] = set()
        self.errors = LoopErrors()
        self._follower = ExpectedJobs(
            self._ledger,
            self._remote,
            poll_interval=remote_poll_interval,
            idle_interval=idle_interval,
            missing_item_grace=missing_item_grace,
            errors=self.errors,
            resolved=self._on_resolved,
        )
        self._final_status: dict[str, Any] | None = None

    # -- the channels' API (docs/delivery.md) --------------------------------------------

    def register_sender(self, sender: Sender) -> None:
        """The sender for ``sender.kind``; deliveries of that kind waiting for one start."""
        kind = sender.kind
        if kind in self._senders and self._senders[kind] is not sender:
            raise ValueError(f"a sender for reply targets of kind {kind!r} is already registered")
        self._senders[kind] = sender
        log.info("reply delivery: sender for %s registered", kind)
        self.wake()
        self._changed()

    def expect(self, job_id: str, targets: list[dict[str, Any]], *, kassa: str | None) -> None:
        """Durable and idempotent: deliver the outcome of ``job_id`` (a job this appliance
        created in the Bitrix24 outbox that any kassa may print) to ``targets``. The
        outcome is read from the local journal if the job is here, otherwise from its
        KASSAJOB item."""
        created = self._ledger.add(job_id, targets, kassa=kassa, expected=True)
        if created:
            log.info("reply delivery: expecting job %s for %d target(s)", job_id, created)
        self.wake()
        self._changed()

    def wake(self) -> None:
        """Something changed (a job finished, a service came back): look now."""
        self._wake.set()
        self._follower.wake()

    def on_engine_change(self, _status: object = None) -> None:
        """For ``engine.add_listener``: a job may have become final."""
        self._wake.set()

    @property
    def ledger(self) -> DeliveryLedger:
        return self._ledger

    @property
    def remote_reads(self) -> int:
        return 0 if self._remote is None else self._remote.reads

    def status(self) -> dict[str, Any]:
        """The ``delivery`` section of ``status.json``."""
        if self._final_status is not None:  # stopped: the ledger is closed
            return self._final_status
        try:
            return delivery_status(
                self._ledger,
                senders=list(self._senders),
                remote=self._remote is not None,
                loop_errors=self.errors.count,
                last_error=self.errors.last,
            )
        except Exception as error:  # status must never stop the status file
            return {"error": f"cannot read the deliveries ledger: {shorten(str(error), 200)}"}

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._main_loop(), name="delivery"),
            asyncio.create_task(self._follower.run(), name="delivery-remote"),
        ]

    async def stop(self) -> None:
        """Stop the loops, give attempts in flight ``stop_grace`` seconds, close the ledger.
        An attempt cut short stays ``sending`` and is settled by ``find_sent`` next time."""
        self._stopping = True
        self.wake()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        flying = list(self._in_flight.values())
        if flying:
            _done, late = await asyncio.wait(flying, timeout=self._stop_grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*flying, return_exceptions=True)
        self._final_status = self.status()
        with contextlib.suppress(Exception):
            self._save_cursor()
        self._ledger.close()

    async def __aenter__(self) -> DeliveryWorker:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the main loop -----------------------------------------------------------------

    def _on_resolved(self) -> None:
        self._wake.set()
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                log.exception("reply delivery: status update failed")

    async def _main_loop(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            try:
                timeout = self._tick()
                failures = 0
            except Exception as error:  # the ledger unreadable for a moment, a bug: go on
                failures += 1
                self.errors.note(error)
                log.exception("reply delivery: the loop failed; trying again")
                timeout = min(30.0, 0.5 * 2**failures)
            await wait_event(self._wake, timeout)

    def _tick(self) -> float:
        """One look: new rows, local outcomes, attempts. Returns how long to wait."""
        self._scan_local_jobs()
        self._resolve_local()
        return self._dispatch()

    def _scan_local_jobs(self) -> None:
        after = self._cursor
        blocked_at: int | None = None
        highest = self._cursor
        added = False
        for _page in range(SCAN_PAGES_PER_TICK):
            jobs, highest = self._ledger.jobs_with_targets(after, SCAN_PAGE)
            for job in jobs:
                if job.source == OUTBOX_SOURCE:
                    continue  # delivered by the appliance that expected it (docs/delivery.md)
                if not job.state.is_final:
                    blocked_at = job.seq if blocked_at is None else blocked_at
                elif job.seq not in self._added_after_cursor:
                    added = self._add_local(job) or added
                    self._added_after_cursor[job.seq] = job.id
            if len(jobs) < SCAN_PAGE:
                break
            after = jobs[-1].seq
        else:
            self._wake.set()  # more to read: next tick
        cursor = highest if blocked_at is None else blocked_at - 1
        if cursor > self._cursor:
            self._cursor = cursor
            if cursor - self._saved_cursor >= CURSOR_SAVE_STEP:
                self._save_cursor()
            self._added_after_cursor = {
                seq: job for seq, job in self._added_after_cursor.items() if seq > cursor
            }
        if added:
            self._changed()

    def _save_cursor(self) -> None:
        if self._cursor != self._saved_cursor:
            self._ledger.set_local_cursor(self._cursor)
            self._saved_cursor = self._cursor

    def _add_local(self, job: Job) -> bool:
        targets = reply_targets(job.reply)
        if not targets:
            return False
        if len(targets) > MAX_TARGETS and job.id not in self._warned_targets:
            self._warned_targets.add(job.id)
            log.warning(
                "job %s names %d reply targets; only the first %d get the outcome",
                job.id,
                len(targets),
                MAX_TARGETS,
            )
        outcome = job_outcome(job, self.kassa_id)
        assert outcome is not None
        created = self._ledger.add(
            job.id, targets, kassa=self.kassa_id, outcome=outcome_to_json(outcome)
        )
        if created:
            log.info("reply delivery: job %s is %s; %d target(s)", job.id, outcome.state, created)
        return created > 0

    def _resolve_local(self) -> None:
        awaiting = [job_id for job_id, _kassa, _at in self._ledger.awaiting()]
        resolved = 0
        for job in self._ledger.local_final_jobs(awaiting):
            outcome = job_outcome(job, self.kassa_id)
            if outcome is not None:
                resolved += self._ledger.resolve(job.id, outcome_to_json(outcome))
        if resolved:
            self._changed()

    def _dispatch(self) -> float:
        """Start attempts for due rows, kind by kind (a backlog of one kind never hides
        another's rows); returns how long the loop may sleep."""
        now = time.time()
        per_kind = Counter(self._in_flight_kind.values())
        room = self._max_in_flight - len(self._in_flight)
        open_kinds: list[str] = []
        for kind in list(self._senders):
            kind_room = min(room, self._max_per_kind - per_kind[kind])
            if kind_room <= 0:
                continue  # full: a finished attempt of this kind wakes the loop
            rows = self._ledger.due(now, [kind], exclude=list(self._in_flight), limit=kind_room)
            for row in rows:
                self._start_attempt(row)
            room -= len(rows)
            if len(rows) < kind_room:
                open_kinds.append(kind)
        if room <= 0:
            return self._idle_interval
        next_at = self._ledger.next_due_at(open_kinds)
        if next_at is None:
            return self._idle_interval
        return min(self._idle_interval, max(0.0, next_at - time.time()))

    def _start_attempt(self, row: DeliveryRow) -> None:
        sender = self._senders[row.kind]

        async def run() -> None:
            try:
                await attempt_delivery(self._ledger, sender, row, self._attempt, self._changed)
            except Exception:
                log.exception("reply delivery %s: the attempt could not be recorded", row.key)
            finally:
                self._in_flight.pop(row.key, None)
                self._in_flight_kind.pop(row.key, None)
                self._wake.set()

        self._in_flight_kind[row.key] = row.kind
        self._in_flight[row.key] = asyncio.create_task(run(), name=f"delivery {row.key}")
