"""The job journal: a SQLite file that is the appliance's memory of every job.

Exactly-once fiscalisation rests on three rules kept here and in the engine:

* A job id is stored once. Submitting a known id returns the stored job and creates
  nothing, so a repeated doorbell or a retried CLI call never prints twice.
* Before a fiscal task is sent to the register the job moves to ``fiscalizing`` together
  with the register's last fiscal-document (FD) number, in a committed transaction.
* A job found in ``fiscalizing`` or ``blocked`` is never re-sent blindly: the engine first
  compares the register's FD number with the stored one (ARCHITECTURE §3).

Durability: WAL mode with ``synchronous=FULL``, so every commit is on disk before the
call returns. Several transitions may share one transaction (:meth:`Journal.apply`) when
the engine can batch them without weakening those rules.

States::

    received ──► fiscalizing ──► fiscalized ──► reported
        │             │  ▲
        │             ▼  │ (FD check)
        └──► failed ◄─ blocked

Only a ``received`` job can be cancelled (:meth:`Journal.cancel`): it becomes ``failed``
with code ``cancelled``; once ``fiscalizing`` the task may be with the register.

This module owns :class:`Journal`'s connection (one per thread), its transactions and every
write (submitting, transitions, cancelling, reporting) plus the journal's errors. The
states, rows and schema live in :mod:`~kassa_appliance.fiscal.journal_schema`, the reading
queries in :mod:`~kassa_appliance.fiscal.journal_queries`; their public names are
re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from kassa_appliance.fiscal.journal_queries import JournalQueries
from kassa_appliance.fiscal.journal_schema import (
    COLUMNS,
    MIGRATIONS,
    PENDING_SQL,
    PREDECESSORS,
    SCHEMA_VERSION,
    Job,
    JobState,
    JsonDict,
    Transition,
    UnreadableTask,
    dumps,
    row_to_job,
)
from kassa_appliance.inputs import shorten
from kassa_appliance.sqlite_files import BUSY_TIMEOUT_MS, open_durable, transaction

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CANCELLED_CODE",
    "MAX_CANCELLED_BY_LENGTH",
    "SCHEMA_VERSION",
    "Job",
    "JobNotCancellable",
    "JobState",
    "Journal",
    "JournalError",
    "JsonDict",
    "Transition",
    "UnreadableTask",
]


class JournalError(Exception):
    """The journal refused an operation (unknown job, illegal state transition)."""


class JobNotCancellable(JournalError):
    """The job is past ``received`` (it may have reached the register) or final; the
    message says which, in words an operator can act on."""


CANCELLED_CODE = "cancelled"
MAX_CANCELLED_BY_LENGTH = 200
"""Characters of who cancelled a job kept in its message."""


def _why_not_cancellable(job: Job) -> str:
    if job.state in (JobState.FISCALIZING, JobState.BLOCKED):
        return (
            f"job {job.id} is {job.state.value}: it may already have reached the register, "
            "so it cannot be cancelled; the engine settles it with the register's "
            "fiscal-document check"
        )
    if job.state is JobState.FAILED:
        reason = job.error_message or job.error_code or "no reason recorded"
        return f"job {job.id} has already failed ({shorten(reason, 200)}); nothing to cancel"
    return (
        f"job {job.id} is already {job.state.value}: the register has done it, so it "
        "cannot be cancelled"
    )


class Journal(JournalQueries):
    """One connection to the journal file. Not thread-safe: one Journal per thread.

    The reading methods (:meth:`get`, :meth:`next_pending`, :meth:`unreported`, …) come
    from :class:`~kassa_appliance.fiscal.journal_queries.JournalQueries`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_durable(path)
        self._migrate()

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _migrate(self) -> None:
        with self._transaction():
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"journal {self.path} has schema {version}, newer than this version "
                    f"understands ({SCHEMA_VERSION}); refusing to touch it"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            if version != SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _transaction(self) -> AbstractContextManager[None]:
        return transaction(self._db)

    # -- writing -----------------------------------------------------------------------

    def submit(
        self,
        job_id: str,
        task: Any,
        *,
        source: str,
        reply: JsonDict | None = None,
        created_by: int | None = None,
        needs_report: bool = False,
    ) -> tuple[Job, bool]:
        """Store a new job; for a known id return the stored job and ``False``."""
        created = self.submit_many(
            [(job_id, task)],
            source=source,
            reply=reply,
            created_by=created_by,
            needs_report=needs_report,
        )
        job = self.get(job_id)
        assert job is not None
        return job, bool(created)

    def submit_many(
        self,
        jobs: Iterable[tuple[str, Any]],
        *,
        source: str,
        reply: JsonDict | None = None,
        created_by: int | None = None,
        needs_report: bool = False,
    ) -> list[str]:
        """Store several jobs in one transaction; returns the ids that were new."""
        now = time.time()
        reply_text = None if reply is None else dumps(reply)
        created: list[str] = []
        with self._transaction():
            for job_id, task in jobs:
                if not job_id:
                    raise JournalError("job id must not be empty")
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO jobs (id, task, state, source, reply, created_by,"
                    " needs_report, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        job_id,
                        dumps(task),
                        JobState.RECEIVED.value,
                        source,
                        reply_text,
                        created_by,
                        int(needs_report),
                        now,
                        now,
                    ),
                )
                if cursor.rowcount:
                    created.append(job_id)
        return created

    def submit_failed(
        self,
        job_id: str,
        task: Any,
        *,
        source: str,
        error_code: str,
        error_message: str,
        reply: JsonDict | None = None,
        created_by: int | None = None,
        needs_report: bool = False,
    ) -> tuple[Job, bool]:
        """Store a job that is refused before it could ever reach the register.

        One insert, already ``failed``: no moment exists in which the engine could pick
        it up. A known id is left as it is (``False``), like :meth:`submit`.
        """
        now = time.time()
        with self._transaction():
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO jobs (id, task, state, source, reply, created_by,"
                " needs_report, error_code, error_message, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    job_id,
                    dumps(task),
                    JobState.FAILED.value,
                    source,
                    None if reply is None else dumps(reply),
                    created_by,
                    int(needs_report),
                    error_code,
                    error_message,
                    now,
                    now,
                ),
            )
        job = self.get(job_id)
        assert job is not None
        return job, bool(cursor.rowcount)

    def apply(self, transitions: Sequence[Transition]) -> list[Job]:
        """Apply transitions atomically in one committed transaction; returns new jobs.

        The state check is part of the UPDATE (``WHERE state IN`` the legal predecessors),
        so a transition costs one statement; only a refused one reads the row to explain.
        """
        return self._apply(transitions, returning=True)

    def commit(self, transitions: Sequence[Transition]) -> None:
        """:meth:`apply` for a caller that does not need the jobs back (cheaper)."""
        self._apply(transitions, returning=False)

    def _apply(self, transitions: Sequence[Transition], *, returning: bool) -> list[Job]:
        now = time.time()
        updated: list[Job] = []
        with self._transaction():
            for change in transitions:
                predecessors = PREDECESSORS[change.state]
                cursor = self._db.execute(
                    "UPDATE jobs SET state=?, fd_before=COALESCE(?, fd_before),"
                    " result=COALESCE(?, result), qr=COALESCE(?, qr),"
                    " error_code=COALESCE(?, error_code),"
                    " error_message=COALESCE(?, error_message), wait_reason=?,"
                    " attempts=attempts+?, updated_at=?"
                    f" WHERE id=? AND state IN ({','.join('?' * len(predecessors))})"
                    + (f" RETURNING {COLUMNS}" if returning else ""),
                    (
                        change.state.value,
                        change.fd_before,
                        None if change.result is None else dumps(change.result),
                        change.qr,
                        change.error_code,
                        change.error_message,
                        change.wait_reason,
                        int(change.count_attempt),
                        now,
                        change.job_id,
                        *predecessors,
                    ),
                )
                if returning:
                    row = cursor.fetchone()
                    if row is None:
                        raise self._refusal(change)
                    updated.append(row_to_job(row))
                elif cursor.rowcount != 1:
                    raise self._refusal(change)
        return updated

    def _refusal(self, change: Transition) -> JournalError:
        current = self._get(change.job_id)
        if current is None:
            return JournalError(f"unknown job {change.job_id!r}")
        return JournalError(
            f"job {change.job_id}: illegal transition {current.state.value} → {change.state.value}"
        )

    def transition(self, change: Transition) -> Job:
        return self.apply([change])[0]

    def set_wait_reason(self, job_id: str, reason: str | None) -> None:
        """Record why a pending job is waiting (no paper, register offline, …).

        A job that became final meanwhile (cancelled) keeps its outcome untouched.
        """
        with self._transaction():
            self._db.execute(
                f"UPDATE jobs SET wait_reason=?, updated_at=? WHERE id=? AND {PENDING_SQL}",
                (reason, time.time(), job_id),
            )

    def cancel(self, job_id: str, *, by: str) -> Job:
        """Fail a job that has not reached the register: ``failed``, code ``cancelled``,
        message ``cancelled by <by>``.

        Atomic: the UPDATE itself checks ``state='received'``. An engine that takes the
        job at the same moment either commits ``fiscalizing`` first — and the cancel is
        refused, because the task may now be with the register — or finds its own
        transition refused and skips the job. Raises :class:`JobNotCancellable` saying
        why, or :class:`JournalError` for an unknown id.
        """
        who = shorten(by.strip() or "unknown", MAX_CANCELLED_BY_LENGTH)
        with self._transaction():
            row = self._db.execute(
                "UPDATE jobs SET state=?, error_code=?, error_message=?, wait_reason=NULL,"
                f" updated_at=? WHERE id=? AND state=? RETURNING {COLUMNS}",
                (
                    JobState.FAILED.value,
                    CANCELLED_CODE,
                    f"cancelled by {who}",
                    time.time(),
                    job_id,
                    JobState.RECEIVED.value,
                ),
            ).fetchone()
            current = None if row is not None else self._get(job_id)
        if row is not None:
            return row_to_job(row)
        if current is None:
            raise JournalError(f"unknown job {job_id!r}")
        raise JobNotCancellable(_why_not_cancellable(current))

    def mark_reported(self, job_id: str) -> Job:
        """The job's outcome was accepted by Bitrix24 (or wherever it had to go)."""
        with self._transaction():
            job = self._get(job_id)
            if job is None:
                raise JournalError(f"unknown job {job_id!r}")
            if not job.state.is_final:
                raise JournalError(f"job {job_id} is {job.state.value}; only final jobs report")
            state = JobState.REPORTED if job.state is JobState.FISCALIZED else job.state
            self._db.execute(
                "UPDATE jobs SET state=?, reported_at=?, updated_at=? WHERE id=?",
                (state.value, time.time(), time.time(), job_id),
            )
        reported = self.get(job_id)
        assert reported is not None
        return reported
