"""Faults and clock offset of the simulated register, set at run time through a control file.

The control file is ``simulator-faults.json`` in the simulator's state directory. Any process
may change it (``kassa-appliance simulator fault …``, tests, the :func:`set_fault` helpers);
the simulator notices a change with one ``stat`` per task and re-reads it. Format::

    {
      "faults": {
        "no_paper": {},                          # always, until removed
        "cover_open": {"count": 2},              # the next 2 eligible tasks, then removed
        "connection_lost_after": {"rate": 0.1},  # each eligible task with probability 0.1
        "print_delay": {"seconds": 0.5}          # seconds per printed document
      },
      "clock_offset_seconds": 0,   # added to the simulator's clock (fast-forward time)
      "seed": 0,                   # seeds the random.Random used for "rate"
      "fn_validity": "2026-12-31", # optional: the FN's end date getFnInfo reports
      "ofd_backlog": {"count": 3, "since": "2026-11-20T10:00:00+03:00"}
                                   # optional: documents that never reached the OFD
    }

A fault may have ``count`` (fires on the next N eligible tasks, then clears itself; the
decrement is written back to this file), ``rate`` (probability 0..1 per eligible task) or
both (fires with the probability, at most N times). ``print_delay`` takes ``seconds`` and
overrides the constructor's ``print_delay``.

Faults and the tasks they affect (queries such as ``get*`` are never affected):

``connection_lost_before``
    fiscal documents (FISCAL_TASK_TYPES): error 2, nothing reaches the device, no change.
``connection_lost_after``
    fiscal documents: the document is fiscalised and stored, then error 241 (ambiguous).
``receipt_interrupted``
    fiscal documents: the document is fiscalised and stored, then error 177
    CLOSE_RECEIPT_INTERRUPTED (ambiguous, as the driver reports an interrupted closing).
``fn_fault``
    fiscal documents: error 118 before fiscalisation.
``cover_open``
    every printing task (fiscal documents, cashIn/cashOut, reportX, continuePrint): error 45.
``no_paper``
    every printing task: error 44; ``getDeviceStatus.paperPresent`` is false.
``paper_runs_out``
    fiscal documents: the paper ends mid-document. The document is fiscalised, the result
    carries ``warnings.notPrinted``, and the fault turns into ``no_paper`` (without count)
    until someone removes it ("loads paper"); then ``continuePrint`` prints the rest.
``print_delay``
    every printed document takes ``seconds``.
``ofd_offline``
    no link to the OFD: fiscal documents stay unsent (``ofdExchangeStatus`` counts them);
    removing the fault sends them with the next task.
``ism_offline``
    no link to the marking server: ``pingIsm`` and online code checks report error 402,
    and sales notices stay unsent (``ismExchangeStatus``).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from kassa_appliance.registers.simulator_state import device_lock, write_atomically

CONTROL_FILE_NAME = "simulator-faults.json"

FAULT_NAMES = (
    "no_paper",
    "paper_runs_out",
    "cover_open",
    "connection_lost_before",
    "connection_lost_after",
    "receipt_interrupted",
    "fn_fault",
    "print_delay",
    "ofd_offline",
    "ism_offline",
)


@dataclass(frozen=True)
class Fault:
    """How a fault fires: always (no fields), ``count`` times, with probability ``rate``."""

    count: int | None = None
    rate: float | None = None
    seconds: float | None = None
    """Only for ``print_delay``: seconds per printed document."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.count is not None:
            data["count"] = self.count
        if self.rate is not None:
            data["rate"] = self.rate
        if self.seconds is not None:
            data["seconds"] = self.seconds
        return data


ALWAYS = Fault()
"""A fault that fires on every eligible task until removed."""


def validate_fault(name: str, fault: Fault) -> None:
    """Raise ValueError naming the fault and field when the setting makes no sense."""
    if name not in FAULT_NAMES:
        raise ValueError(
            f"unknown simulator fault {name!r}; expected one of {', '.join(FAULT_NAMES)}"
        )
    if fault.count is not None and (isinstance(fault.count, bool) or fault.count < 1):
        raise ValueError(f"fault {name}: count must be an integer >= 1, got {fault.count!r}")
    if fault.rate is not None and not 0.0 <= fault.rate <= 1.0:
        raise ValueError(f"fault {name}: rate must be between 0 and 1, got {fault.rate!r}")
    if name == "print_delay":
        if fault.seconds is None or fault.seconds < 0:
            raise ValueError(f"fault print_delay needs seconds >= 0, got {fault.seconds!r}")
    elif fault.seconds is not None:
        raise ValueError(f"fault {name}: seconds only applies to print_delay")


