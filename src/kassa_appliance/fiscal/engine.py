"""The engine: takes jobs from the journal in arrival order and fiscalises them on one register.

One engine per register. It is the only code that talks to the register, and it keeps the
exactly-once rules of ARCHITECTURE §3:

* a job becomes ``fiscalizing`` (with the register's last FD number) in a committed
  transaction *before* its fiscal task is sent;
* a job found ``fiscalizing`` or ``blocked`` — after a crash, a lost connection or a
  driver timeout — is resolved by asking the register what its last *receipt* is: if its
  FD number is above the one stored, the job was fiscalised (read the fiscal params,
  ``continuePrint``); only otherwise is the task sent again. Comparing the last receipt,
  not any FD, keeps a shift the engine opened itself from being mistaken for the job.

Errors are handled by category (``registers.base``): WAIT (no paper, cover, unplugged)
keeps the job queued and polls; SHIFT fixes the shift by policy; AMBIGUOUS marks the job
``blocked`` until the FD check can run; DEFINITIVE fails the job with the Atol code.

This module owns the Engine's public surface, its run loop and the dispatch of one job.
The rest is in mixins, one module each: ``engine_queue`` (waiting, service jobs),
``engine_shift``, ``engine_recovery`` (the FD check), ``engine_connection``,
``engine_chain_run``, ``engine_status``; ``engine_base`` declares their shared state.
"""

from __future__ import annotations

import asyncio
import logging
import time

from kassa_appliance.aio import wait_event
from kassa_appliance.fiscal.caller import RegisterCaller
from kassa_appliance.fiscal.engine_base import EngineSettings, MustWait
from kassa_appliance.fiscal.engine_chain import ChainStep
from kassa_appliance.fiscal.engine_chain_run import ChainRunning
from kassa_appliance.fiscal.engine_connection import RegisterConnection
from kassa_appliance.fiscal.engine_poison import (
    InternalErrors,
    JobStepFailed,
    apply_unless_final,
    run_step,
)
from kassa_appliance.fiscal.engine_queue import SERVICE_TASK_TYPES, QueuePacing
from kassa_appliance.fiscal.engine_recovery import Recovery
from kassa_appliance.fiscal.engine_shift import ShiftPolicy
from kassa_appliance.fiscal.engine_status import (
    FN_FAULT_CODES,
    QUEUE_DEPTH_TTL,
    EngineStatus,
    Progress,
    StatusListener,
    wait_reason,
)
from kassa_appliance.fiscal.journal import Job, JobState, Journal, Transition, UnreadableTask
from kassa_appliance.fiscal.receipt import (
    Task,
    TaskValidationError,
    is_fiscal,
    parse_task,
    to_driver_json,
)
from kassa_appliance.registers.base import (
    FISCAL_TASK_TYPES,
    ErrorCategory,
    JsonDict,
    Register,
    RegisterError,
)

__all__ = [
    "QUEUE_DEPTH_TTL",
    "SERVICE_TASK_TYPES",
    "Engine",
    "EngineSettings",
    "EngineStatus",
    "StatusListener",
]

log = logging.getLogger(__name__)


