"""What the job journal stores: job states, the rows, and the SQLite schema.

Owns :class:`JobState` and the transitions allowed between states, the :class:`Job` and
:class:`Transition` dataclasses, the conversion between a ``jobs`` row and a :class:`Job`
(JSON in and out), the schema version with its migrations, and the SQL fragments the
journal's queries share. No connection lives here: :mod:`kassa_appliance.fiscal.journal`
owns that.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "COLUMNS",
    "MIGRATIONS",
    "PENDING_SQL",
    "PREDECESSORS",
    "SCHEMA_VERSION",
    "Job",
    "JobState",
    "JsonDict",
    "Transition",
    "UnreadableTask",
    "dumps",
    "row_to_job",
]

JsonDict = dict[str, Any]

SCHEMA_VERSION = 2


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
PENDING_SQL = "state IN ({})".format(", ".join(f"'{state.value}'" for state in _PENDING_STATES))

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


PREDECESSORS: dict[JobState, tuple[str, ...]] = {
    target: tuple(
        source.value for source, targets in _ALLOWED_TRANSITIONS.items() if target in targets
    )
    for target in JobState
}
"""For each state, the states (as stored) a job may move to it from."""


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


COLUMNS = (
    "seq, id, task, state, source, reply, created_by, needs_report, fd_before, result, qr,"
    " error_code, error_message, wait_reason, attempts, created_at, updated_at, reported_at"
)
"""The ``jobs`` columns in the order :func:`row_to_job` reads them."""

MIGRATIONS: tuple[str, ...] = (
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
    # 1 → 2: the ledger of reply deliveries (fiscal/journal_deliveries.py): one row per
    # (job, reply target), and the scan cursor over final local jobs — set past the jobs
    # already stored, so an upgrade never sends replies for jobs finished long ago.
    """
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        job_id TEXT NOT NULL,
        target_index INTEGER NOT NULL,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        kassa TEXT,
        expected INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        outcome TEXT,
        sent_ref TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX deliveries_job ON deliveries(job_id);
    CREATE INDEX deliveries_state ON deliveries(state, next_attempt_at);
    CREATE INDEX deliveries_failed ON deliveries(updated_at) WHERE state='failed';
    CREATE TABLE delivery_cursor (
        name TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    );
    INSERT INTO delivery_cursor (name, seq) SELECT 'local-jobs', COALESCE(MAX(seq), 0) FROM jobs;
    """,
)
"""``MIGRATIONS[n]`` takes the schema from version ``n`` to ``n + 1``."""


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _loads_task(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError, MemoryError):
        return UnreadableTask(text)


def dumps(value: Any) -> str:
    """A value as stored in a JSON column (compact, non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def row_to_job(row: sqlite3.Row | tuple[Any, ...]) -> Job:
    """A ``jobs`` row selected as :data:`COLUMNS` as a :class:`Job`."""
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
