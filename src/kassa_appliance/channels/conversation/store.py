"""What the conversation engine keeps across restarts: ``<data_dir>/conversations.sqlite3``.

* ``conversations`` — each chat's state (draft.py), per (messenger, chat);
* ``updates`` — the update ids already handled: a re-delivered update is ignored;
* ``outbox`` — every message the engine decided to send, under its stable key, with the
  messenger's message id once sent. A state change, the update's mark and its replies are
  one transaction, so a crash never loses a reply nor sends one twice for one key;
* ``jobs`` — the receipts created from chats: "creating" is recorded before the delivery
  worker is told and the KASSAJOB item added, "published" with the item id after.

SQLite in WAL mode with ``synchronous=FULL``, like the journal. One connection, used from
the event loop's thread only (each call is a short transaction).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kassa_appliance.channels.conversation.transport import Button, Keyboard
from kassa_appliance.sqlite_files import open_durable, transaction

__all__ = ["FILE_NAME", "ChatJob", "ConversationStore", "OutMessage"]

FILE_NAME = "conversations.sqlite3"
UPDATES_KEPT_SECONDS = 30 * 24 * 3600.0
"""Handled update ids are kept this long: messengers re-deliver within hours, not weeks."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    messenger TEXT NOT NULL, chat_id TEXT NOT NULL, body TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (messenger, chat_id));
CREATE TABLE IF NOT EXISTS updates (
    messenger TEXT NOT NULL, update_id TEXT NOT NULL, chat_id TEXT NOT NULL,
    handled REAL NOT NULL, PRIMARY KEY (messenger, update_id));
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, messenger TEXT NOT NULL,
    chat_id TEXT NOT NULL, body TEXT NOT NULL, sent_id TEXT, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (messenger, chat_id) WHERE sent_id IS NULL;
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, messenger TEXT NOT NULL, chat_id TEXT NOT NULL,
    user_id TEXT NOT NULL, kassa TEXT NOT NULL, kind TEXT NOT NULL, total TEXT NOT NULL,
    task TEXT NOT NULL, draft TEXT NOT NULL, target TEXT NOT NULL, return_of TEXT,
    stage TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, item_id INTEGER,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_by_user ON jobs (messenger, user_id, created);
