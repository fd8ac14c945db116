"""What the LAN API remembers of each request beside the journal: ``<data dir>/lan.sqlite3``.

The journal holds the jobs (one per sub-task) and their outcomes; this store holds what a
Web Requests request or a KKMServer command is made of: its client id (``uuid`` /
``IdCommand``), its sub-tasks in order (sub-task k+1 becomes a job only once sub-task k is
``ready``: the rest of a failed request is ``interrupted``, as Atol does), whether the
client cancelled it, and its settled outcome for the queue counters.

Written before the first job is submitted, with ``synchronous=FULL``: a request answered
201 is on disk in both files. A crash between the two writes leaves a request whose
first job is missing; :meth:`LanStore.pending` returns it on the next start and the
dispatcher submits the job then (journal ids are idempotent, so this never doubles one).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kassa_appliance.sqlite_files import open_durable

Scope = Literal["wr", "kkm"]
Outcome = Literal["ready", "error", "canceled"]

FILE_NAME = "lan.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    client_id TEXT NOT NULL,
    tasks TEXT NOT NULL,
    meta TEXT NOT NULL,
    created_at REAL NOT NULL,
    canceled INTEGER NOT NULL DEFAULT 0,
    outcome TEXT,
    UNIQUE (scope, client_id)
);
CREATE INDEX IF NOT EXISTS requests_pending ON requests(seq) WHERE outcome IS NULL;
"""

_COLUMNS = "seq, scope, client_id, tasks, meta, created_at, canceled, outcome"


@dataclass(frozen=True)
class StoredRequest:
    seq: int
    scope: Scope
    client_id: str
    tasks: list[dict[str, Any]]
    meta: dict[str, Any]
    created_at: float
    canceled: bool
    outcome: Outcome | None


def _row(row: tuple[Any, ...]) -> StoredRequest:
    seq, scope, client_id, tasks, meta, created_at, canceled, outcome = row
    return StoredRequest(
        int(seq),
        scope,
        str(client_id),
        json.loads(tasks),
        json.loads(meta),
        float(created_at),
        bool(canceled),
        outcome,
    )


class LanStore:
    """One connection, used from the daemon's event loop thread only."""

    def __init__(self, path: Path) -> None:
        self._db = open_durable(path)
        self._db.executescript(_SCHEMA)
        path.chmod(0o600)

    def close(self) -> None:
        self._db.close()

    def add(
        self, scope: Scope, client_id: str, tasks: list[dict[str, Any]], meta: dict[str, Any]
    ) -> tuple[StoredRequest, bool]:
        """Store a new request; a known client id returns the stored one and ``False``."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO requests (scope, client_id, tasks, meta, created_at)"
            " VALUES (?,?,?,?,?)",
            (
                scope,
                client_id,
                json.dumps(tasks, ensure_ascii=False),
                json.dumps(meta, ensure_ascii=False),
                time.time(),
            ),
        )
        stored = self.get(scope, client_id)
        assert stored is not None
        return stored, bool(cursor.rowcount)

    def get(self, scope: Scope, client_id: str) -> StoredRequest | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM requests WHERE scope=? AND client_id=?", (scope, client_id)
        ).fetchone()
        return None if row is None else _row(row)

    def pending(self) -> list[StoredRequest]:
        """Requests without a settled outcome, oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM requests INDEXED BY requests_pending"
            " WHERE outcome IS NULL ORDER BY seq"
        ).fetchall()
        return [_row(row) for row in rows]

    def mark_canceled(self, seq: int) -> None:
        self._db.execute("UPDATE requests SET canceled=1 WHERE seq=?", (seq,))

    def settle(self, seq: int, outcome: Outcome) -> None:
        self._db.execute("UPDATE requests SET outcome=? WHERE seq=?", (outcome, seq))

    def counts(self, scope: Scope) -> dict[str, int]:
        """Requests by settled outcome (``ready`` counts finished ones, as Atol does)."""
        rows = self._db.execute(
            "SELECT COALESCE(outcome, 'pending'), COUNT(*) FROM requests WHERE scope=?"
            " GROUP BY outcome",
            (scope,),
        ).fetchall()
        counts = {str(name): int(count) for name, count in rows}
        return {
            "pending": counts.get("pending", 0),
            "ready": counts.get("ready", 0) + counts.get("error", 0),
            "canceled": counts.get("canceled", 0),
        }
