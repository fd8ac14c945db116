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
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from kassa_appliance.inputs import shorten

JsonDict = dict[str, Any]

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000


class JobState(StrEnum):
    RECEIVED = "received"
    FISCALIZING = "fiscalizing"
    FISCALIZED = "fiscalized"
    REPORTED = "reported"
    FAILED = "failed"
    BLOCKED = "blocked"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATES


_FINAL_STATES = frozenset({JobState.FISCALIZED, JobState.REPORTED, JobState.FAILED})
_PENDING_STATES = (JobState.RECEIVED, JobState.FISCALIZING, JobState.BLOCKED)
# Spelled out, not bound: SQLite uses the partial index jobs_pending only when a query
# repeats its WHERE clause literally.
_PENDING_SQL = "state IN ({})".format(", ".join(f"'{state.value}'" for state in _PENDING_STATES))

_ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.RECEIVED: frozenset({JobState.FISCALIZING, JobState.FAILED}),
    JobState.FISCALIZING: frozenset(
        {JobState.FISCALIZING, JobState.FISCALIZED, JobState.FAILED, JobState.BLOCKED}
    ),
    JobState.BLOCKED: frozenset({JobState.FISCALIZING, JobState.FISCALIZED, JobState.FAILED}),
    JobState.FISCALIZED: frozenset({JobState.REPORTED}),
    JobState.FAILED: frozenset(),
    JobState.REPORTED: frozenset(),
}


_PREDECESSORS: dict[JobState, tuple[str, ...]] = {
    target: tuple(
        source.value for source, targets in _ALLOWED_TRANSITIONS.items() if target in targets
    )
    for target in JobState
}


class JournalError(Exception):
    """The journal refused an operation (unknown job, illegal state transition)."""


class JobNotCancellable(JournalError):
    """The job is past ``received`` (it may have reached the register) or final; the
    message says which, in words an operator can act on."""


CANCELLED_CODE = "cancelled"
MAX_CANCELLED_BY_LENGTH = 200
"""Characters of who cancelled a job kept in its message."""


class UnreadableTask(str):
    """A stored task whose JSON cannot be decoded again (the engine fails the job).

    Decoding can fail where encoding did not: e.g. a task nested close to Python's
    recursion limit, stored from a shallow stack and read from a deep one. Keeping the
    text lets the row be read, so one such job cannot stop the queue.
    """


@dataclass(frozen=True, slots=True)
class Job:
    seq: int
    id: str
    task: Any
    """The task exactly as received (normally a dict; anything for a malformed command)."""
    state: JobState
    source: str
    reply: JsonDict | None
    created_by: int | None
    needs_report: bool
    fd_before: int | None
    result: JsonDict | None
    qr: str | None
    error_code: str | None
    error_message: str | None
    wait_reason: str | None
    attempts: int
    created_at: float
    updated_at: float
    reported_at: float | None

    @property
    def task_type(self) -> str | None:
        if isinstance(self.task, dict):
            value = self.task.get("type")
            return value if isinstance(value, str) else None
        return None


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change, for :meth:`Journal.apply`. ``None`` fields keep their value."""

    job_id: str
    state: JobState
    fd_before: int | None = None
    result: JsonDict | None = None
    qr: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    wait_reason: str | None = None
    count_attempt: bool = False


_COLUMNS = (
    "seq, id, task, state, source, reply, created_by, needs_report, fd_before, result, qr,"
    " error_code, error_message, wait_reason, attempts, created_at, updated_at, reported_at"
)

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        task TEXT NOT NULL,
        state TEXT NOT NULL,
        source TEXT NOT NULL,
        reply TEXT,
        created_by INTEGER,
        needs_report INTEGER NOT NULL DEFAULT 0,
        fd_before INTEGER,
        result TEXT,
        qr TEXT,
        error_code TEXT,
        error_message TEXT,
        wait_reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        reported_at REAL
    );
    CREATE INDEX jobs_pending ON jobs(seq)
        WHERE state IN ('received', 'fiscalizing', 'blocked');
    CREATE INDEX jobs_unreported ON jobs(seq) WHERE needs_report=1 AND reported_at IS NULL;
    """,
)


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


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _loads_task(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError, MemoryError):
        return UnreadableTask(text)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _row_to_job(row: sqlite3.Row | tuple[Any, ...]) -> Job:
    (
        seq,
        job_id,
        task,
        state,
        source,
        reply,
        created_by,
        needs_report,
        fd_before,
        result,
        qr,
        error_code,
        error_message,
        wait_reason,
        attempts,
        created_at,
        updated_at,
        reported_at,
    ) = tuple(row)
    return Job(
        seq=seq,
        id=job_id,
        task=_loads_task(task),
        state=JobState(state),
        source=source,
        reply=_loads(reply),
        created_by=created_by,
        needs_report=bool(needs_report),
        fd_before=fd_before,
        result=_loads(result),
        qr=qr,
        error_code=error_code,
        error_message=error_message,
        wait_reason=wait_reason,
        attempts=attempts,
        created_at=created_at,
        updated_at=updated_at,
        reported_at=reported_at,
    )


