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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from kassa_appliance.aio import wait_event
from kassa_appliance.fiscal.caller import RegisterCaller
from kassa_appliance.fiscal.engine_chain import ChainEnd, ChainHooks, ChainStep, ReceiptChain
from kassa_appliance.fiscal.engine_poison import (
    INTERNAL_ERROR_CODE,
    InternalErrors,
    JobStepFailed,
    apply_unless_final,
    internal_error_message,
    log_internal_error,
    run_step,
    total_only,
)
from kassa_appliance.fiscal.journal import Job, JobState, Journal, Transition, UnreadableTask
from kassa_appliance.fiscal.receipt import (
    Task,
    TaskValidationError,
    is_fiscal,
    parse_task,
    to_driver_json,
)
from kassa_appliance.fiscal_qr import qr_string
from kassa_appliance.registers.base import (
    FISCAL_TASK_TYPES,
    RECEIPT_TASK_TYPES,
    ErrorCategory,
    JsonDict,
    Register,
    RegisterError,
)

log = logging.getLogger(__name__)

QUEUE_DEPTH_TTL = 0.25

# Tasks that may carry operator/taxation defaults from the configuration.
_OPERATOR_TASKS = RECEIPT_TASK_TYPES | {"openShift", "closeShift", "reportX", "cashIn", "cashOut"}
# Tasks an operator must be able to run while the receipt queue is stuck (e.g. to open or
# close the shift the queue is waiting for, or to look at the register).
SERVICE_TASK_TYPES = frozenset(
    {
        "openShift",
        "closeShift",
        "reportX",
        "continuePrint",
        "getShiftStatus",
        "getDeviceStatus",
        "getDeviceInfo",
        "getFnInfo",
        "getFnStatus",
        "getLastFiscalParams",
    }
)


@dataclass(frozen=True)
class EngineSettings:
    auto_open_shift: bool = True
    auto_close_expired_shift: bool = True
    call_timeout: float = 60.0
    retry_interval: float = 1.0
    """First pause before retrying a register that asked us to wait; doubles up to max."""
    max_retry_interval: float = 10.0
    journal_poll_interval: float = 0.5
    """How often an idle engine looks for jobs written by another process (CLI, hooks)."""
    progress_interval: float = 0.05
    """How often the engine takes in the results of a running receipt chain."""
    default_operator: JsonDict | None = None
    default_taxation: str | None = None
    chain_receipts: bool = True
    """Fiscalise queued receipts back to back in the register thread (engine_chain). A CLI
    command running the queue for its one job turns it off, so it can stop right after."""


@dataclass(frozen=True)
class EngineStatus:
    register: str
    register_online: bool
    queue_depth: int
    current_job: str | None = None
    waiting: str | None = None
    """Why the queue is not moving, in words a person can act on."""
    last_error: str | None = None
    alerts: tuple[str, ...] = ()
    print_pending: bool = False
    processed: int = 0

    def summary(self) -> str:
        state = "online" if self.register_online else "offline"
        text = f"register {self.register} {state}, queue {self.queue_depth}"
        if self.waiting:
            text += f", waiting: {self.waiting}"
        if self.last_error:
            text += f", last error: {self.last_error}"
        return text


@dataclass
class _Progress:
    """Mutable view of what the engine is doing, turned into EngineStatus on demand."""

    register_online: bool = False
    current_job: str | None = None
    waiting: str | None = None
    last_error: str | None = None
    alerts: list[str] = field(default_factory=list)
    print_pending: bool = False
    processed: int = 0


