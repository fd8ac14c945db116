"""The rows of the deliveries ledger and the queries that read them.

The states, the delivery key, a row as a dataclass, and :class:`DeliveryQueries`: the
reading half of :class:`~kassa_appliance.fiscal.journal_deliveries.DeliveryLedger`, on the
connection that class opens (the split follows ``journal`` / ``journal_queries``).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kassa_appliance.fiscal.journal_schema import COLUMNS, Job, JobState, JsonDict, row_to_job

__all__ = [
    "AWAITING",
    "FAILED",
    "INVALID_KIND",
    "LOCAL_CURSOR",
    "MAX_REASON_LENGTH",
    "MAX_REF_LENGTH",
    "MAX_TARGETS",
    "PENDING",
    "ROW_COLUMNS",
    "SENDING",
    "SENT",
    "DeliveryQueries",
    "DeliveryRow",
    "DeliveryState",
    "delivery_key",
    "reply_targets",
    "row_from_sql",
    "target_kind",
]

DeliveryState = Literal["awaiting-outcome", "pending", "sending", "sent", "failed"]
AWAITING: DeliveryState = "awaiting-outcome"
PENDING: DeliveryState = "pending"
SENDING: DeliveryState = "sending"
SENT: DeliveryState = "sent"
FAILED: DeliveryState = "failed"

MAX_TARGETS = 32
"""Targets of one job that get a delivery; more are ignored (and logged by the worker)."""
MAX_REASON_LENGTH = 1_000
"""Characters of an error or a failure reason kept in a row."""
MAX_REF_LENGTH = 500
INVALID_KIND = "invalid"
"""The kind of a row for a target that is not an object with a ``kind``: failed at once."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
LOCAL_CURSOR = "local-jobs"

ROW_COLUMNS = (
    "id, key, job_id, target_index, kind, target, kassa, expected, state, attempts,"
    " next_attempt_at, last_error, outcome, sent_ref, created_at, updated_at, sent_at"
)


