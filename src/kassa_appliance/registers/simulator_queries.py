"""The simulator's status queries: shift, device, FN, last fiscal params, cash drawer.

They answer from the state loaded under the device lock and never write it; faults never stop
them (a set fault only shows in the reported status, e.g. ``coverOpened`` or
``criticalError``). Each handler runs on a
:class:`~kassa_appliance.registers.simulator_device.SimulatedDevice`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kassa_appliance.registers.base import JsonDict
from kassa_appliance.registers.simulator_device import LINE_WIDTHS, SimulatedDevice
from kassa_appliance.registers.simulator_state import SHIFT_MAX_HOURS, SimulatorState
from kassa_appliance.registers.tape import MODEL_NAME

FIRMWARE_VERSION = "5.17.0"

_FN_WARNINGS_OK = {
    "memoryOverflow": False,
    "needReplacement": False,
    "ofdTimeout": False,
    "resourceExhausted": False,
    "criticalError": False,
}


class SimulatorQueries:
    """Handlers of the read-only ``get*`` tasks, bound to one simulated device."""

    def __init__(self, device: SimulatedDevice) -> None:
        self._device = device

    def get_shift_status(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        now = self._device.now()
        expires = None
        if state.shift_open and state.shift_opened_at is not None:
            opened = datetime.fromisoformat(state.shift_opened_at)
            expires = (opened + timedelta(hours=SHIFT_MAX_HOURS)).isoformat(timespec="seconds")
        return {
            "shiftStatus": {
                "state": state.shift_state(now),
                "number": state.shift_number,
                "expiredTime": expires,
                "documentsCount": state.shift_documents,
            }
        }

    def get_device_status(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        now = self._device.now()
        faults = self._device.faults
        return {
            "deviceStatus": {
                "shift": state.shift_state(now),
                "currentDateTime": now.isoformat(timespec="seconds"),
                "blocked": faults.is_set("fn_fault"),
                "coverOpened": faults.is_set("cover_open"),
                "paperPresent": not faults.is_set("no_paper"),
                "fiscal": True,
                "fnFiscal": True,
                "fnPresent": True,
                "cashDrawerOpened": False,
            }
        }

    def get_device_info(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        line_width = self._device.line_width
        return {
            "deviceInfo": {
                "model": 61,
                "modelName": MODEL_NAME,
                "serial": state.serial,
                "firmwareVersion": FIRMWARE_VERSION,
                "configurationVersion": f"{FIRMWARE_VERSION}.0",
                "receiptLineLength": line_width,
                "receiptLineLengthPix": LINE_WIDTHS[line_width],
                "ffdVersion": "1.2",
                "fnFfdVersion": "1.2",
            }
        }

    def get_fn_info(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        registered = datetime.fromisoformat(state.registered_at)
        validity = registered.replace(year=registered.year + 3, day=min(registered.day, 28))
        return {
            "fnInfo": {
                "serial": state.fn_number,
                "version": "fn-sim 1.2",
                "execution": "ФН-1.2 (симулятор)",
                "numberOfRegistrations": 1,
                "registrationsRemaining": 29,
                "validityDate": validity.isoformat(timespec="seconds"),
                "ffdVersion": "1.2",
                "fnFfdVersion": "1.2",
                "livePhase": "fiscalMode",
                "warnings": self._fn_warnings(),
            }
        }

    def get_fn_status(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        return {
            "fnStatus": {
                "fiscalDocumentNumber": state.fd_number,
                "fiscalReceiptNumber": state.receipt_number,
                "warnings": self._fn_warnings(),
            }
        }

    def get_last_fiscal_params(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        """The last document's (or receipt's) fiscalParams; ``{}`` before the first receipt."""
        params = state.last_receipt if task.get("forReceipt") is True else state.last_fiscal
        return {"fiscalParams": dict(params or {})}

    def get_cash_drawer_status(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        return {
            "cashDrawerStatus": {"cashDrawerOpened": False},
            "counters": {"cashSum": float(state.cash_sum)},
        }

    def _fn_warnings(self) -> JsonDict:
        return {**_FN_WARNINGS_OK, "criticalError": self._device.faults.is_set("fn_fault")}