class _MustWait(Exception):
    """The register cannot make progress now; the reason is a human sentence.

    ``job`` is the job that waits when it is not the one the engine started with (a
    receipt further down a chain).
    """

    def __init__(self, reason: str, code: str, job: Job | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.job = job


StatusListener = Callable[[EngineStatus], None]


class Engine:
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
        self._last_fd: int | None = None
        """FD number after our last successful fiscal task; None when not known for sure."""
        self._progress = _Progress()
        self._listeners: list[StatusListener] = []
        self._last_status: EngineStatus | None = None
        self._retry_delay = self._settings.retry_interval
        self._shift_fix_ambiguous = False
        self._depth = 0
        self._depth_counted_at: float | None = None
        self._thread_journal: Journal | None = None
        """The register thread's own connection, for receipt chains (sqlite3 objects
        stay in the thread that made them)."""
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

    def status(self) -> EngineStatus:
        progress = self._progress
        return EngineStatus(
            register=self._register.name,
            register_online=progress.register_online and not self._caller.hung,
            queue_depth=self._queue_depth(),
            current_job=progress.current_job,
            waiting=progress.waiting,
            last_error=progress.last_error,
            alerts=tuple(progress.alerts),
            print_pending=progress.print_pending,
            processed=progress.processed,
        )

    def _queue_depth(self) -> int:
        """Pending jobs, counted at most every QUEUE_DEPTH_TTL: status is published for
        every job, and counting a deep queue each time would cost more than the job."""
        now = time.monotonic()
        if self._depth_counted_at is None or now - self._depth_counted_at > QUEUE_DEPTH_TTL:
            self._depth = self._journal.pending_count()
            self._depth_counted_at = now
        return self._depth

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
                except _MustWait as wait:
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

    # -- the queue -----------------------------------------------------------------------

    async def _idle(self) -> None:
        if not self._opened and self._available.is_set():
            # Connect while idle, so status shows the register's real state before the
            # first job arrives; a missing register is retried with back-off.
            try:
                await self._ensure_ready()
            except _MustWait as wait:
                self._set_waiting(wait.reason)
                await self._pause()
                return
            self._retry_delay = self._settings.retry_interval
        self._wake.clear()
        if self._progress.print_pending:
            await self._try_continue_print()
        await wait_event(self._wake, self._settings.journal_poll_interval)

    async def _after_internal_error(self, job: Job, error: Exception) -> None:
        waiting = self._internal_errors.handle(job, error)
        self._changed.set()
        if waiting is None:
            self._set_waiting(None)
            return
        self._progress.last_error = waiting
        if self._internal_errors.holds_queue(job.id):
            alert = f"job {job.id} keeps failing with an internal error; see the appliance log"
            if alert not in self._progress.alerts:
                self._progress.alerts.append(alert)
        self._set_waiting(waiting)
        await self._pause()

    async def _pause(self) -> None:
        """Back off before retrying a register that asked us to wait; wake() cuts it short."""
        self._wake.clear()
        await wait_event(self._wake, self._retry_delay)
        self._retry_delay = min(self._retry_delay * 2, self._settings.max_retry_interval)

    async def _serve_service_jobs_while_waiting(self, stuck: Job) -> None:
        """Let `shift open/close`, reports and queries through while receipts wait."""
        after = stuck.seq
        while not self._stopping and self._available.is_set():
            job = self._journal.next_pending(after_seq=after)
            if job is None:
                return
            after = job.seq
            if job.task_type not in SERVICE_TASK_TYPES:
                continue
            try:
                await self._work(job)
            except _MustWait:
                return
            except Exception as error:
                # Not the stuck receipt's fault: count it against the service job.
                await self._after_internal_error(job, error)
                return

    async def _ensure_ready(self) -> None:
        if not self._available.is_set():
            raise _MustWait("register unplugged: jobs wait until it is connected again", "offline")
        if self._caller.hung:
            raise _MustWait("register is not answering (a driver call is hung)", "hung") from None
        if not self._opened:
            try:
                await self._caller.run(self._register.open)
            except RegisterError as error:
                self._progress.register_online = False
                self._note_error(error)
                if getattr(error, "health", None) == "blocked":
                    # e.g. libfptr10.so missing: waiting will not fix it, a person must.
                    # Short: it becomes the snap health message (≤ 70 characters); the
                    # full reason is in last_error and the log.
                    alert = "register driver unusable; see kassa-appliance status"
                    log.error("register backend unusable: %s", error.description)
                    if alert not in self._progress.alerts:
                        self._progress.alerts.append(alert)
                raise _MustWait(f"register not reachable: {error.description}", "offline") from None
            self._opened = True
            self._last_fd = None
            self._progress.register_online = True
            self._publish_status()
        if self._progress.print_pending:
            await self._try_continue_print(raise_wait=True)

    async def _close_register(self) -> None:
        try:
            await self._caller.run(self._register.close)
        except Exception as error:
            log.warning("closing the register failed: %s", error)
        self._opened = False

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

    def _with_defaults(self, raw: object) -> object:
        """Fill operator and taxation from the configuration where the task has none."""
        task_type = raw.get("type") if isinstance(raw, dict) else None
        if isinstance(raw, dict) and isinstance(task_type, str) and task_type in _OPERATOR_TASKS:
            raw = dict(raw)
            if "operator" not in raw and self._settings.default_operator:
                raw["operator"] = dict(self._settings.default_operator)
            if (
                task_type in RECEIPT_TASK_TYPES
                and "taxationType" not in raw
                and self._settings.default_taxation
            ):
                raw["taxationType"] = self._settings.default_taxation
        return raw

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

    async def _settle_unprepared(self, job: Job, failure: JobStepFailed) -> None:
        """Fail a job whose task cannot be prepared — unless it may be on the register.

        ``received``: it never reached the register; fail it. Past ``received`` a fiscal
        job may have been fiscalised before (a crash, a lost answer): the FD check runs
        first, so a printed receipt is recorded, not lost; only when the register has no
        receipt for it is it failed. A non-fiscal one made no fiscal document.
        """
        log_internal_error(job.id, str(failure), failure.__cause__ or failure)
        consequence = None
        if job.state is not JobState.RECEIVED:
            if job.task_type in FISCAL_TASK_TYPES:
                recovered = await self._recover(job, total_only(job.task))
                if recovered is not None:
                    self._finish_fiscalized(job, recovered)
                    return
                consequence = "the register has no receipt for it (FD check), so nothing printed"
            elif job.task_type in {"cashIn", "cashOut"}:
                consequence = "it may have run before: check the cash counter (X report)"
        self._finish_failed(
            job, INTERNAL_ERROR_CODE, internal_error_message(failure.part, consequence)
        )

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
                raise _MustWait(_wait_reason(error), f"atol-{error.code}") from None
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
                reason, code = _wait_reason(query_error), f"atol-{query_error.code}"
                raise _MustWait(reason, code, job) from None
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
                raise _MustWait(_wait_reason(error), f"atol-{error.code}", job) from None
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
            if error.code in _FN_FAULT_CODES:
                self._progress.alerts.append(f"fiscal storage fault {error.code}: {error}")
            return

    async def _run_chain(self, first: ChainStep) -> ChainEnd:
        """Fiscalise ``first`` and the fresh receipts queued behind it in the register
        thread (see :mod:`kassa_appliance.fiscal.engine_chain`)."""
        chain = ReceiptChain(first, self._register, self._chain_hooks(), self._caller.timeout)
        follower = asyncio.create_task(self._follow_chain(chain))
        call = None
        try:
            call = self._caller.start(chain.run)
            end: ChainEnd = await self._caller.finish_watched(
                call, chain.call_deadline, fiscal=True
            )
        except RegisterError as error:
            # A call outlived its timeout (or an earlier one still has not come back):
            # nothing more is sent or committed by the chain; the receipt that was with
            # the register waits for the FD check.
            lost = chain.abort()
            if lost is None:
                raise _MustWait(
                    "register is not answering (a driver call is hung)", "hung"
                ) from None
            return ChainEnd(failed=lost, error=error)
        finally:
            if call is not None and not call.done():
                chain.abort()  # cancelled: the call in flight is the last one sent
            follower.cancel()
            self._note_chain_progress(chain)
        return end

    def _chain_hooks(self) -> ChainHooks:
        return ChainHooks(
            journal=self._journal_for_thread,
            prepare=self._prepare_quietly,
            may_continue=self._may_chain,
            fiscalized=self._fiscalized_transition,
        )

    def _journal_for_thread(self) -> Journal:
        if self._thread_journal is None:
            self._thread_journal = Journal(self._journal.path)
        return self._thread_journal

    def _may_chain(self) -> bool:
        if not self._settings.chain_receipts:
            return False
        return not self._stopping and not self._progress.print_pending and self._available.is_set()

    async def _follow_chain(self, chain: ReceiptChain) -> None:
        """Take in the chain's committed results while it runs (status, wait_for, the
        Bitrix24 write-back follow each receipt, at most ``progress_interval`` late)."""
        while True:
            await asyncio.sleep(self._settings.progress_interval)
            self._note_chain_progress(chain)

    def _note_chain_progress(self, chain: ReceiptChain) -> None:
        committed = chain.take_committed()
        for job, result in committed:
            self._note_fiscalized(job, result)
        step = chain.in_register
        if step is not None:
            self._progress.current_job = step.job.id
        if committed:
            self._changed.set()
            self._publish_status()

    async def _recover(self, job: Job, task: JsonDict) -> JsonDict | None:
        """Resolve a job whose last attempt has an unknown outcome (ARCHITECTURE §3).

        Returns the fiscal result if the register has the document, None if it must be
        sent (again). Raises _MustWait when the register cannot be asked.
        """
        try:
            fd_now = await self._query_last_fd()
        except RegisterError as error:
            self._note_error(error)
            raise _MustWait(_wait_reason(error), f"atol-{error.code}") from None
        fd_before = job.fd_before
        if fd_before is None or fd_now <= fd_before:
            if fd_before is not None and fd_now < fd_before:
                self._progress.alerts.append(
                    f"FD number went back from {fd_before} to {fd_now}: fiscal storage replaced?"
                )
            return None
        is_receipt = job.task_type in RECEIPT_TASK_TYPES
        try:
            last = await self._caller.process(
                {"type": "getLastFiscalParams", "forReceipt": is_receipt}
            )
        except RegisterError as error:
            self._note_error(error)
            raise _MustWait(_wait_reason(error), f"atol-{error.code}") from None
        params = last.get("fiscalParams", {})
        last_number = int(params.get("fiscalDocumentNumber", 0))
        if last_number <= fd_before:
            return None  # the FD growth was not this job (e.g. a shift we opened)
        if is_receipt and "total" in task and "total" in params:
            expected, found = Decimal(str(task["total"])), Decimal(str(params["total"]))
            if expected != found:
                reason = (
                    f"the register's last receipt (FD {last_number}, total {found}) does not "
                    f"match this job (total {expected}); check the register before retrying"
                )
                self._progress.alerts.append(f"job {job.id}: {reason}")
                raise _MustWait(reason, "recovery-mismatch")
        log.info("job %s was fiscalised before the interruption (FD %s)", job.id, last_number)
        self._last_fd = None
        await self._try_continue_print()
        return {"fiscalParams": params, "warnings": last.get("warnings"), "recovered": True}

    def _finish_fiscalized(self, job: Job, result: JsonDict) -> None:
        self._journal.transition(self._fiscalized_transition(job, result))
        self._note_fiscalized(job, result)
        self._set_waiting(None)

    @staticmethod
    def _fiscalized_transition(job: Job, result: JsonDict) -> Transition:
        params = result.get("fiscalParams") if isinstance(result, dict) else None
        qr = None
        if isinstance(params, dict) and job.task_type in RECEIPT_TASK_TYPES:
            qr = qr_string(params, str(job.task_type))
        return Transition(job.id, JobState.FISCALIZED, result=result, qr=qr)

    def _note_fiscalized(self, job: Job, result: JsonDict) -> None:
        """What the engine learns from a result that is now in the journal."""
        params = result.get("fiscalParams") if isinstance(result, dict) else None
        if isinstance(params, dict) and "fiscalDocumentNumber" in params:
            self._last_fd = int(params["fiscalDocumentNumber"])
        else:
            self._last_fd = None
        warnings = result.get("warnings") if isinstance(result, dict) else None
        if isinstance(warnings, dict) and warnings.get("notPrinted"):
            self._progress.print_pending = True
        self._progress.processed += 1
        self._progress.last_error = None
        self._progress.waiting = None

    def _finish_failed(self, job: Job, code: str, message: str) -> None:
        failed = apply_unless_final(
            self._journal,
            Transition(job.id, JobState.FAILED, error_code=code, error_message=message),
        )
        if failed is None:
            return  # final meanwhile (cancelled): its outcome stands
        log.warning("job %s failed: %s: %s", job.id, code, message)
        self._progress.last_error = f"{code}: {message}"

    # -- shift policy ------------------------------------------------------------------

    async def _fix_shift_for(self, job: Job, code: int) -> bool:
        """Fix the shift for ``job``; False when the job was failed instead.

        Sets ``_shift_fix_ambiguous`` when a shift document's answer was lost, so the
        caller runs the FD check before sending the job again.
        """
        self._shift_fix_ambiguous = False
        try:
            await self._fix_shift(code)
        except RegisterError as error:
            self._last_fd = None
            self._note_error(error)
            if error.category is ErrorCategory.WAIT:
                raise _MustWait(_wait_reason(error), f"atol-{error.code}") from None
            if error.category is ErrorCategory.DEFINITIVE:
                self._finish_failed(
                    job, f"atol-{error.code}", f"the shift could not be fixed: {error.description}"
                )
                return False
            self._shift_fix_ambiguous = True
        return True

    async def _fix_shift(self, code: int) -> None:
        status = await self._caller.process({"type": "getShiftStatus"})
        state = status.get("shiftStatus", {}).get("state", "closed")
        operator = self._operator_fields()
        if state == "expired" or (state == "opened" and code != 73):
            if not self._settings.auto_close_expired_shift:
                raise _MustWait(
                    "the shift is older than 24 hours; close it with "
                    "`kassa-appliance shift close` (shift.auto-close is off)",
                    "shift-expired",
                )
            await self._caller.process({"type": "closeShift", **operator}, fiscal=True)
            self._last_fd = None
            state = "closed"
        if state == "closed":
            if not self._settings.auto_open_shift:
                raise _MustWait(
                    "the shift is closed; open it with `kassa-appliance shift open` "
                    "(shift.auto-open is off)",
                    "shift-closed",
                )
            await self._caller.process({"type": "openShift", **operator}, fiscal=True)
            self._last_fd = None

    def _operator_fields(self) -> JsonDict:
        if self._settings.default_operator:
            return {"operator": dict(self._settings.default_operator)}
        return {}

    # -- register queries ----------------------------------------------------------------

    async def _last_fd_number(self) -> int:
        if self._last_fd is not None:
            return self._last_fd
        self._last_fd = await self._query_last_fd()
        return self._last_fd

    async def _query_last_fd(self) -> int:
        status = await self._caller.process({"type": "getFnStatus"})
        return int(status["fnStatus"]["fiscalDocumentNumber"])

    async def _try_continue_print(self, raise_wait: bool = False) -> None:
        try:
            await self._caller.process({"type": "continuePrint"})
        except RegisterError as error:
            self._progress.print_pending = True
            if raise_wait and error.category is ErrorCategory.WAIT:
                raise _MustWait(
                    "a fiscalised document is waiting to be printed: " + _wait_reason(error),
                    f"atol-{error.code}",
                ) from None
            return
        self._progress.print_pending = False

    # -- status --------------------------------------------------------------------------

    def _note_error(self, error: RegisterError) -> None:
        self._progress.last_error = f"atol-{error.code}: {error.description}"
        if error.category is ErrorCategory.WAIT and error.code in _OFFLINE_CODES:
            self._progress.register_online = False
            self._opened = False

    def _set_waiting(self, reason: str | None) -> None:
        if self._progress.waiting != reason:
            self._progress.waiting = reason
            if reason:
                log.info("queue waiting: %s", reason)
        self._publish_status()

    def _publish_status(self) -> None:
        if not self._listeners:
            return
        status = self.status()
        if status == self._last_status:
            return
        self._last_status = status
        for listener in self._listeners:
            listener(status)


_FN_FAULT_CODES = frozenset({115, 116, 117, 118, 119, 120, 121, 137, 166})
_OFFLINE_CODES = frozenset({1, 2, 3, 4})

_WAIT_REASONS = {
    44: "no paper: load a paper roll",
    45: "the printer cover is open: close it",
    46: "printer fault",
    47: "printer mechanical fault",
    55: "the register is busy",
    114: "the printer is overheated",
    1: "the register connection is not open",
    2: "no connection to the register",
    3: "the register port is busy (another program holds it)",
    4: "the register port is not available",
}


def _wait_reason(error: RegisterError) -> str:
    return _WAIT_REASONS.get(error.code, f"register says: {error.description}")
