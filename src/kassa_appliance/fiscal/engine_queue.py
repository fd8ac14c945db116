"""How the engine's queue waits, and what it lets through while it does.

Owns the idle loop (connecting to the register before the first job, printing a pending
document, polling the journal for jobs written by other processes), the back-off before
retrying a register that asked to wait, the back-off and alert after an internal error
(the policy itself is in :mod:`kassa_appliance.fiscal.engine_poison`), and serving
service jobs (:data:`SERVICE_TASK_TYPES`: shift open/close, reports, queries) while the
receipt at the head of the queue is stuck.
"""

from __future__ import annotations

from kassa_appliance.aio import wait_event
from kassa_appliance.fiscal.device_facts import DeviceFactsPolling
from kassa_appliance.fiscal.engine_base import MustWait
from kassa_appliance.fiscal.journal import Job

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
        # Integrations' queries and device commands: no fiscal document, nothing that
        # depends on the receipts ahead of them.
        "getCashDrawerStatus",
        "openCashDrawer",
        "ofdExchangeStatus",
        "ismExchangeStatus",
        "getShiftTotals",
        "getRegistrationInfo",
        "printLastReceiptCopy",
        "pingIsm",
        # The marking-code check runs before the sell that carries the code; the FN keeps
        # the accepted codes until that receipt, so it may run while earlier receipts wait.
        # (Not clearMarkingCodeValidationResult: it would empty the table a waiting sell of
        # marked goods needs.)
        "beginMarkingCodeValidation",
        "getMarkingCodeValidationStatus",
        "acceptMarkingCode",
        "declineMarkingCode",
        "cancelMarkingCodeValidation",
    }
)


class QueuePacing(DeviceFactsPolling):
    async def _idle(self) -> None:
        if not self._opened and self._available.is_set():
            # Connect while idle, so status shows the register's real state before the
            # first job arrives; a missing register is retried with back-off.
            try:
                await self._ensure_ready()
            except MustWait as wait:
                self._set_waiting(wait.reason)
                await self._pause()
                return
            self._retry_delay = self._settings.retry_interval
        self._wake.clear()
        if self._progress.print_pending:
            await self._try_continue_print()
        await self._poll_device_facts_if_due()  # the safe point: no receipt in flight
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
            except MustWait:
                return
            except Exception as error:
                # Not the stuck receipt's fault: count it against the service job.
                await self._after_internal_error(job, error)
                return
