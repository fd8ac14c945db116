"""The ledger of reply deliveries: one row per (job, reply target), in the journal file.

A job's REPLY may name targets (a chat, a CRM entity, a ``sale.cashbox`` check…); each
gets the job's outcome exactly once. This module keeps the durable half of that promise,
the way :mod:`~kassa_appliance.fiscal.journal` keeps the fiscal one: every state change is
one committed transaction (WAL, ``synchronous=FULL``) on its own connection to the same
SQLite file, and the state check is part of each UPDATE.

States::

    awaiting-outcome ──► pending ──► sending ──► sent
           │                ▲  │        │
           │                └──┼────────┘ (retry, after back-off)
           └────────────────► failed ◄──┘

* ``awaiting-outcome`` — expected: the job was handed to the Bitrix24 outbox and any kassa
  may print it; the outcome is not known yet.
* ``pending`` — the outcome is stored with the row; the send is due at ``next_attempt_at``.
* ``sending`` — marked (attempts + 1) before the sender is called. A row found here by a
  worker that did not mark it may have reached the recipient: the worker looks
  (``find_sent``) before sending again.
* ``sent`` (with the recipient's reference) and ``failed`` (with the reason) are final.

What a delivery carries (targets, outcomes) is opaque JSON here: the channels give it
meaning (:mod:`kassa_appliance.channels.delivery`). The rows and the reading queries are
in :mod:`~kassa_appliance.fiscal.journal_delivery_rows`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from kassa_appliance.fiscal.journal import Journal, JournalError
from kassa_appliance.fiscal.journal_delivery_rows import (
    AWAITING,
    FAILED,
    INVALID_KIND,
    LOCAL_CURSOR,
    MAX_REASON_LENGTH,
    MAX_REF_LENGTH,
    MAX_TARGETS,
    PENDING,
    ROW_COLUMNS,
    SENDING,
    SENT,
    DeliveryQueries,
    DeliveryRow,
    DeliveryState,
    delivery_key,
    reply_targets,
    row_from_sql,
    target_kind,
)
from kassa_appliance.fiscal.journal_schema import (
    COLUMNS,
    SCHEMA_VERSION,
    Job,
    JsonDict,
    dumps,
    row_to_job,
)
from kassa_appliance.inputs import shorten
from kassa_appliance.sqlite_files import open_durable, transaction

__all__ = [
    "AWAITING",
    "FAILED",
    "MAX_REASON_LENGTH",
    "MAX_TARGETS",
    "PENDING",
    "SENDING",
    "SENT",
    "DeliveryLedger",
    "DeliveryRow",
    "DeliveryState",
    "delivery_key",
    "reply_targets",
]


class DeliveryLedger(DeliveryQueries):
    """One connection to the journal file for the deliveries table. Not thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_durable(path)
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version < SCHEMA_VERSION:
            Journal(path).close()  # the journal owns the migrations
        elif version > SCHEMA_VERSION:
            self._db.close()
            raise JournalError(
                f"journal {path} has schema {version}, newer than this version "
                f"understands ({SCHEMA_VERSION}); refusing to touch it"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DeliveryLedger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _transaction(self) -> AbstractContextManager[None]:
        return transaction(self._db)

    # -- creating rows -----------------------------------------------------------------

    def add(
        self,
        job_id: str,
        targets: Sequence[Any],
        *,
        kassa: str | None = None,
        outcome: JsonDict | None = None,
        expected: bool = False,
    ) -> int:
        """Rows for the targets of a job (idempotent: a known key is left as it is);
        with ``outcome``, this job's rows still awaiting it become ``pending``. Returns how
        many rows were new. A target that is not an object with a ``kind`` gets a row that
        is ``failed`` at once, so status shows it."""
        if not job_id:
            raise JournalError("job id must not be empty")
        now = time.time()
        outcome_text = None if outcome is None else dumps(outcome)
        created = 0
        with self._transaction():
            for index, target in enumerate(targets[:MAX_TARGETS]):
                kind = target_kind(target)
                state: DeliveryState = (
                    FAILED if kind is None else AWAITING if outcome is None else PENDING
                )
                error = (
                    None
                    if kind is not None
                    else f"reply target #{index + 1} is not an object with a kind; "
                    'expected e.g. {"kind": "b24chat", …}'
                )
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO deliveries (key, job_id, target_index, kind, target,"
                    " kassa, expected, state, last_error, outcome, next_attempt_at, created_at,"
                    " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        delivery_key(job_id, target),
                        job_id,
                        index,
                        kind or INVALID_KIND,
                        dumps(target),
                        kassa,
                        int(expected),
                        state,
                        error,
                        outcome_text,
                        now,
                        now,
                        now,
                    ),
                )
                created += cursor.rowcount
            if outcome_text is not None:
                self._resolve(job_id, outcome_text, now)
        return created

    def resolve(self, job_id: str, outcome: JsonDict) -> int:
        """The outcome of a job is known: its rows awaiting it become ``pending``."""
        with self._transaction():
            return self._resolve(job_id, dumps(outcome), time.time())

    def _resolve(self, job_id: str, outcome_text: str, now: float) -> int:
        cursor = self._db.execute(
            "UPDATE deliveries SET state=?, outcome=?, next_attempt_at=?, updated_at=?"
            " WHERE job_id=? AND state=?",
            (PENDING, outcome_text, now, now, job_id, AWAITING),
        )
        return cursor.rowcount

    # -- the local jobs' scan ----------------------------------------------------------

    def set_local_cursor(self, seq: int) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT INTO delivery_cursor (name, seq) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET seq=excluded.seq",
                (LOCAL_CURSOR, seq),
            )

    def jobs_with_targets(self, after_seq: int, limit: int = 200) -> tuple[list[Job], int]:
        """Jobs after ``after_seq`` whose REPLY may name targets (final or not), oldest
        first, and the highest job seq of the same snapshot (where the cursor may move to
        when all of them are final and handled)."""
        self._db.execute("BEGIN")
        try:
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM jobs WHERE seq>? AND reply LIKE '%\"targets\"%'"
                " ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
            (highest,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()
        finally:
            self._db.execute("COMMIT")
        jobs = [row_to_job(row) for row in rows]
        if len(jobs) == limit:  # more to read: the cursor may move only past what was read
            highest = jobs[-1].seq
        return jobs, int(highest)

    # -- the worker's transitions ------------------------------------------------------

    def _move(
        self, key: str, sql: str, params: Sequence[Any], sources: Sequence[str]
    ) -> DeliveryRow:
        with self._transaction():
            row = self._db.execute(
                f"UPDATE deliveries SET {sql} WHERE key=? AND state IN"
                f" ({','.join('?' * len(sources))}) RETURNING {ROW_COLUMNS}",
                (*params, key, *sources),
            ).fetchone()
        if row is None:
            current = self.get(key)
            if current is None:
                raise JournalError(f"unknown delivery {key!r}")
            raise JournalError(
                f"delivery {key}: cannot move from {current.state} ({sql.split('=')[0]})"
            )
        return row_from_sql(row)

    def mark_sending(self, key: str) -> DeliveryRow:
        """Before the sender is called: ``sending``, one attempt more, committed."""
        now = time.time()
        return self._move(
            key,
            "state=?, attempts=attempts+1, updated_at=?",
            (SENDING, now),
            (PENDING, SENDING),
        )

    def mark_sent(self, key: str, reference: str) -> DeliveryRow:
        now = time.time()
        return self._move(
            key,
            "state=?, sent_ref=?, last_error=NULL, sent_at=?, updated_at=?",
            (SENT, shorten(reference, MAX_REF_LENGTH), now, now),
            (SENDING, PENDING),
        )

    def mark_retry(self, key: str, error: str, next_attempt_at: float) -> DeliveryRow:
        return self._move(
            key,
            "state=?, last_error=?, next_attempt_at=?, updated_at=?",
            (PENDING, shorten(error, MAX_REASON_LENGTH), next_attempt_at, time.time()),
            (SENDING, PENDING),
        )

    def mark_failed(self, key: str, reason: str) -> DeliveryRow:
        return self._move(
            key,
            "state=?, last_error=?, updated_at=?",
            (FAILED, shorten(reason, MAX_REASON_LENGTH), time.time()),
            (SENDING, PENDING, AWAITING),
        )

    def fail_job(self, job_id: str, reason: str) -> int:
        """Give up the rows of a job still awaiting its outcome."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE deliveries SET state=?, last_error=?, updated_at=?"
                " WHERE job_id=? AND state=?",
                (FAILED, shorten(reason, MAX_REASON_LENGTH), time.time(), job_id, AWAITING),
            )
        return cursor.rowcount
