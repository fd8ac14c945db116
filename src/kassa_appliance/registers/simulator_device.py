"""The simulated Atol 30F's hardware around its FN: clock, fault gates, printer, fiscalisation.

:class:`SimulatedDevice` owns what every task handler shares: the device clock (Moscow time
plus the clock offset from the fault control file), the faults that stop a task before
anything is fiscalised, the 24-hour shift rule, the printer (print delay, the tape, a document
left half-printed when the paper ran out) and the fiscalise step — store the state durably,
then print, then answer (or lose the answer). The task handlers themselves live in
:mod:`~kassa_appliance.registers.simulator_documents` and
:mod:`~kassa_appliance.registers.simulator_queries`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from kassa_appliance.registers.atol_errors import atol_error, atol_text
from kassa_appliance.registers.base import (
    CLOSE_RECEIPT_INTERRUPTED,
    CONNECTION_LOST,
    COVER_OPENED,
    DENIED_IN_CLOSED_SHIFT,
    FN_FAULT,
    NO_CONNECTION,
    NO_PAPER,
    SHIFT_EXPIRED,
    JsonDict,
    RegisterUnavailable,
)
from kassa_appliance.registers.simulator_faults import FaultControl
from kassa_appliance.registers.simulator_state import SimulatorState, StateStore
from kassa_appliance.registers.tape import render_document

MOSCOW = timezone(timedelta(hours=3))

LINE_WIDTHS = {32: 384, 48: 576}
"""Supported characters per line and the matching print width in pixels (57/80 mm)."""

Handler = Callable[[SimulatorState, JsonDict], JsonDict]
"""A task handler: the device state (loaded under the lock) and the task -> the result."""


def moscow_now() -> datetime:
    """Now in Moscow time (fixed +03:00, no tzdata needed)."""
    return datetime.now(MOSCOW)


class SimulatedDevice:
    """Clock, fault gates, printer and fiscalisation shared by the simulator's task handlers."""

    def __init__(
        self,
        *,
        faults: FaultControl,
        store: StateStore,
        clock: Callable[[], datetime],
        print_delay: float,
        line_width: int,
        tape: Callable[[str], None] | None,
    ) -> None:
        self.faults = faults
        self.store = store
        self.line_width = line_width
        self._clock = clock
        self._print_delay = print_delay
        self._tape = tape

    def now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"simulator clock returned naive datetime {now!r}; expected aware")
        offset = self.faults.clock_offset_seconds
        return now + timedelta(seconds=offset) if offset else now

    def gate(self, *, fiscal: bool, printing: bool) -> None:
        """Faults that stop a task before anything is fiscalised."""
        if fiscal and self.faults.fire("connection_lost_before"):
            raise RegisterUnavailable(atol_text(NO_CONNECTION))
        if printing and self.faults.fire("cover_open"):
            raise atol_error(COVER_OPENED)
        if printing and self.faults.fire("no_paper"):
            raise atol_error(NO_PAPER)
        if fiscal and self.faults.fire("fn_fault"):
            raise atol_error(FN_FAULT)

    def require_open_shift(self, state: SimulatorState, now: datetime) -> None:
        shift = state.shift_state(now)
        if shift == "closed":
            raise atol_error(DENIED_IN_CLOSED_SHIFT)
        if shift == "expired":
            raise atol_error(SHIFT_EXPIRED)

    def fiscalise(
        self, state: SimulatorState, document: JsonDict, result: JsonDict, printing: bool
    ) -> JsonDict:
        """Store the fiscalised document, print it, answer (or lose the answer)."""
        warnings: JsonDict | None = None
        if state.last_fiscal is not None:
            # Every fiscal document waits for the OFD (sent with the next task, see deliver).
            state.ofd_queue.append(
                {
                    "number": state.last_fiscal["fiscalDocumentNumber"],
                    "dateTime": state.last_fiscal["fiscalDocumentDateTime"],
                }
            )
        state.last_document = document
        if printing and self.faults.fire("paper_runs_out"):
            state.print_pending = document
            self.faults.paper_ran_out()
            warnings = {"notPrinted": True}
        self.store.save(state)
        if printing and warnings is None:
            self.print(document)
        if self.faults.fire("connection_lost_after"):
            raise atol_error(CONNECTION_LOST)
        if self.faults.fire("receipt_interrupted"):
            raise atol_error(CLOSE_RECEIPT_INTERRUPTED, "проверьте последний документ")
        result["warnings"] = warnings
        return result

    def deliver(self, state: SimulatorState) -> None:
        """The OFD and ISM links send what waits, unless the ``*_offline`` fault cuts them."""
        changed = False
        if state.ofd_queue and not self.faults.ofd_down():
            state.ofd_queue = []
            changed = True
        if state.ism_queue and not self.faults.is_set("ism_offline"):
            state.ism_queue = []
            changed = True
        if changed:
            self.store.save(state)

    def print_pending(self, state: SimulatorState) -> bool:
        """Print the rest of an interrupted document; True if there was one."""
        if state.print_pending is None:
            return False
        document = state.print_pending
        state.print_pending = None
        self.print(document)
        return True

    def print(self, document: JsonDict) -> None:
        delay = self.faults.print_delay(self._print_delay)
        if delay > 0:
            time.sleep(delay)
        if self._tape is not None:
            self._tape(render_document(document, self.line_width))

    def document(self, state: SimulatorState, kind: str, now: datetime, operator: Any) -> JsonDict:
        return {
            "kind": kind,
            "serial": state.serial,
            "dateTime": now.isoformat(timespec="seconds"),
            "operator": operator if isinstance(operator, dict) else None,
        }


def document_time(now: datetime) -> str:
    """FN documents carry the time to the minute."""
    return now.replace(second=0, microsecond=0).isoformat()


def summary(state: SimulatorState) -> JsonDict:
    return {
        "counts": dict(state.shift_counts),
        "totals": {kind: str(total) for kind, total in state.shift_totals.items()},
        "cashSum": str(state.cash_sum),
    }
