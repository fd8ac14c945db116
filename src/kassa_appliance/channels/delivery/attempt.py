"""One attempt at one delivery: look, mark, send, record.

The order is what makes a delivery exactly once (see docs/delivery.md):

1. a row that was attempted before (``attempts > 0``: an earlier send failed for now, or
   the worker died with the row in ``sending``) may have reached the recipient, so the
   sender's ``find_sent`` is asked first; a reference found is recorded ``sent``;
2. the row is marked ``sending`` (attempts + 1) in a committed transaction;
3. the sender's ``send`` is called;
4. its reference is recorded ``sent``.

A crash between 2 and 4 leaves the row in ``sending``: step 1 settles it. A
:class:`DeliveryRetry` puts the row back to ``pending`` after the back-off, a
:class:`DeliveryFailed` makes it ``failed`` with the reason, and anything else a sender
raises (or a sender that does not answer within the timeout) counts as a retry, with the
traceback logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from kassa_appliance.channels.delivery.backoff import Backoff
from kassa_appliance.channels.delivery.debug_hooks import PauseAfterSend
from kassa_appliance.channels.delivery.outcomes import outcome_from_json
from kassa_appliance.channels.delivery.protocol import (
    Delivery,
    DeliveryFailed,
    DeliveryRetry,
    Sender,
)
from kassa_appliance.fiscal.journal_deliveries import DeliveryLedger, DeliveryRow
from kassa_appliance.inputs import shorten

log = logging.getLogger("kassa_appliance.channels.delivery")


@dataclass(frozen=True, slots=True)
class AttemptSettings:
    backoff: Backoff
    send_timeout: float
    """Seconds a sender's ``send``/``find_sent`` may take; longer counts as a retry."""
    pause_after_send: PauseAfterSend | None = None


def _reference(value: object) -> str:
    return "" if value is None else str(value)


async def attempt_delivery(
    ledger: DeliveryLedger,
    sender: Sender,
    row: DeliveryRow,
    settings: AttemptSettings,
    changed: Callable[[], None],
) -> None:
    """Work one delivery due now; never raises but CancelledError (the row then stays as
    it was: ``sending`` once marked, settled by ``find_sent`` next time)."""
    if row.outcome is None:
        log.error("delivery %s is %s without an outcome; skipped", row.key, row.state)
        return
    try:
        outcome = outcome_from_json(row.outcome)
    except ValueError as error:
        ledger.mark_failed(row.key, f"the stored outcome cannot be read: {error}")
        changed()
        return

    def delivery(attempt: int) -> Delivery:
        return Delivery(row.job_id, row.target, row.key, attempt, outcome)

    attempts = row.attempts
    stage = "find_sent"
    try:
        async with asyncio.timeout(settings.send_timeout):
            if attempts > 0:
                found = await sender.find_sent(delivery(attempts))
                if found is not None:
                    ledger.mark_sent(row.key, _reference(found))
                    log.info(
                        "delivery %s (%s, job %s) was sent before: %s",
                        row.key,
                        row.kind,
                        row.job_id,
                        shorten(_reference(found), 100),
                    )
                    changed()
                    return
            stage = "send"
            marked = ledger.mark_sending(row.key)
            attempts = marked.attempts
            reference = await sender.send(delivery(attempts))
        stage = "record"
        if settings.pause_after_send is not None:
            await settings.pause_after_send(delivery(attempts))
        ledger.mark_sent(row.key, _reference(reference))
        log.info("delivered %s (%s, job %s), attempt %d", row.key, row.kind, row.job_id, attempts)
    except DeliveryFailed as failure:
        ledger.mark_failed(row.key, failure.reason or "the recipient refused it")
        log.error(
            "delivery %s (%s, job %s) failed for good: %s",
            row.key,
            row.kind,
            row.job_id,
            failure.reason,
        )
    except DeliveryRetry as retry:
        _retry(
            ledger, row, settings, retry.reason or "temporary failure", attempts, retry.retry_after
        )
    except TimeoutError:
        _retry(
            ledger,
            row,
            settings,
            f"the {row.kind} sender gave no answer within {settings.send_timeout:g} s ({stage})",
            attempts,
        )
    except Exception as error:  # a sender's bug must not stop the other deliveries
        if stage == "record":
            log.exception("delivery %s was sent but could not be recorded", row.key)
            return  # the row stays "sending": find_sent settles it
        log.exception("the %s sender raised an unexpected error (%s)", row.kind, stage)
        reason = (
            f"unexpected error in the {row.kind} sender ({stage}): "
            f"{shorten(str(error) or 'no message', 200)}; the traceback is in the daemon log"
        )
        _retry(ledger, row, settings, reason, attempts)
    changed()


def _retry(
    ledger: DeliveryLedger,
    row: DeliveryRow,
    settings: AttemptSettings,
    reason: str,
    attempts: int,
    retry_after: float | None = None,
) -> None:
    delay = settings.backoff.delay(max(1, attempts), retry_after)
    ledger.mark_retry(row.key, reason, time.time() + delay)
    log.warning(
        "delivery %s (%s, job %s) attempt %d: %s; next in %.1f s",
        row.key,
        row.kind,
        row.job_id,
        attempts,
        shorten(reason, 300),
        delay,
    )
