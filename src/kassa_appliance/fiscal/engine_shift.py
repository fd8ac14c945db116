"""The engine's shift policy and the operator defaults from the configuration.

Owns what happens when the register refuses a job because of the shift (a SHIFT error):
close an expired shift and open a new one, as ``shift.auto-close`` / ``shift.auto-open``
allow, or make the queue wait with the command a person should run. Also owns filling
the configured operator and taxation into tasks that have none.
"""

from __future__ import annotations

from kassa_appliance.fiscal.engine_base import EngineBase, MustWait
from kassa_appliance.fiscal.engine_status import wait_reason
from kassa_appliance.fiscal.journal import Job
from kassa_appliance.registers.base import (
    RECEIPT_TASK_TYPES,
    ErrorCategory,
    JsonDict,
    RegisterError,
)

# Tasks that may carry operator/taxation defaults from the configuration.
OPERATOR_TASKS = RECEIPT_TASK_TYPES | {"openShift", "closeShift", "reportX", "cashIn", "cashOut"}


class ShiftPolicy(EngineBase):
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
                raise MustWait(wait_reason(error), f"atol-{error.code}") from None
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
                raise MustWait(
                    "the shift is older than 24 hours; close it with "
                    "`kassa-appliance shift close` (shift.auto-close is off)",
                    "shift-expired",
                )
            await self._caller.process({"type": "closeShift", **operator}, fiscal=True)
            self._last_fd = None
            state = "closed"
        if state == "closed":
            if not self._settings.auto_open_shift:
                raise MustWait(
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

    def _with_defaults(self, raw: object) -> object:
        """Fill operator and taxation from the configuration where the task has none."""
        task_type = raw.get("type") if isinstance(raw, dict) else None
        if isinstance(raw, dict) and isinstance(task_type, str) and task_type in OPERATOR_TASKS:
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
