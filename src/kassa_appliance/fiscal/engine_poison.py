"""Poison jobs: a job can fail, the queue cannot.

The engine works the queue strictly in arrival order, so a job it cannot handle would
hold every job behind it. This module holds the engine's rules for such a job:

* **Preparing** a job (filling in the configured defaults, validating, building the
  driver task) is pure computation on the stored task. An exception there other than a
  validation error is an internal error: it is raised as :class:`JobStepFailed` naming
  the step, the traceback goes to the log only, and the job's message says
  ``internal error while <step>``. The same input fails the same way every time, so
  retrying is useless.
* A job still ``received`` has certainly not reached the register: it is failed at once.
  A job ``fiscalizing`` or ``blocked`` may have: the engine runs the FD check first and
  fails it only when the register has no receipt for it (see ``Engine._settle``).
* Any other unexpected exception while the engine works a job (a bug further on, an odd
  driver answer) is counted per job by :class:`InternalErrors`. A ``received`` job is
  failed after :data:`INTERNAL_ERROR_LIMIT` of them in a row. A job past ``received`` is
  kept — failing it blindly could lose a receipt the register printed, and retrying is
  what lets the FD check settle it once the cause is gone — but the engine backs off
  (never spinning), says in ``status`` which job holds the queue and why, and raises an
  alert so a person looks at the log.
* Journal errors (SQLite: disk full, file locked) are not the job's fault and are never
  counted against it: failing the job would need the same broken journal anyway.
* A transition refused because the job became final meanwhile — an operator cancelled
  it between the engine reading it and moving it on — means the job is skipped
  (:func:`apply_unless_final`), not an error.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from kassa_appliance.fiscal.journal import Job, JobState, Journal, JournalError, Transition
from kassa_appliance.fiscal.receipt import TaskValidationError
from kassa_appliance.inputs import shorten

log = logging.getLogger(__name__)

INTERNAL_ERROR_CODE = "internal-error"
INTERNAL_ERROR_LIMIT = 3
"""Unexpected errors in a row after which a job still ``received`` is failed."""
SHOWN_ERROR_LENGTH = 200
"""Characters of an exception's text shown in status (the log has all of it)."""

_Value = TypeVar("_Value")
_Result = TypeVar("_Result")


class JobStepFailed(Exception):
    """An unexpected exception while preparing one job; ``part`` names the step."""

    def __init__(self, part: str) -> None:
        super().__init__(f"internal error while {part}")
        self.part = part


def run_step(part: str, step: Callable[[_Value], _Result], value: _Value) -> _Result:
    """``step(value)``, with any exception but a validation error (which says what is
    wrong with the task, and which the caller handles) turned into :class:`JobStepFailed`."""
    try:
        return step(value)
    except TaskValidationError:
        raise
    except Exception as error:
        raise JobStepFailed(part) from error


def internal_error_message(part: str, consequence: str | None = None) -> str:
    """The job's message for an internal error: what part failed, never Python's words."""
    text = f"internal error while {part}; the details are in the appliance log"
    return f"{text}; {consequence}" if consequence else text


def log_internal_error(job_id: str, what: str, error: BaseException) -> None:
    """The traceback goes here, and only here."""
    log.error("job %s: %s", job_id, what, exc_info=(type(error), error, error.__traceback__))


def apply_unless_final(journal: Journal, change: Transition) -> Job | None:
    """Apply ``change``; None when it was refused because the job is final meanwhile.

    The one way a pending job becomes final behind the engine's back is a cancel
    (:meth:`Journal.cancel`, atomic on ``state='received'``): whoever commits first wins,
    and the engine, having lost, skips the job. Any other refusal is a real error.
    """
    try:
        return journal.transition(change)
    except JournalError:
        current = journal.get(change.job_id)
        if current is None or not current.state.is_final:
            raise
        log.info(
            "job %s is %s meanwhile (%s); skipping it",
            change.job_id,
            current.state.value,
            current.error_message or current.error_code or "no reason recorded",
        )
        return None


def describe_error(error: BaseException) -> str:
    """An exception in a few words for status: its text, shortened, without its type."""
    text = str(error) or "no details"
    return shorten(text, SHOWN_ERROR_LENGTH)


def total_only(task: object) -> dict[str, Any]:
    """What the FD check compares of a task that cannot be parsed: its total, when it is
    a finite number (the check needs no other field)."""
    total = task.get("total") if isinstance(task, dict) else None
    if isinstance(total, int | float) and not isinstance(total, bool) and math.isfinite(total):
        return {"total": total}
    return {}


class InternalErrors:
    """Unexpected errors per job, and what the engine does about the next one."""

    def __init__(self, journal: Journal, limit: int = INTERNAL_ERROR_LIMIT) -> None:
        self._journal = journal
        self._limit = limit
        self._counts: dict[str, int] = {}

    def clear(self, job_id: str) -> None:
        """The engine handled the job without an unexpected error."""
        self._counts.pop(job_id, None)

    def count(self, job_id: str) -> int:
        return self._counts.get(job_id, 0)

    def handle(self, job: Job, error: Exception) -> str | None:
        """Deal with ``error`` raised while working ``job``.

        Returns why the queue waits (for status), or None when the job is out of the
        way (failed now, or final already). Never raises for the job's sake; a journal
        that cannot be written is reported and retried by the caller.
        """
        if isinstance(error, sqlite3.Error):
            log.error("job %s: the journal failed: %s; will retry", job.id, error)
            return f"the journal cannot be used ({describe_error(error)}); retrying"
        log_internal_error(job.id, "unexpected error", error)
        try:
            current = self._journal.get(job.id)
        except Exception as read_error:
            log.error("job %s: cannot read it back: %s", job.id, read_error)
            return f"internal error on job {job.id}, and the journal cannot be read; retrying"
        if current is None or current.state.is_final:
            self.clear(job.id)
            return None
        times = self._counts.get(job.id, 0) + 1
        self._counts[job.id] = times
        if current.state is JobState.RECEIVED:
            if times < self._limit:
                return (
                    f"internal error on job {job.id} ({describe_error(error)}); "
                    f"retry {times} of {self._limit - 1}"
                )
            self.clear(job.id)
            message = internal_error_message(
                "processing the job", f"it failed {times} times and never reached the register"
            )
            try:
                failed = apply_unless_final(
                    self._journal,
                    Transition(
                        job.id,
                        JobState.FAILED,
                        error_code=INTERNAL_ERROR_CODE,
                        error_message=message,
                    ),
                )
            except Exception as write_error:
                log.error("job %s: cannot record its failure: %s", job.id, write_error)
                return f"internal error on job {job.id}; cannot record it as failed; retrying"
            if failed is not None:
                log.warning("job %s failed: %s: %s", job.id, INTERNAL_ERROR_CODE, message)
            return None
        # Past `received`: the register may have the document. Keep the job for the FD
        # check; the pause between tries grows to the engine's max_retry_interval.
        return (
            f"internal error on job {job.id} ({describe_error(error)}), {times} times; it "
            f"is {current.state.value} and may have reached the register, so it is kept "
            "until the FD check can settle it: see the appliance log"
        )

    def holds_queue(self, job_id: str) -> bool:
        """The job keeps failing past ``received``: worth an alert."""
        return self._counts.get(job_id, 0) >= self._limit
