"""The simulated register's memory: what a real FN and KKT keep across power loss.

The state is JSON kept in two slot files written in turn (see :class:`StateStore`): one
``fdatasync`` per change, and a crash at any point leaves either the old or the new state,
never a torn one. Every process that touches the device serialises on an
exclusive ``flock`` of ``simulator.lock`` in the same directory.
"""

from __future__ import annotations

import binascii
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

STATE_SLOT_NAMES = ("simulator-state.0", "simulator-state.1")
SLOT_MAGIC = "kassa-sim-state"
LOCK_FILE_NAME = "simulator.lock"
STATE_VERSION = 1
SHIFT_MAX_HOURS = 24
REGISTERED_TAXATION_TYPES = ("osn", "usnIncome", "usnIncomeOutcome", "esn", "patent")
"""What a new simulated register is registered with: every current taxation system (``envd``
was abolished in 2021, so no FN registers it any more)."""
ORGANIZATION_VATIN = "7700000009"
"""The simulated user's INN (tag 1018): a made-up 10-digit INN with a valid check digit."""

JsonDict = dict[str, Any]


@dataclass
class SimulatorState:
    """Counters of one simulated device. Money is Decimal here and a string on disk."""

    serial: str
    fn_number: str
    registration_number: str
    registered_at: str
    fd_number: int = 1
    """Number of the last fiscal document; the registration report is FD 1."""
    shift_number: int = 0
    """Number of the current (open) or last (closed) shift; 0 before the first shift."""
    shift_open: bool = False
    shift_opened_at: str | None = None
    """Full-precision ISO time of openShift: the 24 h limit counts from here."""
    receipt_number: int = 0
    """Last receipt number in the current shift (restarts with each shift)."""
    shift_documents: int = 0
    """Fiscal documents in the current shift, openShift included."""
    cash_sum: Decimal = Decimal("0.00")
    shift_totals: dict[str, Decimal] = field(default_factory=dict)
    overall_totals: dict[str, Decimal] = field(default_factory=dict)
    shift_counts: dict[str, int] = field(default_factory=dict)
    document_counts: dict[str, int] = field(default_factory=dict)
    last_fiscal: JsonDict | None = None
    """``fiscalParams`` of the last fiscal document of any type."""
    last_receipt: JsonDict | None = None
    """``fiscalParams`` of the last receipt (sell, return, correction)."""
    print_pending: JsonDict | None = None
    """A fiscalised document whose printing was interrupted (tape document description)."""
    taxation_types: list[str] = field(default_factory=lambda: list(REGISTERED_TAXATION_TYPES))
    """Taxation systems of the registration (tag 1062); the first is the default."""
    organization_vatin: str = ORGANIZATION_VATIN
    last_document: JsonDict | None = None
    """The last fiscal document as printed (tape document), for ``printLastReceiptCopy``."""
    drawer_opened_at: str | None = None
    shift_payments: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    """Per receipt type, the shift's payments by payment type (cash net of change)."""
    shift_cash_in: Decimal = Decimal("0.00")
    shift_cash_out: Decimal = Decimal("0.00")
    ofd_queue: list[JsonDict] = field(default_factory=list)
    """Fiscal documents not yet sent to the OFD: ``{"number", "dateTime"}``, oldest first."""
    ism_queue: list[JsonDict] = field(default_factory=list)
    """Sales notices of marked goods not yet sent to the ISM."""
    marking_check: JsonDict | None = None
    """The marking-code check in progress (``beginMarkingCodeValidation`` … accept/decline)."""
    checked_codes: list[str] = field(default_factory=list)
    """Marking codes (base64) checked and accepted, waiting for the receipt that sells them."""

    def to_json(self) -> str:
        data: JsonDict = {
            "version": STATE_VERSION,
            "serial": self.serial,
            "fn_number": self.fn_number,
            "registration_number": self.registration_number,
            "registered_at": self.registered_at,
            "fd_number": self.fd_number,
            "shift_number": self.shift_number,
            "shift_open": self.shift_open,
            "shift_opened_at": self.shift_opened_at,
            "receipt_number": self.receipt_number,
            "shift_documents": self.shift_documents,
            "cash_sum": str(self.cash_sum),
            "shift_totals": {key: str(value) for key, value in self.shift_totals.items()},
            "overall_totals": {key: str(value) for key, value in self.overall_totals.items()},
            "shift_counts": self.shift_counts,
            "document_counts": self.document_counts,
            "last_fiscal": self.last_fiscal,
            "last_receipt": self.last_receipt,
            "print_pending": self.print_pending,
            "taxation_types": self.taxation_types,
            "organization_vatin": self.organization_vatin,
            "last_document": self.last_document,
            "drawer_opened_at": self.drawer_opened_at,
            "shift_payments": {
                kind: {key: str(value) for key, value in sums.items()}
                for kind, sums in self.shift_payments.items()
            },
            "shift_cash_in": str(self.shift_cash_in),
            "shift_cash_out": str(self.shift_cash_out),
            "ofd_queue": self.ofd_queue,
            "ism_queue": self.ism_queue,
            "marking_check": self.marking_check,
            "checked_codes": self.checked_codes,
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, source: Path) -> SimulatorState:
        try:
            data = json.loads(text)
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {STATE_VERSION}")
            return cls(
                serial=str(data["serial"]),
                fn_number=str(data["fn_number"]),
                registration_number=str(data["registration_number"]),
                registered_at=str(data["registered_at"]),
                fd_number=int(data["fd_number"]),
                shift_number=int(data["shift_number"]),
                shift_open=bool(data["shift_open"]),
                shift_opened_at=data["shift_opened_at"],
                receipt_number=int(data["receipt_number"]),
                shift_documents=int(data["shift_documents"]),
                cash_sum=Decimal(data["cash_sum"]),
                shift_totals={k: Decimal(v) for k, v in data["shift_totals"].items()},
                overall_totals={k: Decimal(v) for k, v in data["overall_totals"].items()},
                shift_counts={k: int(v) for k, v in data["shift_counts"].items()},
                document_counts={k: int(v) for k, v in data["document_counts"].items()},
                last_fiscal=data["last_fiscal"],
                last_receipt=data["last_receipt"],
                print_pending=data["print_pending"],
                # Added later: a state written by an older simulator lacks them.
                taxation_types=list(data.get("taxation_types", REGISTERED_TAXATION_TYPES)),
                organization_vatin=str(data.get("organization_vatin", ORGANIZATION_VATIN)),
                last_document=data.get("last_document"),
                drawer_opened_at=data.get("drawer_opened_at"),
                shift_payments={
                    kind: {key: Decimal(value) for key, value in sums.items()}
                    for kind, sums in data.get("shift_payments", {}).items()
                },
                shift_cash_in=Decimal(data.get("shift_cash_in", "0.00")),
                shift_cash_out=Decimal(data.get("shift_cash_out", "0.00")),
                ofd_queue=list(data.get("ofd_queue", [])),
                ism_queue=list(data.get("ism_queue", [])),
                marking_check=data.get("marking_check"),
                checked_codes=list(data.get("checked_codes", [])),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"simulator state {source} is unreadable: {exc}") from exc

    def shift_state(self, now: datetime) -> str:
        """``closed``, ``opened`` or ``expired`` (open for more than 24 h)."""
        if not self.shift_open:
            return "closed"
        if self.shift_opened_at is None:
            return "opened"
        age = now - datetime.fromisoformat(self.shift_opened_at)
        return "expired" if age.total_seconds() > SHIFT_MAX_HOURS * 3600 else "opened"

    def add_total(self, kind: str, amount: Decimal) -> None:
        """Count one more document of ``kind`` worth ``amount`` in shift and overall totals."""
        self.shift_totals[kind] = self.shift_totals.get(kind, Decimal("0.00")) + amount
        self.overall_totals[kind] = self.overall_totals.get(kind, Decimal("0.00")) + amount
        self.count(kind)

    def count(self, kind: str) -> None:
        self.shift_counts[kind] = self.shift_counts.get(kind, 0) + 1
        self.document_counts[kind] = self.document_counts.get(kind, 0) + 1


