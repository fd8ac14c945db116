"""The appliance's SQLite files, opened one way: durable and shared safely between processes.

The journal, the deliveries ledger, the chat conversations and the LAN requests each live in
a SQLite file the daemon must not lose a committed row of, even on power loss: WAL with
``synchronous=FULL`` (every commit is on disk before it returns), autocommit mode so a
transaction is exactly what :func:`transaction` brackets, and a busy timeout so a CLI
reading the journal while the daemon writes waits instead of failing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000


def open_durable(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection to ``path`` (created with its folder if missing), WAL, synchronous=FULL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=check_same_thread,
    )
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; ``ROLLBACK`` on any exception (re-raised)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
