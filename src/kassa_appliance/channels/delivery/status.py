"""The ``delivery`` section of ``status.json`` (``kassa-appliance status``)."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kassa_appliance.fiscal.journal_deliveries import (
    AWAITING,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    DeliveryLedger,
    DeliveryRow,
)
from kassa_appliance.inputs import shorten

SHOWN_FAILURES = 10
"""Failed deliveries listed (the latest); the count covers all of them."""
SHOWN_RETRIES = 10


@dataclass
class LoopErrors:
    """Unexpected errors of the worker's own loops (not of a sender): counted for status."""

    count: int = 0
    last: str | None = None

    def note(self, error: BaseException) -> None:
        self.count += 1
        self.last = shorten(str(error) or "no message", 300)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _failure(row: DeliveryRow) -> dict[str, Any]:
    return {
        "job": row.job_id,
        "kind": row.kind,
        "key": row.key,
        "reason": row.last_error or "no reason recorded",
        "attempts": row.attempts,
        "at": _when(row.updated_at),
    }


def _retry(row: DeliveryRow, now: float) -> dict[str, Any]:
    return {
        "job": row.job_id,
        "kind": row.kind,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "next_attempt_in": max(0.0, round(row.next_attempt_at - now, 1)),
    }


def delivery_status(
    ledger: DeliveryLedger,
    *,
    senders: Collection[str],
    remote: bool,
    loop_errors: int = 0,
    last_error: str | None = None,
) -> dict[str, Any]:
    """Counts by state, what waits and why, and the latest failures with their reasons."""
    now = time.time()
    counts = ledger.counts()
    no_sender = {
        kind: count for kind, count in sorted(ledger.open_by_kind().items()) if kind not in senders
    }
    waiting = [f"no sender for {kind} ({count})" for kind, count in no_sender.items()]
    awaiting = counts.get(AWAITING, 0)
    if awaiting and not remote:
        waiting.append(
            f"no Bitrix24 link: {awaiting} delivery(ies) of jobs in the Bitrix24 outbox wait "
            "until one is configured (or the job is printed here)"
        )
    return {
        "pending": counts.get(PENDING, 0) + counts.get(SENDING, 0),
        "sending": counts.get(SENDING, 0),
        "awaiting_outcome": awaiting,
        "sent": counts.get(SENT, 0),
        "failed": counts.get(FAILED, 0),
        "senders": sorted(senders),
        "waiting": waiting,
        "waiting_for_sender": no_sender,
        "failures": [_failure(row) for row in ledger.recent_failed(SHOWN_FAILURES)],
        "retrying": [_retry(row, now) for row in ledger.retrying(SHOWN_RETRIES)],
        "loop_errors": loop_errors,
        "last_loop_error": last_error,
    }