"""


@dataclass(frozen=True, slots=True)
class OutMessage:
    key: str
    chat_id: str
    text: str
    keyboard: Keyboard = ()

    def body(self) -> str:
        rows = [[[b.text, b.action] for b in row] for row in self.keyboard]
        return json.dumps({"text": self.text, "keyboard": rows}, ensure_ascii=False)

    @classmethod
    def from_row(cls, key: str, chat_id: str, body: str) -> OutMessage:
        data = json.loads(body)
        keyboard = tuple(
            tuple(Button(str(text), str(action)) for text, action in row)
            for row in data.get("keyboard", [])
        )
        return cls(key, chat_id, str(data["text"]), keyboard)


@dataclass(frozen=True, slots=True)
class ChatJob:
    job_id: str
    messenger: str
    chat_id: str
    user_id: str
    kassa: str
    kind: str
    total: str
    task: dict[str, Any]
    draft: dict[str, Any]
    target: dict[str, Any]
    return_of: str | None
    stage: str
    """``creating`` until the KASSAJOB item exists, then ``published``."""
    attempts: int
    item_id: int | None
    created: float


_JOB_COLUMNS = (
    "job_id, messenger, chat_id, user_id, kassa, kind, total, task, draft, target,"
    " return_of, stage, attempts, item_id, created"
)


def _job(row: Sequence[Any]) -> ChatJob:
    return ChatJob(
        job_id=row[0],
        messenger=row[1],
        chat_id=row[2],
        user_id=row[3],
        kassa=row[4],
        kind=row[5],
        total=row[6],
        task=json.loads(row[7]),
        draft=json.loads(row[8]),
        target=json.loads(row[9]),
        return_of=row[10],
        stage=row[11],
        attempts=int(row[12]),
        item_id=row[13],
        created=float(row[14]),
    )


class ConversationStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_durable(path, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "DELETE FROM updates WHERE handled < ?", (time.time() - UPDATES_KEPT_SECONDS,)
        )

    @classmethod
    def open(cls, data_dir: Path) -> ConversationStore:
        return cls(data_dir / FILE_NAME)

    def close(self) -> None:
        self._db.close()

    # --- reads -------------------------------------------------------------------------

    def seen(self, messenger: str, update_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM updates WHERE messenger=? AND update_id=?", (messenger, update_id)
        ).fetchone()
        return row is not None

    def conversation(self, messenger: str, chat_id: str) -> str | None:
        row = self._db.execute(
            "SELECT body FROM conversations WHERE messenger=? AND chat_id=?",
            (messenger, chat_id),
        ).fetchone()
        return None if row is None else str(row[0])

    def unsent(self, messenger: str, chat_id: str | None = None) -> list[OutMessage]:
        query = "SELECT key, chat_id, body FROM outbox WHERE messenger=? AND sent_id IS NULL"
        args: tuple[str, ...] = (messenger,)
        if chat_id is not None:
            query += " AND chat_id=?"
            args += (chat_id,)
        rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        return [OutMessage.from_row(*row) for row in rows]

    def sent_id(self, key: str) -> str | None:
        row = self._db.execute("SELECT sent_id FROM outbox WHERE key=?", (key,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def job(self, job_id: str) -> ChatJob | None:
        row = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id=?", (job_id,)
        ).fetchone()
        return None if row is None else _job(row)

    def creating_jobs(self, messenger: str) -> list[ChatJob]:
        rows = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE messenger=? AND stage='creating'"
            " ORDER BY created",
            (messenger,),
        ).fetchall()
        return [_job(row) for row in rows]

    def recent_jobs(self, messenger: str, user_id: str, limit: int = 5) -> list[ChatJob]:
        rows = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE messenger=? AND user_id=?"
            " ORDER BY created DESC, rowid DESC LIMIT ?",
            (messenger, user_id, limit),
        ).fetchall()
        return [_job(row) for row in rows]

    def returned(self, job_ids: Sequence[str]) -> set[str]:
        """Which of these jobs already have a return created from a chat."""
        if not job_ids:
            return set()
        marks = ",".join("?" for _ in job_ids)
        rows = self._db.execute(
            f"SELECT return_of FROM jobs WHERE return_of IN ({marks})", tuple(job_ids)
        ).fetchall()
        return {str(row[0]) for row in rows}

    # --- writes ------------------------------------------------------------------------

    def commit(
        self,
        *,
        messenger: str,
        chat_id: str,
        update_id: str | None,
        conversation: str | None,
        messages: Sequence[OutMessage] = (),
        job: ChatJob | None = None,
    ) -> None:
        """One transaction: the chat's new state, the update marked handled, its replies
        queued, the job recorded ("creating")."""
        now = time.time()
        with self._transaction():
            if conversation is not None:
                self._db.execute(
                    "INSERT INTO conversations (messenger, chat_id, body, updated)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (messenger, chat_id)"
                    " DO UPDATE SET body=excluded.body, updated=excluded.updated",
                    (messenger, chat_id, conversation, now),
                )
            if update_id is not None:
                self._db.execute(
                    "INSERT OR IGNORE INTO updates (messenger, update_id, chat_id, handled)"
                    " VALUES (?, ?, ?, ?)",
                    (messenger, update_id, chat_id, now),
                )
            for message in messages:
                self._db.execute(
                    "INSERT OR IGNORE INTO outbox (key, messenger, chat_id, body, created)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (message.key, messenger, message.chat_id, message.body(), now),
                )
            if job is not None:
                self._db.execute(
                    f"INSERT OR IGNORE INTO jobs ({_JOB_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job.job_id,
                        job.messenger,
                        job.chat_id,
                        job.user_id,
                        job.kassa,
                        job.kind,
                        job.total,
                        json.dumps(job.task, ensure_ascii=False),
                        json.dumps(job.draft, ensure_ascii=False),
                        json.dumps(job.target, ensure_ascii=False),
                        job.return_of,
                        job.stage,
                        job.attempts,
                        job.item_id,
                        job.created,
                    ),
                )

    def mark_sent(self, key: str, message_id: str) -> None:
        self._db.execute("UPDATE outbox SET sent_id=? WHERE key=?", (message_id, key))

    def job_attempt(self, job_id: str) -> int:
        """Count one more attempt to create the job; returns the attempts made before."""
        with self._transaction():
            row = self._db.execute("SELECT attempts FROM jobs WHERE job_id=?", (job_id,)).fetchone()
            before = 0 if row is None else int(row[0])
            self._db.execute("UPDATE jobs SET attempts=attempts+1 WHERE job_id=?", (job_id,))
        return before

    def job_published(
        self,
        job_id: str,
        item_id: int,
        *,
        conversation: tuple[str, str, str] | None = None,
        messages: Sequence[OutMessage] = (),
    ) -> None:
        """The KASSAJOB item exists; with the chat's new state and the "sent to the kassa"
        reply in the same transaction (``conversation`` = messenger, chat id, body)."""
        now = time.time()
        with self._transaction():
            self._db.execute(
                "UPDATE jobs SET stage='published', item_id=? WHERE job_id=?", (item_id, job_id)
            )
            if conversation is not None:
                messenger, chat_id, body = conversation
                self._db.execute(
                    "UPDATE conversations SET body=?, updated=? WHERE messenger=? AND chat_id=?",
                    (body, now, messenger, chat_id),
                )
                for message in messages:
                    self._db.execute(
                        "INSERT OR IGNORE INTO outbox (key, messenger, chat_id, body, created)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (message.key, messenger, message.chat_id, message.body(), now),
                    )

    def queue(self, messenger: str, messages: Sequence[OutMessage]) -> None:
        self.commit(
            messenger=messenger, chat_id="", update_id=None, conversation=None, messages=messages
        )

    def _transaction(self) -> AbstractContextManager[None]:
        return transaction(self._db)