def new_state(
    serial: str | None, now: datetime, taxation_types: Sequence[str] | None = None
) -> SimulatorState:
    """A freshly registered device: random test FN (9999…), FD 1 = the registration report."""
    serial = serial if serial is not None else "00106" + _random_digits(9)
    if not serial or len(serial) > 20:
        raise ValueError(f"serial {serial!r}: expected 1 to 20 characters")
    taxation = list(REGISTERED_TAXATION_TYPES if taxation_types is None else taxation_types)
    unknown = [name for name in taxation if name not in REGISTERED_TAXATION_TYPES]
    if not taxation or unknown:
        raise ValueError(
            f"taxation_types {taxation!r}: expected some of {', '.join(REGISTERED_TAXATION_TYPES)}"
        )
    fn_number = "9999" + _random_digits(12)
    ordinal = _random_digits(10)
    check = binascii.crc_hqx(f"{ordinal}{'0' * 12}{serial.rjust(20, '0')}".encode(), 0xFFFF)
    registration_number = f"{ordinal}{check:06d}"
    registered_at = now.replace(second=0, microsecond=0).isoformat()
    state = SimulatorState(
        serial=serial,
        fn_number=fn_number,
        registration_number=registration_number,
        registered_at=registered_at,
        taxation_types=taxation,
    )
    state.last_fiscal = {
        "fiscalDocumentDateTime": registered_at,
        "fiscalDocumentNumber": 1,
        "fiscalDocumentSign": fiscal_sign(fn_number, 1, registered_at, Decimal("0")),
        "fnNumber": fn_number,
        "registrationNumber": registration_number,
    }
    return state


