"""What every register backend (simulator, fptr10, webrequests) offers the engine.

A backend speaks Atol's JSON task format (atol-notes §1): ``process(task)`` takes one task
dict and returns the driver's result dict, or raises :class:`RegisterError` carrying the
Atol error code. The engine never looks at backend types: it decides what to do from the
error's :class:`ErrorCategory`, which :func:`categorize` derives from the Atol code.

Backends are synchronous and blocking, like the driver they wrap. The engine calls them
from one worker thread per register, never from the event loop.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

JsonDict = dict[str, Any]


class ErrorCategory(StrEnum):
    """What the engine does about a failed task."""

    WAIT = "wait"
    """The register cannot work right now (no paper, cover open, busy, unplugged):
    the job waits, the register is polled, the job resumes when it is fixed."""

    SHIFT = "shift"
    """The shift is in the wrong state (closed, or older than 24 h): fix the shift
    according to the shift policy, then run the task again."""

    AMBIGUOUS = "ambiguous"
    """The connection broke inside a fiscal task: the document may or may not exist.
    Never retried blindly; resolved by comparing FD numbers (ARCHITECTURE §3)."""

    DEFINITIVE = "definitive"
    """The register refused the task (bad data, FN fault): the job fails with the code."""


# Atol LIBFPTR_ERROR_* codes (atol-notes §1.6; names and Russian texts in
# registers/atol_errors.py, checked against libfptr10.py by tests/test_error_codes.py).
NO_CONNECTION = 2
PORT_BUSY = 3
PORT_NOT_AVAILABLE = 4
NO_PAPER = 44
COVER_OPENED = 45
PRINTER_FAULT = 46
MECHANICAL_FAULT = 47
BUSY = 55
NOT_FULLY_PAID = 66
SHIFT_EXPIRED = 68
DENIED_IN_CLOSED_SHIFT = 73
NO_CASH = 80
DENIED_IN_OPENED_SHIFT = 83
PRINTER_OVERHEAT = 114
FN_FAULT = 118
FN_SHIFT_EXPIRED = 141
INVALID_TAX_TYPE = 144
CLOSE_RECEIPT_INTERRUPTED = 177
CONNECTION_LOST = 241
RECEIPT_PARSE_ERROR = 501
CONNECTION_DISABLED = 1
NONCACH_PAYMENTS_TOO_MUCH = 52
INVALID_PAYMENT_TYPE = 60
INVALID_TAXATION_TYPE = 143
INVALID_TOTAL = 227
MARKING_CODE_VALIDATION_IN_PROGRESS = 401
NO_CONNECTION_WITH_SERVER = 402
INVALID_MARKING_CODE = 409
INVALID_STATE = 410
MARKS_OVERFLOW = 408
MARK_NOT_CHECKED = 420

_WAIT_CODES = frozenset(
    {
        CONNECTION_DISABLED,
        NO_CONNECTION,
        PORT_BUSY,
        PORT_NOT_AVAILABLE,
        NO_PAPER,
        COVER_OPENED,
        PRINTER_FAULT,
        MECHANICAL_FAULT,
        BUSY,
        PRINTER_OVERHEAT,
    }
)
_SHIFT_CODES = frozenset({SHIFT_EXPIRED, DENIED_IN_CLOSED_SHIFT, FN_SHIFT_EXPIRED})
_AMBIGUOUS_CODES = frozenset({CLOSE_RECEIPT_INTERRUPTED, CONNECTION_LOST})


def categorize(code: int) -> ErrorCategory:
    """Map an Atol error code to what the engine should do about it."""
    if code in _WAIT_CODES:
        return ErrorCategory.WAIT
    if code in _SHIFT_CODES:
        return ErrorCategory.SHIFT
    if code in _AMBIGUOUS_CODES:
        return ErrorCategory.AMBIGUOUS
    return ErrorCategory.DEFINITIVE


class RegisterError(Exception):
    """A task failed on the register, with Atol's code and (Russian) description."""

    def __init__(self, code: int, description: str, category: ErrorCategory | None = None):
        super().__init__(f"Atol error {code}: {description}")
        self.code = code
        self.description = description
        self.category = category if category is not None else categorize(code)


class RegisterUnavailable(RegisterError):
    """The register is not reachable at all (unplugged, library missing, server down).

    For a fiscal task this is only safe to treat as WAIT when it was raised *before*
    the task reached the device; backends raise ``RegisterError(CONNECTION_LOST)``
    when the connection broke while a fiscal task was in flight.
    """

    def __init__(self, description: str, code: int = NO_CONNECTION):
        super().__init__(code, description, ErrorCategory.WAIT)


# Receipts in the order registers report them (sells, returns, buys, then corrections).
RECEIPT_TASK_ORDER = (
    "sell",
    "sellReturn",
    "buy",
    "buyReturn",
    "sellCorrection",
    "sellReturnCorrection",
    "buyCorrection",
    "buyReturnCorrection",
)
RECEIPT_TASK_TYPES = frozenset(RECEIPT_TASK_ORDER)

# Tasks that create a fiscal document (consume an FD number) and so need the
# FD-number bookkeeping of the recovery algorithm.
FISCAL_TASK_TYPES = RECEIPT_TASK_TYPES | {"openShift", "closeShift"}


IMC_TYPES = (
    "auto",
    "imcUnrecognized",
    "imcShort",
    "imcFmVerifyCode88",
    "imcVerifyCode44",
    "imcFmVerifyCode44",
    "imcVerifyCode4",
)
"""Marking-code types ``imcType`` (FFD 1.2 tag 2100) as the driver names them
(``MARKING_CODE_TYPES_1_2`` of its JSON-task scripts): the validator and the simulator's
marking-code check share this one list."""


@runtime_checkable
class Register(Protocol):
    """A fiscal register backend. All methods block; call them from a worker thread."""

    name: str
    """Short backend name for status lines: ``simulator``, ``fptr10``, ``webrequests``."""

    def open(self) -> None:
        """Connect to the device. Raises RegisterUnavailable when it is not there."""

    def close(self) -> None:
        """Disconnect; safe to call when not open."""

    def process(self, task: JsonDict, *, request_id: str | None = None) -> JsonDict:
        """Run one Atol JSON task and return its result; raise RegisterError on failure.

        ``request_id`` is the job id for fiscal tasks: backends with their own idempotent
        queue (Web Requests) use it as the request uuid; others may ignore it.
        """