@dataclass(frozen=True)
class OfdBacklog:
    """Documents made before the register's life in this simulator that never reached the
    OFD: ``count`` of them, the oldest at ``since`` (ISO time). While it is set the OFD link
    is down, as with ``ofd_offline``: new documents join the backlog."""

    count: int
    since: str

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"ofd_backlog count must be an integer >= 1, got {self.count!r}")
        try:
            datetime.fromisoformat(self.since)
        except (TypeError, ValueError):
            raise ValueError(
                f"ofd_backlog since must be a time like 2026-11-20T10:00:00+03:00, "
                f"got {self.since!r}"
            ) from None

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "since": self.since}

    @classmethod
    def from_json(cls, value: Any) -> OfdBacklog:
        if not isinstance(value, dict) or set(value) != {"count", "since"}:
            raise ValueError(f'ofd_backlog: expected {{"count": N, "since": TIME}}, got {value!r}')
        return cls(count=value["count"], since=value["since"])


@dataclass
class Control:
    """The parsed control file."""

    faults: dict[str, Fault] = field(default_factory=dict)
    clock_offset_seconds: float = 0.0
    seed: int = 0
    fn_validity: str | None = None
    """ISO date ``getFnInfo`` reports as ``validityDate`` (default: registration + 3 years)."""
    ofd_backlog: OfdBacklog | None = None
    """``simulator ofd-backlog``: unsent documents since a time; the OFD link is down."""

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "faults": {name: fault.to_json() for name, fault in self.faults.items()},
            "clock_offset_seconds": self.clock_offset_seconds,
            "seed": self.seed,
        }
        if self.fn_validity is not None:
            data["fn_validity"] = self.fn_validity
        if self.ofd_backlog is not None:
            data["ofd_backlog"] = self.ofd_backlog.to_json()
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: Path) -> Control:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            known = {"faults", "clock_offset_seconds", "seed", "fn_validity", "ofd_backlog"}
            unknown = set(data) - known
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)}")
            faults: dict[str, Fault] = {}
            for name, spec in (data.get("faults") or {}).items():
                faults[name] = _parse_fault(name, spec)
            offset = data.get("clock_offset_seconds", 0)
            seed = data.get("seed", 0)
            if isinstance(offset, bool) or not isinstance(offset, int | float):
                raise ValueError(f"clock_offset_seconds must be a number, got {offset!r}")
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValueError(f"seed must be an integer, got {seed!r}")
            validity = data.get("fn_validity")
            if validity is not None:
                validity = _iso_date(validity)
            backlog = data.get("ofd_backlog")
            return cls(
                faults=faults,
                clock_offset_seconds=float(offset),
                seed=seed,
                fn_validity=validity,
                ofd_backlog=None if backlog is None else OfdBacklog.from_json(backlog),
            )
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"simulator control file {source}: {exc}") from exc


def _iso_date(value: Any) -> str:
    """``value`` as an ISO date (``2026-12-31``), or ValueError saying what was expected."""
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValueError(f"fn_validity must be a date like 2026-12-31, got {value!r}") from None


def _parse_fault(name: str, spec: Any) -> Fault:
    if spec is True or spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ValueError(f'fault {name}: expected an object like {{"count": 1}}, got {spec!r}')
    unknown = set(spec) - {"count", "rate", "seconds"}
    if unknown:
        raise ValueError(f"fault {name}: unknown fields {sorted(unknown)}")
    count = spec.get("count")
    rate = spec.get("rate")
    seconds = spec.get("seconds")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise ValueError(f"fault {name}: count must be an integer, got {count!r}")
    for label, value in (("rate", rate), ("seconds", seconds)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"fault {name}: {label} must be a number, got {value!r}")
    fault = Fault(
        count=count,
        rate=None if rate is None else float(rate),
        seconds=None if seconds is None else float(seconds),
    )
    validate_fault(name, fault)
    return fault


def read_control(state_dir: Path) -> Control:
    """The control file's content; a missing file means no faults."""
    path = state_dir / CONTROL_FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Control()
    return Control.from_json(text, path)


def write_control(state_dir: Path, control: Control) -> None:
    """Replace the control file atomically. Call with the device lock held."""
    state_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(state_dir / CONTROL_FILE_NAME, control.to_json().encode())


