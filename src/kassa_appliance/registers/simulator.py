"""A simulated Atol fiscal register that behaves like the real one, in software.

It takes Atol JSON tasks (atol-notes §1) and answers with the same result fields, error codes
and counters as a real Atol 30F: a 16-digit FN and registration number, FD numbers shared by
every fiscal document (the registration report is FD 1), receipt numbers restarting in each
shift, a 24-hour shift limit, a cash drawer counter, a deterministic fiscal sign.

Like an FN it never forgets: the state lives in ``<state_dir>/simulator-state.{0,1}``
(:class:`~kassa_appliance.registers.simulator_state.StateStore`) and is written durably
*before* a fiscal result is returned, so a SIGKILL cannot lose or invent a
document. Several processes (the daemon and a CLI) may share one state directory; each task
runs under an exclusive ``flock`` and re-reads the state.

Faults (no paper, cover open, FN failure, connection lost before or after fiscalisation,
slow printing) and a clock offset are injected at run time through the control file
described in :mod:`kassa_appliance.registers.simulator_faults`.

Everything it prints (:mod:`kassa_appliance.tape`) is marked as not a fiscal document.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from kassa_appliance.registers.base import (
    CLOSE_RECEIPT_INTERRUPTED,
    CONNECTION_DISABLED,
    CONNECTION_LOST,
    COVER_OPENED,
    DENIED_IN_CLOSED_SHIFT,
    DENIED_IN_OPENED_SHIFT,
    FN_FAULT,
    NO_CASH,
    NO_PAPER,
    SHIFT_EXPIRED,
    JsonDict,
    RegisterError,
    RegisterUnavailable,
)
from kassa_appliance.registers.simulator_faults import (
    ALWAYS,
    Fault,
    FaultControl,
    advance_clock,
    clear_faults,
    set_fault,
)
from kassa_appliance.registers.simulator_receipts import (
    CASH_DIRECTION,
    check_cash_sum,
    check_receipt,
    parse_error,
)
from kassa_appliance.registers.simulator_state import (
    SHIFT_MAX_HOURS,
    SimulatorState,
    StateStore,
    device_lock,
    fiscal_sign,
    holding_lock,
    load_state,
    new_state,
    open_lock_file,
)
from kassa_appliance.tape import MODEL_NAME, render_document

MOSCOW = timezone(timedelta(hours=3))

FNS_URL = "www.nalog.gov.ru"
FIRMWARE_VERSION = "5.17.0"
LINE_WIDTHS = {32: 384, 48: 576}
"""Supported characters per line and the matching print width in pixels (57/80 mm)."""

_FN_WARNINGS_OK = {
    "memoryOverflow": False,
    "needReplacement": False,
    "ofdTimeout": False,
    "resourceExhausted": False,
    "criticalError": False,
}


def moscow_now() -> datetime:
    """Now in Moscow time (fixed +03:00, no tzdata needed)."""
    return datetime.now(MOSCOW)


def read_state(state_dir: Path) -> SimulatorState | None:
    """The simulated device's counters, read under its lock (None: not created yet)."""
    with device_lock(state_dir):
        return load_state(state_dir)


