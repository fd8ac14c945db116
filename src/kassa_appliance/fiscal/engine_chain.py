"""Consecutive receipts fiscalised back to back in the register thread.

Why it exists: with a queue of receipts, handing every result back to the event loop and
every next task back to the register thread cost as much as the job's two durable writes
(the journal commit and the register's own). A chain keeps the register thread busy:
after receipt N it records N's result and moves N+1 to ``fiscalizing`` (with the FD number
N's result gave) in one commit, and only then sends N+1 — the same durable steps in the
same order as the engine keeps, without waking the event loop in between.

The chain goes on only while the next job is a fresh, valid receipt and the engine lets
it (not stopping, register present, nothing left unprinted). Everything else — an error,
a service task, a job that needs the FD check — ends the chain and the engine handles it
on its ordinary path. The event loop still owns the per-call timeout: it watches
:meth:`ReceiptChain.call_deadline`, and once it gives up on a call (:meth:`abort`) the
chain sends and commits nothing more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from kassa_appliance.fiscal.journal import Job, JobState, Journal, JournalError, Transition
from kassa_appliance.registers.base import RECEIPT_TASK_TYPES, JsonDict, Register, RegisterError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChainStep:
    """A job as it is in the journal while its driver task is with the register."""

    job: Job
    task: JsonDict


@dataclass(frozen=True)
class ChainEnd:
    """Why the chain stopped. ``failed`` is the step the engine must take over, if any."""

    failed: ChainStep | None = None
    error: RegisterError | None = None
    aborted: bool = False


@dataclass(frozen=True)
class ChainHooks:
    """What the chain needs from the engine; every hook is safe to call from the thread."""

    journal: Callable[[], Journal]
    """The register thread's own journal connection."""
    prepare: Callable[[Job], JsonDict | None]
    """The driver task of a valid job, None for any other (the engine fails it on its
    own path); it must not raise, though the chain survives it if it does."""
    may_continue: Callable[[], bool]
    """False once the engine stops, the register is unplugged or printing is pending."""
    fiscalized: Callable[[Job, JsonDict], Transition]
    """The transition that records a job's fiscal result."""


class ReceiptChain:
    def __init__(
        self, first: ChainStep, register: Register, hooks: ChainHooks, timeout: float
    ) -> None:
        self._first = first
        self._register = register
        self._hooks = hooks
        self._timeout = timeout
        self._lock = threading.Lock()
        self._in_register: ChainStep | None = None
        self._deadline: float | None = None
        self._aborted = False
        self._committed: list[tuple[Job, JsonDict]] = []

    # -- the event loop's side -----------------------------------------------------------

    def call_deadline(self) -> float | None:
        """Monotonic time by which the register call in progress must end (None: none)."""
        return self._deadline

    def abort(self) -> ChainStep | None:
        """Give up on the chain; returns the step whose call is lost, if one is running."""
        with self._lock:
            self._aborted = True
            return self._in_register

    def take_committed(self) -> list[tuple[Job, JsonDict]]:
        """Jobs whose result is now durable in the journal, oldest first.

        The engine polls this (a wake-up of the event loop per receipt, for every thread
        hand-over of the GIL, cost more than the results are worth in between).
        """
        with self._lock:
            committed, self._committed = self._committed, []
            return committed

    @property
    def in_register(self) -> ChainStep | None:
        return self._in_register

    # -- the register thread's side ------------------------------------------------------

    def run(self) -> ChainEnd:
        journal = self._hooks.journal()
        step = self._first
        finished: tuple[Job, JsonDict] | None = None
        while True:
            if finished is not None:
                # The previous result and this job's start, durable before it is sent.
                done = self._hooks.fiscalized(*finished)
                start = Transition(
                    step.job.id,
                    JobState.FISCALIZING,
                    fd_before=step.job.fd_before,
                    count_attempt=True,
                )
                try:
                    journal.commit([done, start])
                except JournalError:
                    # Refused (the job changed under us): record the result alone and let
                    # the engine take the queue from the journal.
                    journal.commit([done])
                    self._record(finished)
                    return ChainEnd()
                self._record(finished)
            with self._lock:
                if self._aborted:
                    return ChainEnd(aborted=True)
                self._in_register = step
                self._deadline = time.monotonic() + self._timeout
            try:
                result = self._register.process(step.task, request_id=step.job.id)
            except RegisterError as error:
                with self._lock:
                    self._in_register = self._deadline = None
                    if self._aborted:
                        return ChainEnd(aborted=True)
                return ChainEnd(failed=step, error=error)
            with self._lock:
                self._in_register = self._deadline = None
                if self._aborted:
                    # The loop already treats this call as lost; the FD check settles it.
                    return ChainEnd(aborted=True)
            finished = (step.job, result)
            try:
                following = self._next_step(journal, step.job, result)
            except Exception:
                # Whatever went wrong looking ahead (a poison job, a journal read), this
                # receipt's result must still be recorded; the engine takes the queue on.
                log.exception("receipt chain: cannot take the next job; ending the chain")
                following = None
            if following is None:
                journal.commit([self._hooks.fiscalized(step.job, result)])
                self._record(finished)
                return ChainEnd()
            step = following

    def _next_step(self, journal: Journal, current: Job, result: JsonDict) -> ChainStep | None:
        """The queue head after ``current``, if it may follow it in this chain."""
        params = result.get("fiscalParams")
        warnings = result.get("warnings")
        if not isinstance(params, dict) or "fiscalDocumentNumber" not in params:
            return None
        if isinstance(warnings, dict) and warnings.get("notPrinted"):
            return None
        if not self._hooks.may_continue():
            return None
        head = journal.next_pending_except(current.id)
        if (
            head is None
            or head.state is not JobState.RECEIVED
            or head.task_type not in RECEIPT_TASK_TYPES
        ):
            return None
        task = self._hooks.prepare(head)
        if task is None:
            return None
        fd_before = int(params["fiscalDocumentNumber"])
        started = replace(
            head, state=JobState.FISCALIZING, fd_before=fd_before, attempts=head.attempts + 1
        )
        return ChainStep(started, task)

    def _record(self, finished: tuple[Job, JsonDict]) -> None:
        with self._lock:
            self._committed.append(finished)
