"""Register backend over Atol's "Web Requests" HTTP server (DTO ≥ 10.7, atol-notes §3).

Submitting is ``POST /api/v2/requests`` with ``{"uuid": …, "request": [task]}``; the result is
polled from ``GET /api/v2/requests/{uuid}``. The server deduplicates by uuid (409 for a
uuid it already has), and it resolves a fiscal task whose connection broke by itself (status
``blocked`` until it has compared FD numbers). So unlike the bare driver, this backend can
recover exactly: a POST whose answer was lost is simply sent again, and a 409 means "it is
there, read its result".

Request uuids. The engine passes its job id as ``request_id``. Each attempt of a job gets the
deterministic uuid ``uuid5(job id, attempt n)``, n = 0, 1, …: a 409 whose earlier attempt
ended ``ready`` returns that result (never a second receipt); one still queued or running
is awaited; one that definitively failed (``error``/``canceled``/``interrupted``) means
the engine is retrying, so the next n is used. Queries without ``request_id`` get a fresh
``uuid4``.

Error mapping: ``error`` → RegisterError(code) categorised as usual; ``interrupted`` →
502; ``canceled`` → 503 DEFINITIVE; a server that cannot be reached before the task was
submitted → RegisterUnavailable (WAIT). A fiscal task whose outcome is still unknown when
``task_timeout`` runs out (server unreachable after the POST, or the task ``blocked`` /
``inProgress``) → CONNECTION_LOST (241, AMBIGUOUS); a fiscal task still ``wait`` at the
deadline is cancelled with DELETE and reported as WAIT when the cancel succeeds.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from .base import (
    CONNECTION_LOST,
    FISCAL_TASK_TYPES,
    RECEIPT_PARSE_ERROR,
    ErrorCategory,
    JsonDict,
    RegisterError,
    RegisterUnavailable,
)

if TYPE_CHECKING:
    from kassa_appliance.registers.settings import RegisterConfig

__all__ = ["INTERRUPTED", "REQUEST_CANCELED", "WebRequestsRegister", "attempt_uuid"]

log = logging.getLogger(__name__)

INTERRUPTED = 502
"""LIBFPTR_ERROR_INTERRUPTED_BY_PREVIOUS_ERRORS."""
REQUEST_CANCELED = 503
"""Code used for a ``canceled`` request (some server versions report 503 as well)."""

_NAMESPACE = uuid.UUID("6f1c4d0e-8a55-4c3e-9f0b-6b2f4a7d9e21")
_FINAL_FAILURES = frozenset({"error", "canceled", "interrupted"})
_PENDING = frozenset({"wait", "inProgress", "blocked"})
_MAX_ATTEMPTS = 1000


def attempt_uuid(request_id: str, attempt: int) -> str:
    """The Web Requests uuid of attempt ``attempt`` of job ``request_id``."""
    return str(uuid.uuid5(_NAMESPACE, f"{request_id}#{attempt}"))


class _Lost(Exception):
    """The server could not be reached or answered garbage after the task may have landed."""


class WebRequestsRegister:
    """Atol register behind a Web Requests server; implements the Register protocol."""

    name = "webrequests"

    def __init__(
        self,
        url: str = "http://127.0.0.1:16732",
        *,
        task_timeout: float = 60.0,
        http_timeout: float = 5.0,
        poll_initial: float = 0.05,
        poll_max: float = 1.0,
        transport: httpx.BaseTransport | None = None,
    ):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"register.url {url!r}: expected an http:// or https:// URL")
        self._url = url.rstrip("/")
        self._task_timeout = task_timeout
        self._poll_initial = poll_initial
        self._poll_max = poll_max
        self._client = httpx.Client(
            base_url=self._url, timeout=http_timeout, transport=transport, trust_env=False
        )
        self._next_attempt: OrderedDict[str, int] = OrderedDict()

    @classmethod
    def from_config(cls, config: RegisterConfig) -> WebRequestsRegister:
        return cls(config.url, task_timeout=config.task_timeout)

    # -- Register protocol -------------------------------------------------------------

    def open(self) -> None:
        """Check the server answers (``GET /api/v2/serverInfo``)."""
        self.server_info()

    def close(self) -> None:
        """Nothing to disconnect: each call is a request. The client stays usable."""

    def process(self, task: JsonDict, *, request_id: str | None = None) -> JsonDict:
        task_type = task.get("type")
        if not isinstance(task_type, str):
            raise RegisterError(
                RECEIPT_PARSE_ERROR, f"task field 'type' must be a string, got {task_type!r}"
            )
        fiscal = task_type in FISCAL_TASK_TYPES
        deadline = time.monotonic() + self._task_timeout
        body = _jsonable(task)
        if request_id is None:
            return dict(self._run(str(uuid.uuid4()), body, task_type, fiscal, deadline))
        attempt = self._next_attempt.get(request_id, 0)
        while attempt < _MAX_ATTEMPTS:
            request_uuid = attempt_uuid(request_id, attempt)
            try:
                outcome = self._run(request_uuid, body, task_type, fiscal, deadline, retry_ok=True)
            finally:
                self._remember(request_id, attempt)
            if outcome is not None:
                return dict(outcome)
            attempt += 1  # that attempt failed definitively earlier: this is a retry
        raise RegisterError(
            RECEIPT_PARSE_ERROR, f"job {request_id}: more than {_MAX_ATTEMPTS} attempts"
        )

    # -- extras ------------------------------------------------------------------------

    def server_info(self) -> JsonDict:
        return self._get_json("/api/v2/serverInfo")

    def queue_status(self) -> JsonDict:
        """``GET /api/v2/getRequestsQueueStatus``: {number, ready, canceled, isBlocked,
        blockReason, blockedUUID}. For health: a blocked queue needs attention."""
        return self._get_json("/api/v2/getRequestsQueueStatus")

    # -- internals ---------------------------------------------------------------------

    def _remember(self, request_id: str, attempt: int) -> None:
        self._next_attempt[request_id] = attempt
        self._next_attempt.move_to_end(request_id)
        while len(self._next_attempt) > 256:
            self._next_attempt.popitem(last=False)

    def _get_json(self, path: str) -> JsonDict:
        try:
            response = self._client.get(path)
        except httpx.HTTPError as exc:
            raise RegisterUnavailable(f"Web Requests server {self._url}: {exc}") from exc
        if response.status_code != 200:
            raise RegisterUnavailable(
                f"Web Requests server {self._url}{path}: HTTP {response.status_code}"
            )
        data = _json_object(response)
        if data is None:
            raise RegisterUnavailable(f"Web Requests server {self._url}{path}: not a JSON object")
        return data

    def _run(
        self,
        request_uuid: str,
        task: JsonDict,
        task_type: str,
        fiscal: bool,
        deadline: float,
        *,
        retry_ok: bool = False,
    ) -> Any:
        """Submit (or find) ``request_uuid`` and wait for its outcome.

        Returns the result, or None when ``retry_ok`` and the uuid already holds a
        definitively failed earlier attempt.
        """
        created = self._submit(request_uuid, task, task_type, fiscal, deadline)
        try:
            status, entry = self._wait(request_uuid, task_type, fiscal, deadline)
        except _Lost as exc:
            if fiscal:
                raise RegisterError(
                    CONNECTION_LOST,
                    f"{task_type}: Web Requests server unreachable after the task was "
                    f"submitted ({exc}); the outcome is unknown",
                ) from None
            raise RegisterUnavailable(f"{task_type}: Web Requests server: {exc}") from None
        if status == "ready":
            result = entry.get("result")
            return result if isinstance(result, dict) else {}
        if not created and retry_ok and status in _FINAL_FAILURES:
            return None
        raise _failure(task_type, status, entry)

    def _submit(
        self, request_uuid: str, task: JsonDict, task_type: str, fiscal: bool, deadline: float
    ) -> bool:
        """POST until the server has the uuid. True if this call created it, False on 409."""
        body = {"uuid": request_uuid, "request": [task]}
        may_have_landed = False
        delay = self._poll_initial
        while True:
            try:
                response = self._client.post("/api/v2/requests", json=body)
            except httpx.ConnectError as exc:
                if not may_have_landed:
                    # Nothing was sent: the job can wait for the server to come back.
                    raise RegisterUnavailable(f"Web Requests server {self._url}: {exc}") from exc
                error: str = str(exc)
            except httpx.HTTPError as exc:
                may_have_landed = True
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 201:
                    return True
                if response.status_code == 409:
                    return False
                if response.status_code == 400:
                    raise RegisterError(
                        RECEIPT_PARSE_ERROR,
                        f"{task_type}: Web Requests server rejected the request: "
                        f"{response.text[:300]}",
                    )
                if response.status_code < 500 and not may_have_landed:
                    raise RegisterUnavailable(
                        f"Web Requests server {self._url}: POST /api/v2/requests answered "
                        f"HTTP {response.status_code}"
                    )
                may_have_landed = True
                error = f"HTTP {response.status_code}"
            log.warning("webrequests: %s %s: %s; submitting again", task_type, request_uuid, error)
            if time.monotonic() + delay > deadline:
                if fiscal:
                    raise RegisterError(
                        CONNECTION_LOST,
                        f"{task_type}: the Web Requests server did not confirm request "
                        f"{request_uuid} ({error}); the outcome is unknown",
                    )
                raise RegisterUnavailable(f"{task_type}: Web Requests server: {error}")
            time.sleep(delay)
            delay = min(delay * 2, self._poll_max)

    def _wait(
        self, request_uuid: str, task_type: str, fiscal: bool, deadline: float
    ) -> tuple[str, JsonDict]:
        """Poll until the status is final; raise _Lost or a RegisterError at the deadline."""
        delay = self._poll_initial
        status = "unknown"
        last_error = "no answer yet"
        while True:
            try:
                response = self._client.get(f"/api/v2/requests/{request_uuid}")
            except httpx.HTTPError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                entry = _first_result(response)
                if entry is not None:
                    status = str(entry.get("status"))
                    if status not in _PENDING:
                        return status, entry
                    last_error = f"status {status}"
                else:
                    last_error = f"HTTP {response.status_code}: unexpected answer"
            if time.monotonic() + delay > deadline:
                return self._give_up(request_uuid, task_type, fiscal, status, last_error)
            time.sleep(delay)
            delay = min(delay * 2, self._poll_max)

    def _give_up(
        self, request_uuid: str, task_type: str, fiscal: bool, status: str, last_error: str
    ) -> tuple[str, JsonDict]:
        timeout = f"{self._task_timeout:g} s"
        if status == "wait" and self._cancel(request_uuid):
            raise RegisterUnavailable(
                f"{task_type}: not started by the Web Requests server within {timeout}; "
                "request cancelled"
            )
        if status in ("unknown", "wait") and not fiscal:
            raise RegisterUnavailable(f"{task_type}: no result within {timeout} ({last_error})")
        if fiscal:
            raise _Lost(f"no final status within {timeout} ({last_error})")
        raise RegisterUnavailable(f"{task_type}: no result within {timeout} ({last_error})")

    def _cancel(self, request_uuid: str) -> bool:
        try:
            response = self._client.delete(f"/api/v2/requests/{request_uuid}")
        except httpx.HTTPError:
            return False
        return response.status_code == 200


def _jsonable(value: Any) -> Any:
    """Decimals become JSON numbers (floats), as the driver expects."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _json_object(response: httpx.Response) -> JsonDict | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _first_result(response: httpx.Response) -> JsonDict | None:
    if response.status_code != 200:
        return None
    data = _json_object(response)
    results = data.get("results") if data else None
    if isinstance(results, list) and results and isinstance(results[0], dict):
        return results[0]
    return None


def _failure(task_type: str, status: str, entry: JsonDict) -> RegisterError:
    error = entry.get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    description = str(error.get("description") or "")
    if status == "canceled":
        return RegisterError(
            REQUEST_CANCELED,
            f"{task_type}: request was cancelled on the server {description}".rstrip(),
            ErrorCategory.DEFINITIVE,
        )
    if status == "interrupted":
        return RegisterError(
            INTERRUPTED, description or f"{task_type}: interrupted by a previous error"
        )
    if status == "error" and isinstance(code, int) and not isinstance(code, bool) and code != 0:
        return RegisterError(code, description)
    return RegisterError(
        RECEIPT_PARSE_ERROR,
        f"{task_type}: unexpected Web Requests status {status!r} (error {error!r})",
        ErrorCategory.DEFINITIVE,
    )
