"""The request queue of the Web Requests emulator and the one worker that executes it.

Behaviour copied from Atol's server (atol-notes §3.2–§3.3, §1.7): requests run one at a
time in arrival order; sub-tasks after a failed one are ``interrupted`` (502). Before each
fiscal sub-task the worker reads the FN's last FD number. If the fiscal sub-task fails with
a lost connection (ambiguous code, or a connection error the server cannot tell apart), the
sub-task becomes ``blocked`` and the whole queue stops (``isBlocked``; new requests are still
accepted). The worker then polls the register; once it answers, it compares FD numbers: the
number grew → the document exists, its ``getLastFiscalParams`` become the result
(``ready``) after a ``continuePrint``; it did not grow → ``error`` with the original code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kassa_appliance.registers.base import (
    FISCAL_TASK_TYPES,
    NO_CONNECTION,
    PORT_BUSY,
    PORT_NOT_AVAILABLE,
    ErrorCategory,
    JsonDict,
    Register,
    RegisterError,
)

log = logging.getLogger(__name__)

INTERRUPTED_BY_PREVIOUS_ERRORS = 502
CANCELED = 503
WEB_FAIL = 505
_CONNECTION_CODES = frozenset({NO_CONNECTION, PORT_BUSY, PORT_NOT_AVAILABLE})
_IDLE_WAIT = 0.5


class DuplicateRequest(Exception):
    """A request with this uuid exists already (HTTP 409)."""


@dataclass
class SubTask:
    task: JsonDict
    status: str = "wait"
    error_code: int = 0
    error_description: str = ""
    result: JsonDict | None = None

    def to_json(self) -> JsonDict:
        data: JsonDict = {
            "status": self.status,
            "error": {"code": self.error_code, "description": self.error_description},
        }
        if self.result is not None:
            data["result"] = self.result
        return data


@dataclass
class Request:
    uuid: str
    number: int
    subtasks: list[SubTask] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return any(sub.status in ("wait", "inProgress", "blocked") for sub in self.subtasks)


@dataclass
class _Blocked:
    request: Request
    subtask: SubTask
    fd_before: int


def last_fd_number(register: Register) -> int:
    """The number of the FN's last fiscal document (``getFnStatus``)."""
    status = register.process({"type": "getFnStatus"}).get("fnStatus") or {}
    number = status.get("fiscalDocumentNumber")
    if isinstance(number, bool) or not isinstance(number, int):
        raise RegisterError(NO_CONNECTION, f"getFnStatus gave no fiscalDocumentNumber: {status!r}")
    return number


