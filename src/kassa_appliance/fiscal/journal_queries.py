"""The read side of the job journal: the queries that look jobs up without changing them.

Owns :class:`JournalQueries`, the base of :class:`kassa_appliance.fiscal.journal.Journal`
holding its reading methods (a job by id, its state, the pending queue head, recent and
unreported jobs, counts). They run on the Journal's own connection, so each thread still
reads through its own Journal; opening the connection and every write stay in
:mod:`kassa_appliance.fiscal.journal`.
"""

from __future__ import annotations

import sqlite3

from kassa_appliance.fiscal.journal_schema import COLUMNS, PENDING_SQL, Job, JobState, row_to_job

__all__ = ["JournalQueries"]


class JournalQueries:
    """Reading methods over ``_db``, the connection the subclass opens."""

    _db: sqlite3.Connection

    def _get(self, job_id: str) -> Job | None:
        row = self._db.execute(f"SELECT {COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else row_to_job(row)

    def get(self, job_id: str) -> Job | None:
        return self._get(job_id)

    def state_of(self, job_id: str) -> JobState | None:
        """Just the state: cheap enough to poll."""
        row = self._db.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else JobState(row[0])

    def next_pending(self, after_seq: int = 0) -> Job | None:
        """The oldest job that still needs the register (FIFO by arrival)."""
        row = self._db.execute(
            f"SELECT {COLUMNS} FROM jobs WHERE {PENDING_SQL} AND seq>? ORDER BY seq LIMIT 1",
            (after_seq,),
        ).fetchone()
        return None if row is None else row_to_job(row)

    def next_pending_except(self, *job_ids: str) -> Job | None:
        """The oldest pending job other than ``job_ids`` (the queue head after them)."""
        marks = ",".join("?" * len(job_ids))
        row = self._db.execute(
            f"SELECT {COLUMNS} FROM jobs WHERE {PENDING_SQL} AND id NOT IN ({marks})"
            " ORDER BY seq LIMIT 1",
            job_ids,
        ).fetchone()
        return None if row is None else row_to_job(row)

    def pending_count(self) -> int:
        (count,) = self._db.execute(
            f"SELECT COUNT(*) FROM jobs INDEXED BY jobs_pending WHERE {PENDING_SQL}"
        ).fetchone()
        return int(count)

    def recent(self, limit: int = 20, state: JobState | None = None) -> list[Job]:
        if state is None:
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM jobs ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM jobs WHERE state=? ORDER BY seq DESC LIMIT ?",
                (state.value, limit),
            ).fetchall()
        return [row_to_job(row) for row in rows]

    def all_jobs(self) -> list[Job]:
        rows = self._db.execute(f"SELECT {COLUMNS} FROM jobs ORDER BY seq").fetchall()
        return [row_to_job(row) for row in rows]

    def unreported(self, limit: int = 100) -> list[Job]:
        """Final jobs whose outcome must still be written back (e.g. to Bitrix24)."""
        rows = self._db.execute(
            f"SELECT {COLUMNS} FROM jobs INDEXED BY jobs_unreported"
            " WHERE needs_report=1 AND reported_at IS NULL AND state IN (?,?)"
            " ORDER BY seq LIMIT ?",
            (JobState.FISCALIZED.value, JobState.FAILED.value, limit),
        ).fetchall()
        return [row_to_job(row) for row in rows]

    def counts_by_state(self) -> dict[JobState, int]:
        rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {JobState(state): int(count) for state, count in rows}
