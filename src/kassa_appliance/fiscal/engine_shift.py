"""The engine's shift policy and the operator defaults from the configuration.

Owns what happens when the register refuses a job because of the shift (a SHIFT error):
close an expired shift and open a new one, as ``shift.auto-close`` / ``shift.auto-open``
allow, or make the queue wait with the command a person should run. Filling the
configured defaults into tasks is :mod:`kassa_appliance.fiscal.engine_defaults`.
"""

from __future__ import annotations

from kassa_appliance.fiscal.engine_base import MustWait
from kassa_appliance.fiscal.engine_defaults import TaskDefaults
from kassa_appliance.fiscal.engine_status import wait_reason
from kassa_appliance.fiscal.journal import Job
from kassa_appliance.registers.base import ErrorCategory, RegisterError


class ShiftPolicy(TaskDefaults):
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