class RequestQueue:
    """Thread-safe store of requests plus the worker thread that runs them."""

    def __init__(
        self,
        register: Register,
        *,
        hold_queue: Callable[[], bool] = lambda: False,
        hold_recovery: Callable[[], bool] = lambda: False,
        recovery_interval: float = 0.05,
    ):
        self._register = register
        self._hold_queue = hold_queue
        self._hold_recovery = hold_recovery
        self._recovery_interval = recovery_interval
        self._cond = threading.Condition()
        self._requests: dict[str, Request] = {}
        self._order: list[Request] = []
        self._blocked: _Blocked | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- HTTP side ---------------------------------------------------------------------

    def submit(self, uuid: str, tasks: list[JsonDict]) -> tuple[Request, JsonDict]:
        with self._cond:
            if uuid in self._requests:
                raise DuplicateRequest(uuid)
            request = Request(uuid, len(self._order) + 1, [SubTask(dict(t)) for t in tasks])
            self._requests[uuid] = request
            self._order.append(request)
            self._cond.notify_all()
            return request, self._queue_flags()

    def results(self, uuid: str) -> list[JsonDict] | None:
        with self._cond:
            request = self._requests.get(uuid)
            return None if request is None else [sub.to_json() for sub in request.subtasks]

    def cancel(self, uuid: str) -> bool | None:
        """Cancel a request still entirely waiting. None: unknown uuid."""
        with self._cond:
            request = self._requests.get(uuid)
            if request is None:
                return None
            if any(sub.status != "wait" for sub in request.subtasks):
                return False
            for sub in request.subtasks:
                sub.status = "canceled"
                sub.error_code = CANCELED
                sub.error_description = "Задание отменено"
            return True

    def status(self) -> JsonDict:
        with self._cond:
            statuses = [sub.status for r in self._order for sub in r.subtasks]
            return {
                "number": sum(1 for r in self._order if r.pending),
                "ready": statuses.count("ready"),
                "canceled": statuses.count("canceled"),
                **self._queue_flags(),
            }

    def _queue_flags(self) -> JsonDict:
        blocked = self._blocked
        return {
            "isBlocked": blocked is not None,
            "blockedUUID": blocked.request.uuid if blocked else "",
            "blockReason": "connectionError" if blocked else "",
        }

    # -- worker ------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._register.open()
        except RegisterError as exc:  # the worker retries through the tasks themselves
            log.warning("wr-emulator: register not available at start: %s", exc)
        self._thread = threading.Thread(target=self._loop, name="wr-emulator-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                blocked = self._blocked
                request = None if blocked else self._next_request()
                if request is None:
                    self._cond.wait(self._recovery_interval if blocked else _IDLE_WAIT)
                    if self._stopping:
                        return
            if blocked is not None:
                self._try_recover(blocked)
            elif request is not None:
                self._execute(request)

    def _next_request(self) -> Request | None:
        if self._hold_queue():
            return None
        for request in self._order:
            if any(sub.status == "wait" for sub in request.subtasks):
                return request
        return None

    def _set(self, sub: SubTask, status: str, code: int = 0, text: str = "") -> None:
        with self._cond:
            sub.status, sub.error_code, sub.error_description = status, code, text

    def _execute(self, request: Request) -> None:
        failed = any(sub.status == "error" for sub in request.subtasks)
        for sub in request.subtasks:
            if sub.status != "wait":
                continue
            if failed:
                self._set(
                    sub,
                    "interrupted",
                    INTERRUPTED_BY_PREVIOUS_ERRORS,
                    "Выполнение прервано из-за предыдущих ошибок",
                )
                continue
            self._set(sub, "inProgress")
            if not self._run_subtask(request, sub):
                failed = sub.status == "error"
                if sub.status == "blocked":
                    return

    def _run_subtask(self, request: Request, sub: SubTask) -> bool:
        fiscal = sub.task.get("type") in FISCAL_TASK_TYPES
        try:
            fd_before = last_fd_number(self._register) if fiscal else 0
        except RegisterError as exc:  # nothing was sent yet
            self._set(sub, "error", exc.code, exc.description)
            return False
        try:
            result = self._register.process(sub.task)
        except RegisterError as exc:
            lost = exc.category == ErrorCategory.AMBIGUOUS or exc.code in _CONNECTION_CODES
            if fiscal and lost:
                with self._cond:
                    sub.status = "blocked"
                    sub.error_code, sub.error_description = exc.code, exc.description
                    self._blocked = _Blocked(request, sub, fd_before)
                log.warning("wr-emulator: %s blocked the queue: %s", request.uuid, exc)
            else:
                self._set(sub, "error", exc.code, exc.description)
            return False
        except Exception as exc:  # a bug in the register must not kill the worker
            log.exception("wr-emulator: task of %s crashed", request.uuid)
            self._set(sub, "error", WEB_FAIL, f"{type(exc).__name__}: {exc}")
            return False
        with self._cond:
            sub.result = result
            sub.status = "ready"
        return True

    def _try_recover(self, blocked: _Blocked) -> None:
        if self._hold_recovery():
            return
        try:
            fd_now = last_fd_number(self._register)
            fiscalised = fd_now > blocked.fd_before
            result: Any = None
            if fiscalised:
                result = self._register.process(
                    {"type": "getLastFiscalParams", "forReceipt": False}
                )
                self._continue_print()
        except RegisterError as exc:
            log.info("wr-emulator: register still unavailable (%s); queue stays blocked", exc)
            return
        with self._cond:
            sub = blocked.subtask
            if fiscalised:
                sub.status, sub.error_code, sub.error_description = "ready", 0, ""
                sub.result = result
            else:
                sub.status = "error"
            self._blocked = None
            self._cond.notify_all()
        log.warning("wr-emulator: %s resolved as %s", blocked.request.uuid, blocked.subtask.status)

    def _continue_print(self) -> None:
        try:
            self._register.process({"type": "continuePrint"})
        except RegisterError as exc:
            log.info("wr-emulator: continuePrint after recovery failed: %s", exc)
