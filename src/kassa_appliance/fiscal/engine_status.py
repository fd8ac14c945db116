"""What the engine tells the world about itself: status, wait reasons, alerts.

Owns :class:`EngineStatus` (the snapshot the daemon, the CLI and the snap health read),
:class:`Progress` (the engine's mutable view it is built from), publishing status to the
listeners, the queue-depth count, and the table turning a register's WAIT error into a
sentence a person can act on. :class:`StatusReporting` is the engine's mixin for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from kassa_appliance.fiscal.caller import RegisterCaller
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.registers.base import NO_PAPER, ErrorCategory, Register, RegisterError

log = logging.getLogger("kassa_appliance.fiscal.engine")

QUEUE_DEPTH_TTL = 0.25


@dataclass(frozen=True)
class DeviceFacts:
    """What the register says about itself, polled while idle (fiscal/device_facts.py).

    Dates and times are ISO strings as the register reports them (no ticking values, so a
    poll that learns nothing new is no status change). None: not known (yet).
    """

    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    registration_number: str | None = None
    fn_number: str | None = None
    fn_expiry: str | None = None
    """ISO date the FN stops working (``getFnInfo`` ``validityDate``)."""
    ofd_unsent: int | None = None
    ofd_oldest_unsent: str | None = None
    """ISO time of the oldest document not yet sent to the OFD; None when none waits."""
    shift_state: str | None = None
    """``opened``, ``closed`` or ``expired``."""
    shift_number: int | None = None
    shift_opened: str | None = None
    """ISO time the open shift began (its ``expiredTime`` less 24 h)."""
    paper: bool | None = None


@dataclass(frozen=True)
class EngineStatus:
    register: str
    register_online: bool
    queue_depth: int
    current_job: str | None = None
    waiting: str | None = None
    """Why the queue is not moving, in words a person can act on."""
    last_error: str | None = None
    alerts: tuple[str, ...] = ()
    print_pending: bool = False
    processed: int = 0
    device: DeviceFacts | None = None
    """The register's own facts (model, FN, OFD backlog, shift, paper); None until polled."""

    def summary(self) -> str:
        state = "online" if self.register_online else "offline"
        text = f"register {self.register} {state}, queue {self.queue_depth}"
        if self.waiting:
            text += f", waiting: {self.waiting}"
        if self.last_error:
            text += f", last error: {self.last_error}"
        return text


@dataclass
class Progress:
    """Mutable view of what the engine is doing, turned into EngineStatus on demand."""

    register_online: bool = False
    current_job: str | None = None
    waiting: str | None = None
    last_error: str | None = None
    alerts: list[str] = field(default_factory=list)
    print_pending: bool = False
    processed: int = 0
    device: DeviceFacts | None = None


StatusListener = Callable[[EngineStatus], None]


class StatusReporting:
    """The engine's status: built from its progress, published when it changes."""

    _journal: Journal
    _register: Register
    _caller: RegisterCaller
    _opened: bool
    _progress: Progress
    _listeners: list[StatusListener]
    _last_status: EngineStatus | None
    _depth: int
    _depth_counted_at: float | None
    _device_facts_due: bool = True
    """Poll the register's facts at the next idle moment (fiscal/device_facts.py)."""

    def status(self) -> EngineStatus:
        progress = self._progress
        return EngineStatus(
            register=self._register.name,
            register_online=progress.register_online and not self._caller.hung,
            queue_depth=self._queue_depth(),
            current_job=progress.current_job,
            waiting=progress.waiting,
            last_error=progress.last_error,
            alerts=tuple(progress.alerts),
            print_pending=progress.print_pending,
            processed=progress.processed,
            device=progress.device,
        )

    def _queue_depth(self) -> int:
        """Pending jobs, counted at most every QUEUE_DEPTH_TTL: status is published for
        every job, and counting a deep queue each time would cost more than the job."""
        now = time.monotonic()
        if self._depth_counted_at is None or now - self._depth_counted_at > QUEUE_DEPTH_TTL:
            self._depth = self._journal.pending_count()
            self._depth_counted_at = now
        return self._depth

    def _note_error(self, error: RegisterError) -> None:
        self._progress.last_error = f"atol-{error.code}: {error.description}"
        if error.code == NO_PAPER and self._progress.device is not None:
            # Learnt for free: the status shows it before the next poll of the facts.
            self._progress.device = replace(self._progress.device, paper=False)
        if error.code == NO_PAPER or error.category is ErrorCategory.SHIFT:
            self._device_facts_due = True
        if error.category is ErrorCategory.WAIT and error.code in OFFLINE_CODES:
            self._progress.register_online = False
            self._opened = False

    def _set_waiting(self, reason: str | None) -> None:
        if self._progress.waiting != reason:
            self._progress.waiting = reason
            if reason:
                log.info("queue waiting: %s", reason)
        self._publish_status()

    def _publish_status(self) -> None:
        if not self._listeners:
            return
        status = self.status()
        if status == self._last_status:
            return
        self._last_status = status
        for listener in self._listeners:
            listener(status)


FN_FAULT_CODES = frozenset({115, 116, 117, 118, 119, 120, 121, 137, 166})
OFFLINE_CODES = frozenset({1, 2, 3, 4})

WAIT_REASONS = {
    44: "no paper: load a paper roll",
    45: "the printer cover is open: close it",
    46: "printer fault",
    47: "printer mechanical fault",
    55: "the register is busy",
    114: "the printer is overheated",
    1: "the register connection is not open",
    2: "no connection to the register",
    3: "the register port is busy (another program holds it)",
    4: "the register port is not available",
}


def wait_reason(error: RegisterError) -> str:
    return WAIT_REASONS.get(error.code, f"register says: {error.description}")
