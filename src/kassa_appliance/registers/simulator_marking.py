"""The simulated FN's marking-code check (FFD 1.2) and its link to the ISM (Честный знак).

The flow real integrations drive, one code at a time (AlexanderYekat/atolexamplesjson,
``myscripts_marks.js``; task names in atol-notes §1.2):

1. ``beginMarkingCodeValidation`` with ``params.imc`` (base64) and ``itemEstimatedStatus``:
   the FN checks the code offline and asks the ISM; the result has ``offlineValidation``.
   A second begin before the first is finished is refused (401).
2. ``getMarkingCodeValidationStatus``: ``ready``, ``sentImcRequest``, ``onlineValidation``
   (``itemInfoCheckResult`` and the ISM's answer). Errors come inside the result as
   ``driverError``, as the driver's script reports them.
3. ``acceptMarkingCode`` (the code goes into the FN's table of checked codes, which a
   sell of the marked position needs: without it the sell fails with 420) or
   ``declineMarkingCode``; ``cancelMarkingCodeValidation`` abandons a check;
   ``clearMarkingCodeValidationResult`` empties the table.

``pingIsm`` checks the ISM link. The simulated ISM answers at once; it calls a code correct
when it looks like a real one (:func:`~.simulator_receipts.ism_accepts`). The fault
``ism_offline`` cuts the link: pings and online checks then report error 402.
"""

from __future__ import annotations

from kassa_appliance.registers.atol_errors import atol_error, atol_text
from kassa_appliance.registers.base import (
    IMC_TYPES,
    INVALID_STATE,
    MARKING_CODE_VALIDATION_IN_PROGRESS,
    MARKS_OVERFLOW,
    NO_CONNECTION_WITH_SERVER,
    JsonDict,
)
from kassa_appliance.registers.simulator_device import SimulatedDevice
from kassa_appliance.registers.simulator_fields import bad_value, json_field
from kassa_appliance.registers.simulator_receipts import decode_code, ism_accepts
from kassa_appliance.registers.simulator_state import SimulatorState

ESTIMATED_STATUSES = (
    "itemPieceSold",
    "itemDryForSale",
    "itemPieceReturn",
    "itemDryReturn",
    "itemStatusUnchanged",
)
MAX_CHECKED_CODES = 1000
"""The simulated FN's table of checked codes (a real one holds at least a receipt's worth)."""
ISM_RESPONSE_MS = 120

# Names the driver's script gives some errors (``driverErrorObject``).
_ERROR_NAMES = {INVALID_STATE: "imcCheckWrongState"}


def driver_error(code: int) -> JsonDict:
    """The ``driverError`` object of the driver's marking scripts."""
    error: JsonDict = {"code": code, "description": atol_text(code)}
    if code in _ERROR_NAMES:
        error["error"] = _ERROR_NAMES[code]
    return error


def check_result(genuine: bool) -> JsonDict:
    """``itemInfoCheckResult`` (tag 2106) of a code the ISM found correct or not."""
    return {
        "imcCheckFlag": True,
        "imcCheckResult": genuine,
        "imcStatusInfo": genuine,
        "imcEstimatedStatusCorrect": genuine,
        "ecrStandAloneFlag": False,
    }


def _choice(value: object, names: tuple[str, ...], path: str, *, required: bool) -> None:
    """A name from ``names`` or a number, as the driver's ``parse…`` functions take it."""
    if value is None and not required:
        return
    if isinstance(value, str) and (value in names or value.isdigit()):
        return
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return
    raise bad_value(path, value)


class SimulatorMarking:
    """Handlers of the marking-code tasks, bound to one simulated device."""

    def __init__(self, device: SimulatedDevice) -> None:
        self._device = device

    def _ism_online(self) -> bool:
        return not self._device.faults.is_set("ism_offline")

    def begin(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        params = json_field(task, "params", "params", dict, required=True)
        code = decode_code(params.get("imc"), "params.imc")
        status = params.get("itemEstimatedStatus")
        _choice(status, ESTIMATED_STATUSES, "params.itemEstimatedStatus", required=True)
        _choice(params.get("imcType"), IMC_TYPES, "params.imcType", required=False)
        if state.marking_check is not None:
            raise atol_error(MARKING_CODE_VALIDATION_IN_PROGRESS)
        genuine = ism_accepts(code)
        state.marking_check = {
            "imc": code,
            "itemEstimatedStatus": status,
            "genuine": genuine,
            "sent": self._ism_online() and params.get("notSendToServer") is not True,
        }
        self._device.store.save(state)
        return {
            "offlineValidation": {
                "fmCheck": True,
                "fmCheckResult": genuine,
                "fmCheckErrorReason": "checked" if genuine else "typeIncorrect",
            }
        }

    def status(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        check = state.marking_check
        if check is None:
            return {"driverError": driver_error(INVALID_STATE)}
        if not check["sent"]:
            reason = NO_CONNECTION_WITH_SERVER if not self._ism_online() else 0
            return {"ready": True, "sentImcRequest": False, "driverError": driver_error(reason)}
        genuine = bool(check["genuine"])
        return {
            "ready": True,
            "sentImcRequest": True,
            "driverError": driver_error(0),
            "onlineValidation": {
                "itemInfoCheckResult": check_result(genuine),
                "markOperatorResponse": {"responseStatus": True, "itemStatusCheck": genuine},
                "markOperatorItemStatus": (
                    "itemEstimatedStatusCorrect" if genuine else "itemEstimatedStatusIncorrect"
                ),
                "markOperatorResponseResult": "correct" if genuine else "incorrect",
            },
        }

    def accept(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        check = state.marking_check
        if check is None:
            raise atol_error(INVALID_STATE, "нет начатой проверки КМ")
        code = str(check["imc"])
        if code not in state.checked_codes:
            if len(state.checked_codes) >= MAX_CHECKED_CODES:
                raise atol_error(MARKS_OVERFLOW)
            state.checked_codes.append(code)
        state.marking_check = None
        self._device.store.save(state)
        return {"itemInfoCheckResult": check_result(bool(check["genuine"]) and check["sent"])}

    def decline(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        if state.marking_check is None:
            raise atol_error(INVALID_STATE, "нет начатой проверки КМ")
        state.marking_check = None
        self._device.store.save(state)
        return {}

    def cancel(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        if state.marking_check is not None:
            state.marking_check = None
            self._device.store.save(state)
        return {}

    def clear(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        if state.checked_codes or state.marking_check is not None:
            state.checked_codes = []
            state.marking_check = None
            self._device.store.save(state)
        return {}

    def ping(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        json_field(task, "timeout", "timeout", float)
        if not self._ism_online():
            return {"driverError": driver_error(NO_CONNECTION_WITH_SERVER)}
        return {"ready": True, "time": ISM_RESPONSE_MS}
