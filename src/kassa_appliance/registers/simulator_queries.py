"""The simulator's status queries: shift, device, FN, fiscal params, cash drawer, totals,
registration, OFD and ISM exchange.

They answer from the state loaded under the device lock and never write it; faults never stop
them (a set fault only shows in the reported status, e.g. ``coverOpened`` or
``criticalError``). Each handler runs on a
:class:`~kassa_appliance.registers.simulator_device.SimulatedDevice`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from kassa_appliance.registers.base import JsonDict
from kassa_appliance.registers.simulator_device import LINE_WIDTHS, SimulatedDevice
from kassa_appliance.registers.simulator_state import SHIFT_MAX_HOURS, SimulatorState
from kassa_appliance.registers.tape import MODEL_NAME

FIRMWARE_VERSION = "5.17.0"
NO_DATE = "1970-01-01T03:00:00+03:00"
"""What the FN reports as the date of the oldest unsent document when there is none."""
DRAWER_CLOSES_AFTER_SECONDS = 30
"""The simulated cashier closes the drawer this long after ``openCashDrawer``."""
PAYMENT_NAMES = ("cash", "electronically", "prepaid", "credit", "other")
ORGANIZATION_NAME = "ООО «Демо» (симулятор ККТ)"
ORGANIZATION_ADDRESS = "г. Москва, ул. Демонстрационная, д. 1"
OFD_NAME = "ОФД-симулятор"
OFD_VATIN = "7700000016"
OFD_HOST = "ofd.simulator.invalid"
ISM_HOST = "ism.simulator.invalid"

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
                "cashDrawerOpened": self._drawer_opened(state),
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
        if self._device.faults.fn_validity is not None:  # `simulator fn-expiry`
            day = date.fromisoformat(self._device.faults.fn_validity)
            validity = validity.replace(year=day.year, month=day.month, day=day.day)
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
            "cashDrawerStatus": {"cashDrawerOpened": self._drawer_opened(state)},
            "counters": {"cashSum": float(state.cash_sum)},
        }

    def ofd_exchange_status(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        """Documents not yet sent to the OFD (``json_ofdExchangeStatus.js`` fields)."""
        queue = state.ofd_queue
        backlog = self._device.faults.ofd_backlog  # `simulator ofd-backlog`
        if backlog is not None:
            older = [{"number": 1, "dateTime": backlog.since}] * backlog.count
            queue = older + queue
        return {
            "status": {
                "notSentCount": len(queue),
                "notSentFirstDocNumber": queue[0]["number"] if queue else 0,
                "notSentFirstDocDateTime": queue[0]["dateTime"] if queue else NO_DATE,
                "lastSuccessKeysUpdate": state.registered_at,
            },
            "errors": self._exchange_errors(queue, "ofd"),
            "warnings": {"dataForSendIsEmpty": not queue},
        }

    def ism_exchange_status(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        """Sales notices of marked goods not yet sent (``json_ismExchangeStatus.js``)."""
        queue = state.ism_queue
        return {
            "status": {
                "notSentCount": len(queue),
                "notSentFirstNoticeNumber": queue[0]["number"] if queue else 0,
                "notSentFirstNoticeDateTime": queue[0]["dateTime"] if queue else NO_DATE,
            },
            "errors": self._exchange_errors(queue, "ism"),
            "warnings": {"dataForSendIsEmpty": not queue},
        }

    def get_shift_totals(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        """The shift's counters (``json_getShiftTotals.js``: receipts by type, cash)."""
        receipts: JsonDict = {}
        for kind in ("sell", "sellReturn", "buy", "buyReturn"):
            paid = state.shift_payments.get(kind, {})
            receipts[kind] = {
                "count": state.shift_counts.get(kind, 0),
                "sum": float(state.shift_totals.get(kind, Decimal("0.00"))),
                "payments": {
                    name: float(paid.get(name, Decimal("0.00"))) for name in PAYMENT_NAMES
                },
            }
        return {
            "shiftTotals": {
                "receipts": receipts,
                "income": {
                    "sum": float(state.shift_cash_in),
                    "count": state.shift_counts.get("cashIn", 0),
                },
                "outcome": {
                    "sum": float(state.shift_cash_out),
                    "count": state.shift_counts.get("cashOut", 0),
                },
                "cashDrawer": {"sum": float(state.cash_sum)},
                "shiftNumber": state.shift_number,
            }
        }

    def get_registration_info(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        """The registration (``json_getRegistrationInfo.js``): user, taxation, FFD, OFD."""
        return {
            "organization": {
                "name": ORGANIZATION_NAME,
                "vatin": state.organization_vatin,
                "email": "",
                "taxationTypes": list(state.taxation_types),
                "agents": [],
                "address": ORGANIZATION_ADDRESS,
            },
            "device": {
                "paymentsAddress": ORGANIZATION_ADDRESS,
                "fnsUrl": "www.nalog.gov.ru",
                "registrationNumber": state.registration_number,
                "offlineMode": False,
                "encryption": False,
                "autoMode": False,
                "machineNumber": "",
                "ffdVersion": "1.2",
                "machineInstallation": False,
                "bso": False,
                "internet": False,
                "excise": False,
                "marking": True,
                "service": True,
                "gambling": False,
                "lottery": False,
                "pawnShop": False,
                "insurance": False,
                "defaultTaxationType": state.taxation_types[0],
                "ofdChannel": "usb",
            },
            "ofd": {
                "name": OFD_NAME,
                "vatin": OFD_VATIN,
                "host": OFD_HOST,
                "port": 7777,
                "dns": "",
            },
            "ism": {"host": ISM_HOST, "port": 443},
        }

    def _drawer_opened(self, state: SimulatorState) -> bool:
        if state.drawer_opened_at is None:
            return False
        opened = datetime.fromisoformat(state.drawer_opened_at)
        return (self._device.now() - opened).total_seconds() < DRAWER_CLOSES_AFTER_SECONDS

    def _exchange_errors(self, queue: list[JsonDict], server: str) -> JsonDict:
        """No errors while the link is up; while it is down, the server's error."""
        faults = self._device.faults
        offline = faults.ofd_down() if server == "ofd" else faults.is_set(f"{server}_offline")
        failure = {"code": 2 if offline else 0, "description": "Нет связи" if offline else ""}
        last = (
            queue[0]["dateTime"]
            if offline and queue
            else self._device.now().isoformat(timespec="seconds")
        )
        return {
            "fnCommandCode": 0,
            "documentNumber": queue[0]["number"] if offline and queue else 0,
            "fn": {"code": 0, "description": ""},
            "network": failure,
            server: {"code": 0, "description": ""},
            "lastSuccessConnectionDateTime": last,
        }

    def _fn_warnings(self) -> JsonDict:
        return {**_FN_WARNINGS_OK, "criticalError": self._device.faults.is_set("fn_fault")}
