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

Everything it prints (:mod:`kassa_appliance.registers.tape`) is marked as not a fiscal document.

This module owns the Register protocol side — opening the device, the per-task lock and state
reload, dispatching a task to its handler, run-time control. The handlers live in
:mod:`~kassa_appliance.registers.simulator_documents` (documents) and
:mod:`~kassa_appliance.registers.simulator_queries` (status queries), on the shared clock,
fault gates and printer of :mod:`~kassa_appliance.registers.simulator_device`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

from kassa_appliance.registers.atol_errors import atol_error
from kassa_appliance.registers.base import (
    CONNECTION_DISABLED,
    JsonDict,
    RegisterUnavailable,
)
from kassa_appliance.registers.simulator_device import LINE_WIDTHS as LINE_WIDTHS
from kassa_appliance.registers.simulator_device import MOSCOW as MOSCOW
from kassa_appliance.registers.simulator_device import Handler, SimulatedDevice
from kassa_appliance.registers.simulator_device import moscow_now as moscow_now
from kassa_appliance.registers.simulator_documents import FNS_URL as FNS_URL
from kassa_appliance.registers.simulator_documents import SimulatorDocuments
from kassa_appliance.registers.simulator_faults import (
    ALWAYS,
    Fault,
    FaultControl,
    advance_clock,
    clear_faults,
    set_fault,
)
from kassa_appliance.registers.simulator_fields import (
    bad_value,
    missing,
    parse_error,
    wrong_type,
)
from kassa_appliance.registers.simulator_marking import SimulatorMarking
from kassa_appliance.registers.simulator_queries import FIRMWARE_VERSION as FIRMWARE_VERSION
from kassa_appliance.registers.simulator_queries import SimulatorQueries
from kassa_appliance.registers.simulator_receipts import CASH_DIRECTION
from kassa_appliance.registers.simulator_state import (
    SimulatorState,
    StateStore,
    device_lock,
    holding_lock,
    load_state,
    new_state,
    open_lock_file,
)


def read_state(state_dir: Path) -> SimulatorState | None:
    """The simulated device's counters, read under its lock (None: not created yet)."""
    with device_lock(state_dir):
        return load_state(state_dir)


class SimulatorRegister:
    """The Register protocol over a simulated Atol 30F kept in ``state_dir``.

    ``clock`` returns an aware datetime (default: now in Moscow); ``print_delay`` is the
    seconds each printed document takes; ``tape`` receives every printed document as text
    (None: nothing is rendered); ``serial`` and ``taxation_types`` (the taxation systems of
    the registration; default: every current one) are used only when the device is first
    created.
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
        taxation_types: Sequence[str] | None = None,
    ) -> None:
        if line_width not in LINE_WIDTHS:
            raise ValueError(f"line_width {line_width}: expected one of {sorted(LINE_WIDTHS)}")
        if print_delay < 0:
            raise ValueError(f"print_delay {print_delay}: expected seconds >= 0")
        self._state_dir = Path(state_dir)
        self._serial = serial
        self._taxation_types = None if taxation_types is None else tuple(taxation_types)
        self._faults = FaultControl(self._state_dir)
        self._store = StateStore(self._state_dir)
        self._device = SimulatedDevice(
            faults=self._faults,
            store=self._store,
            clock=clock if clock is not None else moscow_now,
            print_delay=float(print_delay),
            line_width=line_width,
            tape=tape,
        )
        self._thread_lock = threading.Lock()
        self._lock_fd: int | None = None
        documents = SimulatorDocuments(self._device)
        queries = SimulatorQueries(self._device)
        marking = SimulatorMarking(self._device)
        self._handlers: dict[str, Handler] = {
            "openShift": documents.open_shift,
            "closeShift": documents.close_shift,
            "reportX": documents.report_x,
            "cashIn": documents.cash_operation,
            "cashOut": documents.cash_operation,
            "continuePrint": documents.continue_print,
            "getShiftStatus": queries.get_shift_status,
            "getDeviceStatus": queries.get_device_status,
            "getDeviceInfo": queries.get_device_info,
            "getFnInfo": queries.get_fn_info,
            "getFnStatus": queries.get_fn_status,
            "getLastFiscalParams": queries.get_last_fiscal_params,
            "getCashDrawerStatus": queries.get_cash_drawer_status,
            "openCashDrawer": documents.open_cash_drawer,
            "printLastReceiptCopy": documents.print_last_receipt_copy,
            "nonFiscal": documents.non_fiscal,
            "ofdExchangeStatus": queries.ofd_exchange_status,
            "ismExchangeStatus": queries.ism_exchange_status,
            "getShiftTotals": queries.get_shift_totals,
            "getRegistrationInfo": queries.get_registration_info,
            "beginMarkingCodeValidation": marking.begin,
            "getMarkingCodeValidationStatus": marking.status,
            "acceptMarkingCode": marking.accept,
            "declineMarkingCode": marking.decline,
            "cancelMarkingCodeValidation": marking.cancel,
            "clearMarkingCodeValidationResult": marking.clear,
            "pingIsm": marking.ping,
        }
        for kind in CASH_DIRECTION:
            self._handlers[kind] = documents.receipt

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
                        created = new_state(self._serial, self._device.now(), self._taxation_types)
                        self._store.save(created)
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
            raise parse_error("Ошибка парсинга запроса: задание не является JSON-объектом")
        kind = task.get("type")
        if kind is None:
            raise missing("type")
        if not isinstance(kind, str):
            raise wrong_type("type", "string")
        handler = self._handlers.get(kind)
        if handler is None:
            raise bad_value("type", kind)
        with self._thread_lock:
            if self._lock_fd is None:
                raise atol_error(CONNECTION_DISABLED)
            with holding_lock(self._lock_fd):
                self._faults.refresh()
                state = self._store.load()
                if state is None:
                    raise RegisterUnavailable(
                        f"simulator state in {self._state_dir} disappeared; reopen the register"
                    )
                try:
                    self._device.deliver(state)
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