def delivery_key(job_id: str, target: Any) -> str:
    """Stable and unique per (job, target), at most 61 characters of ``[A-Za-z0-9:_-]``:
    the job id made safe and cut to 36 characters, then 96 bits of a SHA-256 over the job
    id and the target's canonical JSON (so ``expect()`` and the job's REPLY name one
    delivery when they name the same target)."""
    canonical = json.dumps(target, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    digest = hashlib.sha256(
        job_id.encode("utf-8", "surrogatepass") + b"\0" + canonical.encode("ascii")
    ).hexdigest()[:24]
    readable = _UNSAFE.sub("_", job_id)[:36] or "job"
    return f"{readable}:{digest}"


def reply_targets(reply: Any) -> list[Any]:
    """The targets of a stored REPLY (``{"targets": [...]}``); any other shape has none."""
    if not isinstance(reply, dict):
        return []
    targets = reply.get("targets")
    return list(targets) if isinstance(targets, list) else []


def target_kind(target: Any) -> str | None:
    if isinstance(target, dict):
        kind = target.get("kind")
        if isinstance(kind, str) and 0 < len(kind) <= 40:
            return kind
    return None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    key: str
    job_id: str
    target_index: int
    kind: str
    target: JsonDict
    kassa: str | None
    expected: bool
    """Created by ``expect()`` (a job in the Bitrix24 outbox) rather than by a local job."""
    state: DeliveryState
    attempts: int
    next_attempt_at: float
    last_error: str | None
    outcome: JsonDict | None
    sent_ref: str | None
    created_at: float
    updated_at: float
    sent_at: float | None


def row_from_sql(raw: Sequence[Any]) -> DeliveryRow:
    values = list(raw)
    target = json.loads(values[5])
    outcome = None if values[12] is None else json.loads(values[12])
    return DeliveryRow(
        id=values[0],
        key=values[1],
        job_id=values[2],
        target_index=values[3],
        kind=values[4],
        target=target if isinstance(target, dict) else {"value": target},
        kassa=values[6],
        expected=bool(values[7]),
        state=values[8],
        attempts=values[9],
        next_attempt_at=values[10],
        last_error=values[11],
        outcome=outcome,
        sent_ref=values[13],
        created_at=values[14],
        updated_at=values[15],
        sent_at=values[16],
    )


class DeliveryQueries:
    """Reading methods over ``_db``, the connection the ledger opens."""

    _db: sqlite3.Connection

    def local_cursor(self) -> int:
        row = self._db.execute(
            "SELECT seq FROM delivery_cursor WHERE name=?", (LOCAL_CURSOR,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def local_job(self, job_id: str) -> Job | None:
        row = self._db.execute(f"SELECT {COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else row_to_job(row)

    def known_jobs(self, job_ids: Sequence[str]) -> set[str]:
        """Which of ``job_ids`` are in the local journal (final or not)."""
        if not job_ids:
            return set()
        rows = self._db.execute(
            f"SELECT id FROM jobs WHERE id IN ({','.join('?' * len(job_ids))})", tuple(job_ids)
        ).fetchall()
        return {str(job_id) for (job_id,) in rows}

    def local_final_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        if not job_ids:
            return []
        final = [s.value for s in JobState if s.is_final]
        rows = self._db.execute(
            f"SELECT {COLUMNS} FROM jobs WHERE id IN ({','.join('?' * len(job_ids))})"
            f" AND state IN ({','.join('?' * len(final))})",
            (*job_ids, *final),
        ).fetchall()
        return [row_to_job(row) for row in rows]

    def get(self, key: str) -> DeliveryRow | None:
        row = self._db.execute(
            f"SELECT {ROW_COLUMNS} FROM deliveries WHERE key=?", (key,)
        ).fetchone()
        return None if row is None else row_from_sql(row)

    def for_job(self, job_id: str) -> list[DeliveryRow]:
        rows = self._db.execute(
            f"SELECT {ROW_COLUMNS} FROM deliveries WHERE job_id=? ORDER BY id", (job_id,)
        ).fetchall()
        return [row_from_sql(row) for row in rows]

    def due(
        self, now: float, kinds: Sequence[str], *, exclude: Sequence[str] = (), limit: int = 100
    ) -> list[DeliveryRow]:
        """Rows of ``kinds`` to work on now: ``pending`` ones whose time has come and every
        ``sending`` one (not ``exclude``d: those are in flight in this process), by time."""
        if not kinds:
            return []
        marks = ",".join("?" * len(kinds))
        rows = self._db.execute(
            f"SELECT {ROW_COLUMNS} FROM deliveries INDEXED BY deliveries_state"
            f" WHERE ((state=? AND next_attempt_at<=?) OR state=?) AND kind IN ({marks})"
            f" ORDER BY next_attempt_at, id LIMIT ?",
            (PENDING, now, SENDING, *kinds, limit + len(exclude)),
        ).fetchall()
        skip = set(exclude)
        return [row for row in map(row_from_sql, rows) if row.key not in skip][:limit]

    def next_due_at(self, kinds: Sequence[str]) -> float | None:
        """When the next ``pending`` row of ``kinds`` is due, or None."""
        if not kinds:
            return None
        (at,) = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM deliveries INDEXED BY deliveries_state"
            f" WHERE state=? AND kind IN ({','.join('?' * len(kinds))})",
            (PENDING, *kinds),
        ).fetchone()
        return None if at is None else float(at)

    def awaiting(self, limit: int = 500) -> list[tuple[str, str | None, float]]:
        """Jobs whose outcome some row still awaits: (job id, kassa, first expected at)."""
        rows = self._db.execute(
            "SELECT job_id, MAX(kassa), MIN(created_at) FROM deliveries"
            " INDEXED BY deliveries_state WHERE state=? GROUP BY job_id"
            " ORDER BY MIN(created_at) LIMIT ?",
            (AWAITING, limit),
        ).fetchall()
        return [(str(job), kassa, float(at)) for job, kassa, at in rows]

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
        return {str(state): int(count) for state, count in rows.fetchall()}

    def open_by_kind(self) -> dict[str, int]:
        """``pending`` and ``sending`` rows by kind."""
        rows = self._db.execute(
            "SELECT kind, COUNT(*) FROM deliveries WHERE state IN (?,?) GROUP BY kind",
            (PENDING, SENDING),
        )
        return {str(kind): int(count) for kind, count in rows.fetchall()}

    def recent_failed(self, limit: int = 10) -> list[DeliveryRow]:
        rows = self._db.execute(
            f"SELECT {ROW_COLUMNS} FROM deliveries INDEXED BY deliveries_failed"
            " WHERE state='failed' ORDER BY updated_at DESC, id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [row_from_sql(row) for row in rows]

    def retrying(self, limit: int = 10) -> list[DeliveryRow]:
        """Open rows that have failed at least once, the latest first."""
        rows = self._db.execute(
            f"SELECT {ROW_COLUMNS} FROM deliveries INDEXED BY deliveries_state"
            " WHERE state IN (?,?) AND last_error IS NOT NULL"
            " ORDER BY updated_at DESC, id DESC LIMIT ?",
            (PENDING, SENDING, limit),
        ).fetchall()
        return [row_from_sql(row) for row in rows]
