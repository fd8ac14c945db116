"""Recovery after an ambiguous outcome, and recording a fiscalised job.

Owns the FD check of ARCHITECTURE §3: a job found ``fiscalizing`` or ``blocked`` (after a
crash, a lost connection, a driver timeout) is resolved by asking the register for its
last *receipt*; only an FD number above the one stored, with a matching total, means the
job was fiscalised. Also owns settling a job whose task cannot be prepared any more
(past ``received`` the FD check runs before it is failed, so a printed receipt is
recorded, not lost), and the journal transition and bookkeeping for a fiscalised job.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from kassa_appliance.fiscal.engine_base import EngineBase, MustWait
from kassa_appliance.fiscal.engine_poison import (
    INTERNAL_ERROR_CODE,
    JobStepFailed,
    internal_error_message,
    log_internal_error,
    total_only,
)
from kassa_appliance.fiscal.engine_status import wait_reason
from kassa_appliance.fiscal.journal import Job, JobState, Transition
from kassa_appliance.fiscal_qr import qr_string
from kassa_appliance.registers.base import (
    FISCAL_TASK_TYPES,
    RECEIPT_TASK_TYPES,
    JsonDict,
    RegisterError,
)

log = logging.getLogger("kassa_appliance.fiscal.engine")


class Recovery(EngineBase):
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

    async def _recover(self, job: Job, task: JsonDict) -> JsonDict | None:
        """Resolve a job whose last attempt has an unknown outcome (ARCHITECTURE §3).

        Returns the fiscal result if the register has the document, None if it must be
        sent (again). Raises MustWait when the register cannot be asked.
        """
        try:
            fd_now = await self._query_last_fd()
        except RegisterError as error:
            self._note_error(error)
            raise MustWait(wait_reason(error), f"atol-{error.code}") from None
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
            raise MustWait(wait_reason(error), f"atol-{error.code}") from None
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
                raise MustWait(reason, "recovery-mismatch")
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