class SimulatorRegister:
    """The Register protocol over a simulated Atol 30F kept in ``state_dir``.

    ``clock`` returns an aware datetime (default: now in Moscow); ``print_delay`` is the
    seconds each printed document takes; ``tape`` receives every printed document as text
    (None: nothing is rendered); ``serial`` is used only when the device is first created.
    """

    name = "simulator"

    def __init__(
        self,
        state_dir: Path,
        *,
        clock: Callable[[], datetime] | None = None,
        print_delay: float = 0.0,
        line_width: int = 32,
        tape: Callable[[str], None] | None = None,
        serial: str | None = None,
    ) -> None:
        if line_width not in LINE_WIDTHS:
            raise ValueError(f"line_width {line_width}: expected one of {sorted(LINE_WIDTHS)}")
        if print_delay < 0:
            raise ValueError(f"print_delay {print_delay}: expected seconds >= 0")
        self._state_dir = Path(state_dir)
        self._clock = clock if clock is not None else moscow_now
        self._print_delay = float(print_delay)
        self._line_width = line_width
        self._tape = tape
        self._serial = serial
        self._faults = FaultControl(self._state_dir)
        self._store = StateStore(self._state_dir)
        self._thread_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._handlers: dict[str, Callable[[SimulatorState, JsonDict], JsonDict]] = {
            "openShift": self._open_shift,
            "closeShift": self._close_shift,
            "reportX": self._report_x,
            "cashIn": self._cash_operation,
            "cashOut": self._cash_operation,
            "continuePrint": self._continue_print,
            "getShiftStatus": self._get_shift_status,
            "getDeviceStatus": self._get_device_status,
            "getDeviceInfo": self._get_device_info,
            "getFnInfo": self._get_fn_info,
            "getFnStatus": self._get_fn_status,
            "getLastFiscalParams": self._get_last_fiscal_params,
            "getCashDrawerStatus": self._get_cash_drawer_status,
        }
        for kind in CASH_DIRECTION:
            self._handlers[kind] = self._receipt

    @property
    def state_dir(self) -> Path:
        return self._state_dir

    # -- Register protocol -------------------------------------------------------------

    def open(self) -> None:
        """Open the device, creating (registering) it on first use."""
        with self._thread_lock:
            if self._lock_fd is not None:
                return
            try:
                lock_fd = open_lock_file(self._state_dir)
            except OSError as exc:
                raise RegisterUnavailable(
                    f"simulator state directory {self._state_dir} is not usable: {exc}"
                ) from exc
            try:
                with holding_lock(lock_fd):
                    self._store.open()
                    if self._store.load() is None:
                        self._faults.refresh()
                        self._store.save(new_state(self._serial, self._now()))
            except BaseException:
                self._store.close()
                os.close(lock_fd)
                raise
            self._lock_fd = lock_fd

    def close(self) -> None:
        with self._thread_lock:
            if self._lock_fd is not None:
                self._store.close()
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> SimulatorRegister:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def process(self, task: JsonDict, *, request_id: str | None = None) -> JsonDict:
        """Run one task; raise RegisterError with the Atol code when the device refuses.

        ``request_id`` is accepted for the Register protocol; a real device has no such
        thing, so the simulator ignores it.
        """
        if not isinstance(task, dict):
            raise parse_error(f"task: expected a JSON object, got {type(task).__name__}")
        kind = task.get("type")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise parse_error(
                f"type {kind!r}: unknown task type; expected one of {', '.join(self._handlers)}"
            )
        with self._thread_lock:
            if self._lock_fd is None:
                raise RegisterError(CONNECTION_DISABLED, "Соединение с ККТ не установлено")
            with holding_lock(self._lock_fd):
                self._faults.refresh()
                state = self._store.load()
                if state is None:
                    raise RegisterUnavailable(
                        f"simulator state in {self._state_dir} disappeared; reopen the register"
                    )
                try:
                    return handler(state, task)
                finally:
                    self._faults.save_if_changed()

    # -- run-time control --------------------------------------------------------------

    def state(self) -> SimulatorState:
        """A snapshot of the device counters (read under the lock, never written)."""
        state = read_state(self._state_dir)
        if state is None:
            raise RegisterUnavailable(f"no simulated device in {self._state_dir}; open() first")
        return state

    def set_fault(self, name: str, value: Fault | None = ALWAYS) -> None:
        """Switch a fault on (``Fault()`` = always) or off (``None``) for every process."""
        set_fault(self._state_dir, name, value)

    def clear_faults(self) -> None:
        clear_faults(self._state_dir)

    def advance_clock(self, seconds: float) -> float:
        """Fast-forward the device clock for every process; returns the total offset."""
        return advance_clock(self._state_dir, seconds)

    # -- fiscal documents --------------------------------------------------------------

    def _receipt(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        kind = str(task["type"])
        figures = check_receipt(task)
        printing = task.get("electronically") is not True
        self._gate(fiscal=True, printing=printing)
        now = self._now()
        self._require_open_shift(state, now)
        cash_flow = CASH_DIRECTION[kind] * figures.cash_kept
        if state.cash_sum + cash_flow < 0:
            raise RegisterError(
                NO_CASH,
                f"Недостаточно наличных в денежном ящике: {state.cash_sum} < {-cash_flow}",
            )
        if printing:
            self._print_pending(state)
        state.fd_number += 1
        state.receipt_number += 1
        state.shift_documents += 1
        state.cash_sum += cash_flow
        state.add_total(kind, figures.total)
        stamp = _document_time(now)
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
        document = self._document(state, "receipt", now, task.get("operator"))
        document.update(task=task, fiscalParams=params, change=str(figures.change))
        return self._fiscalise(state, document, {"fiscalParams": dict(params)}, printing)

    def _open_shift(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        self._gate(fiscal=True, printing=True)
        now = self._now()
        if state.shift_open:
            raise RegisterError(DENIED_IN_OPENED_SHIFT, "Смена открыта - операция невозможна")
        self._print_pending(state)
        state.fd_number += 1
        state.shift_number += 1
        state.shift_open = True
        state.shift_opened_at = now.isoformat()
        state.receipt_number = 0
        state.shift_documents = 1
        state.shift_totals = {}
        state.shift_counts = {}
        state.count("openShift")
        params = self._shift_params(state, now)
        state.last_fiscal = params
        document = self._document(state, "openShift", now, task.get("operator"))
        document["fiscalParams"] = params
        return self._fiscalise(state, document, {"fiscalParams": dict(params)}, printing=True)

    def _close_shift(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        self._gate(fiscal=True, printing=True)
        now = self._now()
        if not state.shift_open:
            raise RegisterError(DENIED_IN_CLOSED_SHIFT, "Смена закрыта - операция невозможна")
        self._print_pending(state)
        state.fd_number += 1
        state.shift_documents += 1
        state.shift_open = False
        state.shift_opened_at = None
        params = self._shift_params(state, now)
        params["receiptsCount"] = state.receipt_number
        state.last_fiscal = params
        document = self._document(state, "closeShift", now, task.get("operator"))
        document.update(fiscalParams=params, summary=_summary(state))
        state.count("closeShift")
        return self._fiscalise(state, document, {"fiscalParams": dict(params)}, printing=True)

    def _shift_params(self, state: SimulatorState, now: datetime) -> JsonDict:
        stamp = _document_time(now)
        return {
            "fiscalDocumentDateTime": stamp,
            "fiscalDocumentNumber": state.fd_number,
            "fiscalDocumentSign": fiscal_sign(
                state.fn_number, state.fd_number, stamp, Decimal("0")
            ),
            "fnNumber": state.fn_number,
            "registrationNumber": state.registration_number,
            "shiftNumber": state.shift_number,
        }

    def _fiscalise(
        self, state: SimulatorState, document: JsonDict, result: JsonDict, printing: bool
    ) -> JsonDict:
        """Store the fiscalised document, print it, answer (or lose the answer)."""
        warnings: JsonDict | None = None
        if printing and self._faults.fire("paper_runs_out"):
            state.print_pending = document
            self._faults.paper_ran_out()
            warnings = {"notPrinted": True}
        self._store.save(state)
        if printing and warnings is None:
            self._print(document)
        if self._faults.fire("connection_lost_after"):
            raise RegisterError(CONNECTION_LOST, "Потеряно соединение с ККТ")
        if self._faults.fire("receipt_interrupted"):
            raise RegisterError(
                CLOSE_RECEIPT_INTERRUPTED, "Закрытие чека прервано. Проверьте последний документ"
            )
        result["warnings"] = warnings
        return result

    # -- non-fiscal documents ----------------------------------------------------------

    def _cash_operation(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        kind = str(task["type"])
        amount = check_cash_sum(task)
        self._gate(fiscal=False, printing=True)
        now = self._now()
        self._require_open_shift(state, now)
        if kind == "cashOut" and amount > state.cash_sum:
            raise RegisterError(
                NO_CASH, f"Недостаточно наличных в денежном ящике: {state.cash_sum} < {amount}"
            )
        self._print_pending(state)
        state.cash_sum += amount if kind == "cashIn" else -amount
        state.count(kind)
        self._store.save(state)
        document = self._document(state, kind, now, task.get("operator"))
        document.update(amount=str(amount), cashSum=str(state.cash_sum))
        self._print(document)
        return {"counters": {"cashSum": float(state.cash_sum)}}

    def _report_x(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        self._gate(fiscal=False, printing=True)
        now = self._now()
        if self._print_pending(state):
            self._store.save(state)
        document = self._document(state, "reportX", now, task.get("operator"))
        document.update(summary=_summary(state), shiftNumber=state.shift_number)
        self._print(document)
        return {}

    def _continue_print(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        if state.print_pending is None:
            return {}
        self._gate(fiscal=False, printing=True)
        self._print_pending(state)
        self._store.save(state)
        return {}

    # -- queries (never write, never affected by faults) ----------------------------------

    def _get_shift_status(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        now = self._now()
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

    def _get_device_status(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        now = self._now()
        return {
            "deviceStatus": {
                "shift": state.shift_state(now),
                "currentDateTime": now.isoformat(timespec="seconds"),
                "blocked": self._faults.is_set("fn_fault"),
                "coverOpened": self._faults.is_set("cover_open"),
                "paperPresent": not self._faults.is_set("no_paper"),
                "fiscal": True,
                "fnFiscal": True,
                "fnPresent": True,
                "cashDrawerOpened": False,
            }
        }

    def _get_device_info(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        return {
            "deviceInfo": {
                "model": 61,
                "modelName": MODEL_NAME,
                "serial": state.serial,
                "firmwareVersion": FIRMWARE_VERSION,
                "configurationVersion": f"{FIRMWARE_VERSION}.0",
                "receiptLineLength": self._line_width,
                "receiptLineLengthPix": LINE_WIDTHS[self._line_width],
                "ffdVersion": "1.2",
                "fnFfdVersion": "1.2",
            }
        }

    def _get_fn_info(self, state: SimulatorState, task: JsonDict) -> JsonDict:
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

    def _get_fn_status(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        return {
            "fnStatus": {
                "fiscalDocumentNumber": state.fd_number,
                "fiscalReceiptNumber": state.receipt_number,
                "warnings": self._fn_warnings(),
            }
        }

    def _get_last_fiscal_params(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        """The last document's (or receipt's) fiscalParams; ``{}`` before the first receipt."""
        params = state.last_receipt if task.get("forReceipt") is True else state.last_fiscal
        return {"fiscalParams": dict(params or {})}

    def _get_cash_drawer_status(self, state: SimulatorState, task: JsonDict) -> JsonDict:
        return {
            "cashDrawerStatus": {"cashDrawerOpened": False},
            "counters": {"cashSum": float(state.cash_sum)},
        }

    # -- helpers ------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"simulator clock returned naive datetime {now!r}; expected aware")
        offset = self._faults.clock_offset_seconds
        return now + timedelta(seconds=offset) if offset else now

    def _gate(self, *, fiscal: bool, printing: bool) -> None:
        """Faults that stop a task before anything is fiscalised."""
        if fiscal and self._faults.fire("connection_lost_before"):
            raise RegisterUnavailable("Нет связи с ККТ")
        if printing and self._faults.fire("cover_open"):
            raise RegisterError(COVER_OPENED, "Открыта крышка")
        if printing and self._faults.fire("no_paper"):
            raise RegisterError(NO_PAPER, "Нет бумаги")
        if fiscal and self._faults.fire("fn_fault"):
            raise RegisterError(FN_FAULT, "Неисправимая ошибка ФН")

    def _require_open_shift(self, state: SimulatorState, now: datetime) -> None:
        shift = state.shift_state(now)
        if shift == "closed":
            raise RegisterError(DENIED_IN_CLOSED_SHIFT, "Смена закрыта - операция невозможна")
        if shift == "expired":
            raise RegisterError(SHIFT_EXPIRED, "Смена превысила 24 часа")

    def _print_pending(self, state: SimulatorState) -> bool:
        """Print the rest of an interrupted document; True if there was one."""
        if state.print_pending is None:
            return False
        document = state.print_pending
        state.print_pending = None
        self._print(document)
        return True

    def _print(self, document: JsonDict) -> None:
        delay = self._faults.print_delay(self._print_delay)
        if delay > 0:
            time.sleep(delay)
        if self._tape is not None:
            self._tape(render_document(document, self._line_width))

    def _document(self, state: SimulatorState, kind: str, now: datetime, operator: Any) -> JsonDict:
        return {
            "kind": kind,
            "serial": state.serial,
            "dateTime": now.isoformat(timespec="seconds"),
            "operator": operator if isinstance(operator, dict) else None,
        }

    def _fn_warnings(self) -> JsonDict:
        return {**_FN_WARNINGS_OK, "criticalError": self._faults.is_set("fn_fault")}


def _document_time(now: datetime) -> str:
    """FN documents carry the time to the minute."""
    return now.replace(second=0, microsecond=0).isoformat()


def _summary(state: SimulatorState) -> JsonDict:
    return {
        "counts": dict(state.shift_counts),
        "totals": {kind: str(total) for kind, total in state.shift_totals.items()},
        "cashSum": str(state.cash_sum),
    }