class Engine(QueuePacing, ShiftPolicy, Recovery, ChainRunning, RegisterConnection):
    def __init__(
        self,
        journal: Journal,
        register: Register,
        settings: EngineSettings | None = None,
    ) -> None:
        self._journal = journal
        self._register = register
        self._settings = settings or EngineSettings()
        self._caller = RegisterCaller(register, self._settings.call_timeout)
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._available = asyncio.Event()
        self._available.set()
        self._finished = asyncio.Event()
        self._stopping = False
        self._opened = False
        self._last_fd = None
        self._progress = Progress()
        self._listeners: list[StatusListener] = []
        self._last_status: EngineStatus | None = None
        self._retry_delay = self._settings.retry_interval
        self._shift_fix_ambiguous = False
        self._depth = 0
        self._depth_counted_at: float | None = None
        self._thread_journal = None
        self._internal_errors = InternalErrors(journal)

    # -- public surface ----------------------------------------------------------------

    @property
    def journal(self) -> Journal:
        return self._journal

    def wake(self) -> None:
        """A new job is in the journal."""
        self._wake.set()

    def add_listener(self, listener: StatusListener) -> None:
        self._listeners.append(listener)

    @property
    def register_call_hung(self) -> bool:
        """A driver call outlived its timeout and has not come back yet."""
        return self._caller.hung

    def set_register_available(self, available: bool, usb_path: str | None = None) -> None:
        """Hotplug: the device was unplugged (jobs wait) or plugged in (reconnect)."""
        if usb_path is not None and hasattr(self._register, "usb_path"):
            self._register.usb_path = usb_path
        if available:
            self._available.set()
        else:
            self._available.clear()
            self._opened = False
            self._last_fd = None
            self._progress.register_online = False
            self._set_waiting("register unplugged: jobs wait until it is connected again")
        self._wake.set()

    async def wait_for(self, job_id: str, timeout: float | None = None) -> Job:
        """Wait until a job reaches a final state (or the timeout passes); return it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self._journal.state_of(job_id)
            if state is None:
                raise KeyError(job_id)
            remaining = None if deadline is None else deadline - time.monotonic()
            if state.is_final or (remaining is not None and remaining <= 0):
                job = self._journal.get(job_id)
                assert job is not None
                return job
            self._changed.clear()
            wait = self._settings.journal_poll_interval
            if remaining is not None:
                wait = min(wait, remaining)
            await wait_event(self._changed, wait)

    async def stop(self) -> None:
        """Finish the step in flight, then let run() return."""
        self._stopping = True
        self._wake.set()
        self._available.set()

    async def stopped(self) -> None:
        """Wait until run() has returned (after stop())."""
        await self._finished.wait()

    async def run(self) -> None:
        """Work the queue until stop() is called."""
        try:
            while not self._stopping:
                try:
                    job = self._journal.next_pending()
                except Exception as error:
                    log.exception("cannot read the next job from the journal; will retry")
                    self._set_waiting(f"cannot read the next job from the journal: {error}")
                    await self._pause()
                    continue
                if job is None:
                    self._depth_counted_at = None  # idle: the next status counts afresh
                    if self._opened:
                        self._set_waiting(None)
                    await self._idle()
                    continue
                try:
                    await self._ensure_ready()
                    await self._work(job)
                    self._internal_errors.clear(job.id)
                    self._retry_delay = self._settings.retry_interval
                except MustWait as wait:
                    waiting = wait.job or job
                    self._set_waiting(wait.reason)
                    if not self._stopping:
                        self._journal.set_wait_reason(waiting.id, wait.code)
                    await self._serve_service_jobs_while_waiting(waiting)
                    await self._pause()
                except Exception as error:
                    # A bug or an unexpected driver answer: bounded for a job that never
                    # reached the register, kept for the FD check otherwise (engine_poison).
                    await self._after_internal_error(job, error)
        finally:
            self._finished.set()
            await self._caller.wait_until_free()
            if self._thread_journal is not None:
                await self._caller.run(self._thread_journal.close)
            if self._opened:
                await self._close_register()
            self._caller.shutdown()
            self._publish_status()

    # -- one job -----------------------------------------------------------------------

    async def _work(self, job: Job) -> None:
        self._progress.current_job = job.id
        self._publish_status()
        try:
            try:
                driver_task = self._prepare(job)
            except JobStepFailed as failure:
                await self._settle_unprepared(job, failure)
                return
            if driver_task is None:
                return
            if job.task_type in FISCAL_TASK_TYPES:
                await self._fiscalise(job, driver_task)
            else:
                await self._run_plain(job, driver_task)
        finally:
            self._progress.current_job = None
            self._changed.set()
            self._publish_status()

    def _prepare_quietly(self, job: Job) -> JsonDict | None:
        """The driver task of a valid job, or None: the chain ends, and the engine
        prepares the job again on its own path, where a failure fails the job."""
        try:
            return to_driver_json(parse_task(self._with_defaults(job.task)))
        except Exception:
            return None

    def _prepare(self, job: Job) -> JsonDict | None:
        """Validate the stored task; a malformed one fails the job with the reason.

        Raises :class:`JobStepFailed` for any other exception (engine_poison).
        """
        if isinstance(job.task, UnreadableTask):
            raise JobStepFailed("reading the task from the journal")
        raw = run_step("filling in the configured defaults", self._with_defaults, job.task)
        try:
            task = run_step("validating the task", parse_task, raw)
        except TaskValidationError as error:
            if job.state is JobState.RECEIVED or job.task_type is None:
                # A task without a type the register knows cannot have been sent in any
                # version of the engine: nothing can be on the register for it.
                self._finish_failed(job, "invalid-task", str(error))
                return None
            # A job past `received` was valid when it started; never fail it silently
            # because a newer validator disagrees — the register will judge it (after
            # the FD check, for a fiscal one).
            log.warning("job %s no longer validates (%s); sending it as stored", job.id, error)
            return dict(raw) if isinstance(raw, dict) else None
        return run_step("preparing the driver task", self._driver_task, task)

    @staticmethod
    def _driver_task(task: Task) -> JsonDict:
        driver_task = to_driver_json(task)
        if is_fiscal(task) != (task.type in FISCAL_TASK_TYPES):
            raise AssertionError(f"fiscal task sets disagree for {task.type}")
        return driver_task

    async def _run_plain(self, job: Job, task: JsonDict) -> None:
        """Tasks that create no fiscal document: queries, X report, cash in/out."""
        if job.state is JobState.RECEIVED:
            started = apply_unless_final(
                self._journal, Transition(job.id, JobState.FISCALIZING, count_attempt=True)
            )
            if started is None:
                return  # cancelled meanwhile
            job = started
        elif job.state is JobState.BLOCKED:
            # Cash in/out whose answer was lost: re-running could move money twice.
            self._finish_failed(
                job,
                "unknown-outcome",
                "the connection was lost while the register ran this task; check the "
                "cash counter (X report) before repeating it",
            )
            return
        try:
            result = await self._caller.process(task)
        except RegisterError as error:
            self._note_error(error)
            if error.category is ErrorCategory.WAIT:
                raise MustWait(wait_reason(error), f"atol-{error.code}") from None
            if error.category is ErrorCategory.AMBIGUOUS and job.task_type in {"cashIn", "cashOut"}:
                self._journal.transition(
                    Transition(job.id, JobState.BLOCKED, wait_reason="outcome-unknown")
                )
                return
            if error.category is ErrorCategory.SHIFT and job.task_type in {"cashIn", "cashOut"}:
                await self._fix_shift_for(job, error.code)
                return
            self._finish_failed(job, f"atol-{error.code}", error.description)
            return
        self._journal.transition(Transition(job.id, JobState.FISCALIZED, result=result))
        self._progress.processed += 1
        if job.task_type == "continuePrint":
            self._progress.print_pending = False

    async def _fiscalise(self, job: Job, task: JsonDict) -> None:
        known_not_done = job.state is JobState.RECEIVED
        while not self._stopping:
            if not known_not_done:
                recovered = await self._recover(job, task)
                if recovered is not None:
                    self._finish_fiscalized(job, recovered)
                    return
            known_not_done = False
            try:
                fd_before = await self._last_fd_number()
            except RegisterError as query_error:
                self._note_error(query_error)
                reason, code = wait_reason(query_error), f"atol-{query_error.code}"
                raise MustWait(reason, code, job) from None
            started = apply_unless_final(
                self._journal,
                Transition(job.id, JobState.FISCALIZING, fd_before=fd_before, count_attempt=True),
            )
            if started is None:
                return  # cancelled between being read and being started: nothing was sent
            job = started
            end = await self._run_chain(ChainStep(job, task))
            if end.failed is None or end.error is None:
                return
            # A receipt of the chain (the first or a later one) got an error: it is
            # `fiscalizing` in the journal with its FD number, and is handled here.
            job, task, error = end.failed.job, end.failed.task, end.error
            self._progress.current_job = job.id
            self._last_fd = None
            self._note_error(error)
            if error.category is ErrorCategory.WAIT:
                raise MustWait(wait_reason(error), f"atol-{error.code}", job) from None
            if error.category is ErrorCategory.SHIFT:
                if not await self._fix_shift_for(job, error.code):
                    return
                # 68/73 refuse before anything is printed; if fixing the shift itself
                # lost an answer, the FD check below sorts it out.
                known_not_done = not self._shift_fix_ambiguous
                continue
            if error.category is ErrorCategory.AMBIGUOUS:
                job = self._journal.transition(
                    Transition(job.id, JobState.BLOCKED, wait_reason="outcome-unknown")
                )
                log.warning(
                    "job %s: outcome unknown (%s); checking the register's FD number",
                    job.id,
                    error,
                )
                continue
            self._finish_failed(job, f"atol-{error.code}", error.description)
            if error.code in FN_FAULT_CODES:
                self._progress.alerts.append(f"fiscal storage fault {error.code}: {error}")
            return

    def _finish_failed(self, job: Job, code: str, message: str) -> None:
        failed = apply_unless_final(
            self._journal,
            Transition(job.id, JobState.FAILED, error_code=code, error_message=message),
        )
        if failed is None:
            return  # final meanwhile (cancelled): its outcome stands
        log.warning("job %s failed: %s: %s", job.id, code, message)
        self._progress.last_error = f"{code}: {message}"