class Journal:
    """One connection to the journal file. Not thread-safe: one Journal per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
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
                for statement in _MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            if version != SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

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
        reply_text = None if reply is None else _dumps(reply)
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
                        _dumps(task),
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
                    _dumps(task),
                    JobState.FAILED.value,
                    source,
                    None if reply is None else _dumps(reply),
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
                predecessors = _PREDECESSORS[change.state]
                cursor = self._db.execute(
                    "UPDATE jobs SET state=?, fd_before=COALESCE(?, fd_before),"
                    " result=COALESCE(?, result), qr=COALESCE(?, qr),"
                    " error_code=COALESCE(?, error_code),"
                    " error_message=COALESCE(?, error_message), wait_reason=?,"
                    " attempts=attempts+?, updated_at=?"
                    f" WHERE id=? AND state IN ({','.join('?' * len(predecessors))})"
                    + (f" RETURNING {_COLUMNS}" if returning else ""),
                    (
                        change.state.value,
                        change.fd_before,
                        None if change.result is None else _dumps(change.result),
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
                    updated.append(_row_to_job(row))
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
                f"UPDATE jobs SET wait_reason=?, updated_at=? WHERE id=? AND {_PENDING_SQL}",
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
                f" updated_at=? WHERE id=? AND state=? RETURNING {_COLUMNS}",
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
            return _row_to_job(row)
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

    # -- reading -----------------------------------------------------------------------

    def _get(self, job_id: str) -> Job | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else _row_to_job(row)

    def get(self, job_id: str) -> Job | None:
        return self._get(job_id)

    def state_of(self, job_id: str) -> JobState | None:
        """Just the state: cheap enough to poll."""
        row = self._db.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else JobState(row[0])

    def next_pending(self, after_seq: int = 0) -> Job | None:
        """The oldest job that still needs the register (FIFO by arrival)."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE {_PENDING_SQL} AND seq>? ORDER BY seq LIMIT 1",
            (after_seq,),
        ).fetchone()
        return None if row is None else _row_to_job(row)

    def next_pending_except(self, *job_ids: str) -> Job | None:
        """The oldest pending job other than ``job_ids`` (the queue head after them)."""
        marks = ",".join("?" * len(job_ids))
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE {_PENDING_SQL} AND id NOT IN ({marks})"
            " ORDER BY seq LIMIT 1",
            job_ids,
        ).fetchone()
        return None if row is None else _row_to_job(row)

    def pending_count(self) -> int:
        (count,) = self._db.execute(
            f"SELECT COUNT(*) FROM jobs INDEXED BY jobs_pending WHERE {_PENDING_SQL}"
        ).fetchone()
        return int(count)

    def recent(self, limit: int = 20, state: JobState | None = None) -> list[Job]:
        if state is None:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state=? ORDER BY seq DESC LIMIT ?",
                (state.value, limit),
            ).fetchall()
        return [_row_to_job(row) for row in rows]

    def all_jobs(self) -> list[Job]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY seq").fetchall()
        return [_row_to_job(row) for row in rows]

    def unreported(self, limit: int = 100) -> list[Job]:
        """Final jobs whose outcome must still be written back (e.g. to Bitrix24)."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM jobs INDEXED BY jobs_unreported"
            " WHERE needs_report=1 AND reported_at IS NULL AND state IN (?,?)"
            " ORDER BY seq LIMIT ?",
            (JobState.FISCALIZED.value, JobState.FAILED.value, limit),
        ).fetchall()
        return [_row_to_job(row) for row in rows]

    def counts_by_state(self) -> dict[JobState, int]:
        rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {JobState(state): int(count) for state, count in rows}
