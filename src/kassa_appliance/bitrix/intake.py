"""Taking KASSAJOB items into the journal: new jobs, refusals, cancels, poison items.

:meth:`Intake.take_item` is the one door for an item listed by reconciliation or fetched
for a doorbell. It never raises: an item that cannot be taken (TASK or REPLY beyond the
input limits, an unusable NAME, anything unforeseen) is answered ``failed`` with its reason
— through the journal where the job id can be stored, else in place by item id — and is
never taken again until the next start. No awaits inside, so a job is recorded in the same
event-loop step it is read in.

STATE ``cancelled`` (set by an operator in Bitrix24) cancels a job still ``received``
(:meth:`Journal.cancel <kassa_appliance.fiscal.journal.Journal.cancel>`); a job that may have
reached the register is not cancelled: the item gets STATE ``accepted`` and ERROR
``cancel-refused`` with the reason, and later its real outcome.

Who may create and cancel jobs is :class:`~kassa_appliance.bitrix.departments.CreatorCheck`'s
answer (allowed users, allowed departments): a job whose creator's departments are not
known yet is left untaken (its item stays ``new``) until the lookup answers and the link
reconciles; it is refused (``creator-not-allowed``) only when the answer is "not allowed".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from kassa_appliance.bitrix.departments import CreatorCheck
from kassa_appliance.bitrix.engine_port import EngineAdapter
from kassa_appliance.bitrix.parsing import (
    ParsedJob,
    job_id_problem,
    parse_stored,
    reserved_job_id_problem,
)
from kassa_appliance.bitrix.protocol import (
    CANCEL_REFUSED_CODE,
    STATE_ACCEPTED,
    STATE_CANCELLED,
    STATE_FAILED,
    STATE_NEW,
    StoredJob,
    dumps,
)
from kassa_appliance.bitrix.supervisor import LinkHealth, error_text
from kassa_appliance.bitrix.writeback import MESSAGE_LIMIT, Command, cap, outcome_properties
from kassa_appliance.fiscal.journal import CANCELLED_CODE, Job, JobNotCancellable
from kassa_appliance.inputs import shorten

log = logging.getLogger(__name__)


class Intake:
    """Takes stored items into the journal and keeps what the write-back must send:
    ``item_ids`` (job id → item id), ``to_accept`` (STATE=accepted marks) and ``notes``
    (answers by item id, outside the journal)."""

    def __init__(
        self,
        engine: EngineAdapter,
        *,
        kassa_id: str,
        allowed_users: frozenset[int],
        health: LinkHealth,
        wake_reporter: Callable[[], None],
    ) -> None:
        self._engine = engine
        self.kassa_id = kassa_id
        self.creators = CreatorCheck(allowed_users)
        """Who may create and cancel jobs (``JobLink.set_allowed_*`` changes it)."""
        self.waiting_creator: dict[str, int | None] = {}
        """Jobs left untaken until their creator's departments are known (job id → user)."""
        self.health = health
        self._wake_reporter = wake_reporter
        self.item_ids: dict[str, int] = {}
        self.to_accept: dict[str, int] = {}
        self.accept_since: dict[str, float] = {}
        """When (monotonic) each STATE=accepted mark was queued (the write-back holds it
        back for a while: a quick outcome makes it needless)."""
        self.notes: dict[int, Command] = {}
        """Answers written by item id, outside the journal (a poison item, a refused
        cancel, an outcome restored over a late cancel)."""
        self.poisoned: set[int] = set()
        """Items answered in place or given up: never taken again until the next start."""
        self._cancel_refused: set[str] = set()

    def take_item(self, raw: Any) -> bool:
        """:meth:`_take` for one listed item, whatever it holds: an item that cannot be
        taken is answered ``failed`` (or skipped and listed in ``status``), never raised."""
        try:
            stored = StoredJob.from_item(raw)
        except Exception as error:
            item = raw.get("ID") if isinstance(raw, Mapping) else None
            key = f"item {shorten(str(item), 40)}"
            if key not in self.health.skipped:
                log.warning("unreadable KASSAJOB item %s skipped: %s", key, error_text(error))
            self.health.record_skipped(key, f"unreadable KASSAJOB item: {error_text(error)}")
            return False
        if stored.item_id in self.poisoned:
            return False
        try:
            return self._take(stored)
        except Exception as error:
            log.exception("job %r (item %d) could not be taken", stored.job_id, stored.item_id)
            self.health.record_error("taking jobs", error)
            self._fail_untakeable(stored, error)
            return False

    def _take(self, stored: StoredJob) -> bool:
        """Record one stored job in the journal; True if it was new. No awaits inside."""
        if stored.kassa != self.kassa_id:
            return False
        problem = job_id_problem(stored.job_id)
        if problem is not None:
            self._answer_in_place(stored, "invalid-job-id", f"{problem}; nothing was printed")
            return False
        reserved = reserved_job_id_problem(stored.job_id)
        if reserved is not None:  # a mirror record written here, or a producer's mistake
            if stored.state in (STATE_NEW, STATE_ACCEPTED):
                self._answer_in_place(stored, "reserved-job-id", f"{reserved}; nothing was printed")
            return False
        self.item_ids[stored.job_id] = stored.item_id
        known = self._engine.get(stored.job_id)
        if stored.state == STATE_CANCELLED:
            return self._cancel(stored, known)
        if known is not None:
            if stored.state == STATE_NEW and not known.state.is_final:
                self.queue_accept(stored)
            elif known.state.is_final and known.reported_at is None:
                self._wake_reporter()
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
        elif (verdict := self.creators.check(stored.created_by)).admitted is None:
            self._wait_for_creator(stored)
            return False
        elif not verdict.admitted:
            self.waiting_creator.pop(stored.job_id, None)
            created = self._engine.refuse(
                stored.job_id,
                code="creator-not-allowed",
                reason=(
                    f"job created by Bitrix24 user {stored.created_by}, {verdict.reason}; "
                    "refused without printing"
                ),
                created_by=stored.created_by,
            )
        else:
            self.waiting_creator.pop(stored.job_id, None)
            created = self._submit(stored)
        if created:
            log.info("job %s accepted from Bitrix24 user %s", stored.job_id, stored.created_by)
        self._wake_reporter()
        return created

    def _wait_for_creator(self, stored: StoredJob) -> None:
        if stored.job_id not in self.waiting_creator and len(self.waiting_creator) < 10_000:
            log.info(
                "job %s waits: the departments of its creator, Bitrix24 user %s, are being "
                "looked up",
                stored.job_id,
                stored.created_by,
            )
            self.waiting_creator[stored.job_id] = stored.created_by

    def _submit(self, stored: StoredJob) -> bool:
        parsed = parse_stored(stored.task_text, stored.reply_text)
        if not isinstance(parsed, ParsedJob):
            log.warning("job %s refused: %s", stored.job_id, parsed.reason)
            return self._engine.refuse(
                stored.job_id, code=parsed.code, reason=parsed.reason, created_by=stored.created_by
            )
        created = self._engine.submit(
            stored.job_id, parsed.task, reply=parsed.reply, created_by=stored.created_by
        )
        if created:
            self.queue_accept(stored)
        return created

    def _fail_untakeable(self, stored: StoredJob, error: Exception) -> None:
        """After an unforeseen error taking ``stored``: fail the job with the reason."""
        self.poisoned.add(stored.item_id)
        reason = (
            f"internal error while taking the job from Bitrix24 ({error_text(error)}); "
            "it was not printed"
        )
        try:
            if self._engine.get(stored.job_id) is not None:
                return  # it is in the journal already: its outcome flows as usual
            self._engine.refuse(
                stored.job_id, code="internal-error", reason=reason, created_by=stored.created_by
            )
            self._wake_reporter()
        except Exception:
            log.exception("job %r cannot be recorded; answering its item", stored.job_id)
            self._answer_in_place(stored, "internal-error", reason)

    def _answer_in_place(self, stored: StoredJob, code: str, reason: str) -> None:
        """Answer an item ``failed`` by its id, without a journal record, once."""
        if stored.item_id in self.poisoned and stored.item_id in self.notes:
            return
        log.warning("KASSAJOB item %d failed in place: %s", stored.item_id, reason)
        self.poisoned.add(stored.item_id)
        error = {"code": code, "message": cap(reason, MESSAGE_LIMIT)}
        self._note(stored, {"STATE": STATE_FAILED, "ERROR": dumps(error), "RESULT": ""})

    def _note(self, stored: StoredJob, values: dict[str, str]) -> None:
        key = f"item {stored.item_id}"
        self.notes[stored.item_id] = Command("note", key, stored.item_id, values)
        self._wake_reporter()

    def _cancel(self, stored: StoredJob, known: Job | None) -> bool:
        """STATE=cancelled: cancel the job if it has not reached the register."""
        job_id = stored.job_id
        self.waiting_creator.pop(job_id, None)
        by = f"bitrix24 user {stored.modified_by or '?'}"
        if known is None:  # cancelled before this appliance took it
            created = self._engine.refuse(
                job_id,
                code=CANCELLED_CODE,
                reason=f"cancelled by {by} before this appliance took the job",
                created_by=stored.created_by,
            )
            self._wake_reporter()
            return created
        if known.state.is_final:
            if known.reported_at is None:
                self._wake_reporter()  # its real outcome goes out as usual
                return False
            values = outcome_properties(known)
            if values["STATE"] != stored.state:
                log.warning(
                    "job %s was set to cancelled in Bitrix24 after it had finished (%s); "
                    "its outcome is written again",
                    job_id,
                    known.state.value,
                )
                self._note(stored, values)
            return False
        if job_id in self._cancel_refused:
            return False
        verdict = self.creators.check(stored.modified_by)
        if verdict.admitted is None:  # the canceller is being looked up: decided later
            return False
        if not verdict.admitted:
            self._refuse_cancel(
                stored,
                f"the cancel by Bitrix24 user {stored.modified_by} was refused: the user is "
                f"{verdict.reason.removeprefix('who is ')}; the job goes on",
            )
            return False
        try:
            self._engine.cancel(job_id, by=by)
        except JobNotCancellable as error:
            self._refuse_cancel(stored, str(error))
            return False
        log.info("job %s cancelled by %s", job_id, by)
        self.to_accept.pop(job_id, None)
        self.accept_since.pop(job_id, None)
        self._wake_reporter()
        return False

    def _refuse_cancel(self, stored: StoredJob, reason: str) -> None:
        """Tell Bitrix24 why the cancel did not happen; the real outcome follows later."""
        log.warning("cancel of job %s from Bitrix24 refused: %s", stored.job_id, reason)
        self._cancel_refused.add(stored.job_id)
        error = {"code": CANCEL_REFUSED_CODE, "message": cap(reason, MESSAGE_LIMIT)}
        self._note(stored, {"STATE": STATE_ACCEPTED, "ERROR": dumps(error)})

    def queue_accept(self, stored: StoredJob) -> None:
        self.to_accept[stored.job_id] = stored.item_id
        self.accept_since.setdefault(stored.job_id, time.monotonic())
        self._wake_reporter()