def fiscal_sign(fn_number: str, fd_number: int, date_time: str, total: Decimal) -> str:
    """The document's fiscal sign (tag 1077): 32 bits of an HMAC keyed by the FN number.

    Deterministic for the same document, at most 10 decimal digits, no leading zeros.
    """
    key = f"kassa-simulator:{fn_number}".encode()
    message = f"{fn_number}|{fd_number}|{date_time}|{total:.2f}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return str(int.from_bytes(digest[:4], "big"))


class StateStore:
    """The state on disk: two slot files written in turn, each a header and the JSON state.

    A save overwrites the *older* slot in place (``pwrite`` + ``fdatasync``: one durable
    write, no rename, no directory fsync) with header ``kassa-sim-state <seq> <length>
    <crc32>``; a load takes the valid slot with the highest sequence number. A write torn by
    a crash fails its checksum and the other slot, the previous state, wins. Call
    :meth:`load` and :meth:`save` with the device lock held.
    """

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir
        self._fds: list[int] = []
        self._seq = 0

    def open(self) -> None:
        if self._fds:
            return
        state_dir = self._state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        created = not all((state_dir / name).exists() for name in STATE_SLOT_NAMES)
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            for name in STATE_SLOT_NAMES:
                self._fds.append(os.open(state_dir / name, flags, 0o644))
        except OSError:
            self.close()
            raise
        if created:
            fsync_dir(state_dir)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def load(self) -> SimulatorState | None:
        """The newest valid state, or None when the device has not been created yet."""
        best: tuple[int, bytes] | None = None
        damaged = []
        for name, fd in zip(STATE_SLOT_NAMES, self._fds, strict=True):
            raw = os.pread(fd, os.fstat(fd).st_size, 0)
            if not raw:
                continue
            slot = _parse_slot(raw)
            if slot is None:
                damaged.append(name)
            elif best is None or slot[0] > best[0]:
                best = slot
        if best is None:
            if damaged:
                raise ValueError(
                    f"simulator state in {self._state_dir} is damaged ({', '.join(damaged)})"
                )
            return None
        self._seq = best[0]
        return SimulatorState.from_json(best[1].decode("utf-8"), self._state_dir)

    def save(self, state: SimulatorState) -> None:
        """Durably store ``state`` as the newest slot, keeping the previous one intact."""
        seq = self._seq + 1
        body = state.to_json().encode("utf-8")
        header = f"{SLOT_MAGIC} {seq} {len(body)} {zlib.crc32(body):08x}\n".encode()
        fd = self._fds[seq % 2]
        data = header + body
        offset = 0
        while offset < len(data):
            offset += os.pwrite(fd, data[offset:], offset)
        os.fdatasync(fd)
        self._seq = seq


def _parse_slot(raw: bytes) -> tuple[int, bytes] | None:
    header, newline, rest = raw.partition(b"\n")
    parts = header.split()
    if not newline or len(parts) != 4 or parts[0] != SLOT_MAGIC.encode():
        return None
    try:
        seq, length, crc = int(parts[1]), int(parts[2]), int(parts[3], 16)
    except ValueError:
        return None
    body = rest[:length]
    if len(body) != length or zlib.crc32(body) != crc:
        return None
    return seq, body


def load_state(state_dir: Path) -> SimulatorState | None:
    """Read the state once (for tools and tests).

    Safe without the device lock: a slot being written fails its checksum and the other
    slot, the previous state, is returned.
    """
    store = StateStore(state_dir)
    if not all((state_dir / name).exists() for name in STATE_SLOT_NAMES):
        return None
    store.open()
    try:
        return store.load()
    finally:
        store.close()


def write_atomically(path: Path, data: bytes) -> None:
    """Temp file, fsync, rename, fsync dir. The temp name is fixed: callers hold the lock."""
    tmp_path = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp_path, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def open_lock_file(state_dir: Path) -> int:
    """Open (creating) the device lock file; the descriptor is what ``flock`` locks."""
    state_dir.mkdir(parents=True, exist_ok=True)
    return os.open(state_dir / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


@contextmanager
def holding_lock(lock_fd: int) -> Iterator[None]:
    """Hold the exclusive device lock on an already open lock file."""
    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)


@contextmanager
def device_lock(state_dir: Path) -> Iterator[None]:
    """Open the lock file, hold the device lock, close it again (for one-off tools)."""
    lock_fd = open_lock_file(state_dir)
    try:
        with holding_lock(lock_fd):
            yield
    finally:
        os.close(lock_fd)


def _random_digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))