def set_fault(state_dir: Path, name: str, value: Fault | None) -> None:
    """Switch fault ``name`` on with the given setting, or off with ``None``."""
    if value is not None:
        validate_fault(name, value)
    elif name not in FAULT_NAMES:
        raise ValueError(
            f"unknown simulator fault {name!r}; expected one of {', '.join(FAULT_NAMES)}"
        )
    with device_lock(state_dir):
        control = read_control(state_dir)
        if value is None:
            control.faults.pop(name, None)
        else:
            control.faults[name] = value
        write_control(state_dir, control)


def clear_faults(state_dir: Path) -> None:
    """Remove every fault (the clock offset and seed stay)."""
    with device_lock(state_dir):
        control = read_control(state_dir)
        control.faults.clear()
        write_control(state_dir, control)


def advance_clock(state_dir: Path, seconds: float) -> float:
    """Move the simulator's clock forward by ``seconds``; returns the new total offset."""
    with device_lock(state_dir):
        control = read_control(state_dir)
        control.clock_offset_seconds += seconds
        write_control(state_dir, control)
        return control.clock_offset_seconds


def set_fn_validity(state_dir: Path, day: date | str | None) -> str | None:
    """Make ``getFnInfo`` report the FN's end date ``day`` (None: back to the default)."""
    validity = None if day is None else _iso_date(day)
    with device_lock(state_dir):
        control = read_control(state_dir)
        control.fn_validity = validity
        write_control(state_dir, control)
    return validity


def set_ofd_backlog(state_dir: Path, backlog: OfdBacklog | None) -> None:
    """Make ``ofdExchangeStatus`` report ``backlog`` unsent documents (None: sent at last)."""
    with device_lock(state_dir):
        control = read_control(state_dir)
        control.ofd_backlog = backlog
        write_control(state_dir, control)


class FaultControl:
    """The simulator's view of the control file: reloaded when it changes, fires faults.

    All methods are called with the device lock held. Decrements of ``count`` and the
    paper_runs_out → no_paper switch are written back by :meth:`save_if_changed`.
    """

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir
        self._path = state_dir / CONTROL_FILE_NAME
        self._stamp: tuple[int, int, int] | None = None
        self._control = Control()
        self._random = random.Random(0)
        self._changed = False

    @property
    def clock_offset_seconds(self) -> float:
        return self._control.clock_offset_seconds

    @property
    def fn_validity(self) -> str | None:
        return self._control.fn_validity

    @property
    def ofd_backlog(self) -> OfdBacklog | None:
        return self._control.ofd_backlog

    def ofd_down(self) -> bool:
        """The OFD link is cut (``ofd_offline``, or a backlog set with ``ofd-backlog``)."""
        return self.is_set("ofd_offline") or self._control.ofd_backlog is not None

    def refresh(self) -> None:
        """Re-read the control file if its inode, size or mtime changed."""
        try:
            info = os.stat(self._path)
        except FileNotFoundError:
            if self._stamp is not None:
                self._stamp = None
                self._control = Control()
            return
        stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
        if stamp != self._stamp:
            self._control = read_control(self._state_dir)
            self._random = random.Random(self._control.seed)
            self._stamp = stamp
        self._changed = False

    def is_set(self, name: str) -> bool:
        """Whether the fault is present at all (for status queries; does not fire it)."""
        return name in self._control.faults

    def fire(self, name: str) -> bool:
        """Decide whether fault ``name`` hits the current task, consuming one ``count``."""
        fault = self._control.faults.get(name)
        if fault is None:
            return False
        if fault.rate is not None and self._random.random() >= fault.rate:
            return False
        if fault.count is not None:
            if fault.count <= 1:
                del self._control.faults[name]
            else:
                self._control.faults[name] = Fault(fault.count - 1, fault.rate, fault.seconds)
            self._changed = True
        return True

    def paper_ran_out(self) -> None:
        """The paper ended mid-document: from now on there is no paper until removed."""
        self._control.faults["no_paper"] = Fault()
        self._changed = True

    def print_delay(self, default: float) -> float:
        """Seconds to spend printing the current document (fires ``print_delay``)."""
        fault = self._control.faults.get("print_delay")
        if fault is None or fault.seconds is None or not self.fire("print_delay"):
            return default
        return fault.seconds

    def save_if_changed(self) -> None:
        if not self._changed:
            return
        write_control(self._state_dir, self._control)
        info = os.stat(self._path)
        self._stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
        self._changed = False
