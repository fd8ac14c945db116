"""The simulator's document tasks: what changes the FN counters or prints something.

Fiscal documents (receipts of every kind, ``openShift``, ``closeShift``) take the next FD
number, get a fiscal sign and are stored durably before they are printed; the non-fiscal ones
(``cashIn``/``cashOut``, ``reportX``, ``continuePrint``, ``printLastReceiptCopy``,
``nonFiscal``, ``openCashDrawer``) only move the cash drawer counter, open the drawer or
print. Each handler takes the state loaded under the device lock and the task, and runs on a
:class:`~kassa_appliance.registers.simulator_device.SimulatedDevice`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from kassa_appliance.registers.atol_errors import atol_error
from kassa_appliance.registers.base import (
    DENIED_IN_CLOSED_SHIFT,
    DENIED_IN_OPENED_SHIFT,
    NO_CASH,
    JsonDict,
)
from kassa_appliance.registers.simulator_device import SimulatedDevice, document_time, summary
from kassa_appliance.registers.simulator_receipts import (
    CASH_DIRECTION,
    ReceiptFigures,
    check_cash_sum,
    check_non_fiscal,
    check_receipt,
)
from kassa_appliance.registers.simulator_state import SimulatorState, fiscal_sign

FNS_URL = "www.nalog.gov.ru"
RECORD_NOT_FOUND_IN_JOURNAL = 93


class SimulatorDocuments:
    """Handlers of the tasks that fiscalise or print, bound to one simulated device."""

    def __init__(self, device: SimulatedDevice) -> None:
        self._device = device

    # -- fiscal documents --------------------------------------------------------------

    def receipt(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        device = self._device
        kind = str(task["type"])
        figures = check_receipt(
            task, taxation_types=state.taxation_types, checked_codes=state.checked_codes
        )
        printing = task.get("electronically") is not True
        device.gate(fiscal=True, printing=printing)
        now = device.now()
        device.require_open_shift(state, now)
        cash_flow = CASH_DIRECTION[kind] * figures.cash_kept
        if state.cash_sum + cash_flow < 0:
            raise atol_error(NO_CASH, f"в ящике {state.cash_sum}, к выплате {-cash_flow}")
        if printing:
            device.print_pending(state)
        state.fd_number += 1
        state.receipt_number += 1
        state.shift_documents += 1
        state.cash_sum += cash_flow
        state.add_total(kind, figures.total)
        _count_payments(state, kind, figures)
        stamp = document_time(now)
        params: JsonDict = {
            "fiscalDocumentDateTime": stamp,
            "fiscalDocumentNumber": state.fd_number,
            "fiscalDocumentSign": fiscal_sign(
                state.fn_number, state.fd_number, stamp, figures.total
            ),
            "fiscalReceiptNumber": state.receipt_number,
            "fnNumber": state.fn_number,
            "registrationNumber": state.registration_number,
            "shiftNumber": state.shift_number,
            "total": float(figures.total),
            "fnsUrl": FNS_URL,
        }
        state.last_fiscal = params
        state.last_receipt = params
        if figures.marking_codes:
            # The FN used the checked codes; their sales notice waits for the ISM.
            state.checked_codes = [
                code for code in state.checked_codes if code not in figures.marking_codes
            ]
            state.ism_queue.append({"number": state.fd_number, "dateTime": stamp})
        document = device.document(state, "receipt", now, task.get("operator"))
        document.update(task=task, fiscalParams=params, change=str(figures.change))
        return device.fiscalise(state, document, {"fiscalParams": dict(params)}, printing)

    def open_shift(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        device = self._device
        device.gate(fiscal=True, printing=True)
        now = device.now()
        if state.shift_open:
            raise atol_error(DENIED_IN_OPENED_SHIFT)
        device.print_pending(state)
        state.fd_number += 1
        state.shift_number += 1
        state.shift_open = True
        state.shift_opened_at = now.isoformat()
        state.receipt_number = 0
        state.shift_documents = 1
        state.shift_totals = {}
        state.shift_counts = {}
        state.shift_payments = {}
        state.shift_cash_in = state.shift_cash_out = Decimal("0.00")
        state.count("openShift")
        params = _shift_params(state, now)
        state.last_fiscal = params
        document = device.document(state, "openShift", now, task.get("operator"))
        document["fiscalParams"] = params
        return device.fiscalise(state, document, {"fiscalParams": dict(params)}, printing=True)

    def close_shift(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        device = self._device
        device.gate(fiscal=True, printing=True)
        now = device.now()
        if not state.shift_open:
            raise atol_error(DENIED_IN_CLOSED_SHIFT)
        device.print_pending(state)
        state.fd_number += 1
        state.shift_documents += 1
        state.shift_open = False
        state.shift_opened_at = None
        params = _shift_params(state, now)
        params["receiptsCount"] = state.receipt_number
        state.last_fiscal = params
        document = device.document(state, "closeShift", now, task.get("operator"))
        document.update(fiscalParams=params, summary=summary(state))
        state.count("closeShift")
        return device.fiscalise(state, document, {"fiscalParams": dict(params)}, printing=True)

    # -- non-fiscal documents ----------------------------------------------------------

    def cash_operation(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        device = self._device
        kind = str(task["type"])
        amount = check_cash_sum(task)
        device.gate(fiscal=False, printing=True)
        now = device.now()
        device.require_open_shift(state, now)
        if kind == "cashOut" and amount > state.cash_sum:
            raise atol_error(NO_CASH, f"в ящике {state.cash_sum}, к выплате {amount}")
        device.print_pending(state)
        state.cash_sum += amount if kind == "cashIn" else -amount
        if kind == "cashIn":
            state.shift_cash_in += amount
        else:
            state.shift_cash_out += amount
        state.count(kind)
        device.store.save(state)
        document = device.document(state, kind, now, task.get("operator"))
        document.update(amount=str(amount), cashSum=str(state.cash_sum))
        device.print(document)
        return {"counters": {"cashSum": float(state.cash_sum)}}

    def report_x(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        device = self._device
        device.gate(fiscal=False, printing=True)
        now = device.now()
        if device.print_pending(state):
            device.store.save(state)
        document = device.document(state, "reportX", now, task.get("operator"))
        document.update(summary=summary(state), shiftNumber=state.shift_number)
        device.print(document)
        return {}

    def print_last_receipt_copy(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        """A copy of the last fiscal document (the driver's ``LIBFPTR_RT_LAST_DOCUMENT``)."""
        device = self._device
        if state.last_document is None:
            raise atol_error(RECORD_NOT_FOUND_IN_JOURNAL, "в ФН нет документов для копии")
        device.gate(fiscal=False, printing=True)
        if device.print_pending(state):
            device.store.save(state)
        device.print({**state.last_document, "copy": True})
        return {}

    def non_fiscal(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        """A text document: text and barcode items (``json_nonFiscal.js``)."""
        device = self._device
        items = check_non_fiscal(task)
        device.gate(fiscal=False, printing=True)
        now = device.now()
        if device.print_pending(state):
            device.store.save(state)
        document = device.document(state, "nonFiscal", now, None)
        document.update(items=items, printFooter=task.get("printFooter") is not False)
        device.print(document)
        return {}

    def open_cash_drawer(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        state.drawer_opened_at = self._device.now().isoformat()
        self._device.store.save(state)
        return {}

    def continue_print(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        device = self._device
        if state.print_pending is None:
            return {}
        device.gate(fiscal=False, printing=True)
        device.print_pending(state)
        device.store.save(state)
        return {}


def _count_payments(state: SimulatorState, kind: str, figures: ReceiptFigures) -> None:
    """The shift's payment counters: each type's sum, cash net of the change given."""
    sums = state.shift_payments.setdefault(kind, {})
    for name, amount in figures.payments.items():
        paid = figures.cash_kept if name == "cash" else amount
        sums[name] = sums.get(name, Decimal("0.00")) + paid


def _shift_params(state: SimulatorState, now: datetime) -> JsonDict:
    stamp = document_time(now)
    return {
        "fiscalDocumentDateTime": stamp,
        "fiscalDocumentNumber": state.fd_number,
        "fiscalDocumentSign": fiscal_sign(state.fn_number, state.fd_number, stamp, Decimal("0")),
        "fnNumber": state.fn_number,
        "registrationNumber": state.registration_number,
        "shiftNumber": state.shift_number,
    }
