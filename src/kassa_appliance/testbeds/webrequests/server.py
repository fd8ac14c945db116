"""Loopback HTTP server speaking Atol's Web Requests API v2 (atol-notes §3.1), backed by a
register (the simulator by default). aiohttp's low-level server (HTTP/1.1 keep-alive) on its
own event loop in a background thread, one worker thread executing the queue
(``requests_queue``); the handlers only take the queue's lock for a moment.

Endpoints: ``POST /api/v2/requests`` (201 / 400 / 409), ``GET|DELETE /api/v2/requests/{uuid}``,
``GET /api/v2/getRequestsQueueStatus``, ``GET /api/v2/serverInfo``. Faults: ``faults.py``.
"""

from __future__ import annotations

import json
import logging
import socket
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from aiohttp import web

from kassa_appliance.registers.base import FISCAL_TASK_TYPES, JsonDict, Register
from kassa_appliance.registers.factory import simulator_state_dir
from kassa_appliance.testbeds.threaded_site import SHUTDOWN_SECONDS, ThreadedSite

from .faults import EmulatorFaults
from .requests_queue import DuplicateRequest, RequestQueue

log = logging.getLogger(__name__)

SERVER_VERSION = "1.0.4.0-kassa-emulator"
_REQUESTS_PREFIX = "/api/v2/requests/"


class _Api:
    """The endpoints, on aiohttp's low-level server (one request → one answer)."""

    def __init__(self, queue: RequestQueue, faults: EmulatorFaults, register: Register) -> None:
        self.queue = queue
        self.faults = faults
        self.register = register

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        path = urlsplit(request.raw_path).path.rstrip("/") or "/"
        if self.faults.active("unreachable"):
            return _drop(request)
        if request.method == "GET":
            return self._get(path)
        if request.method == "DELETE":
            return self._delete(path)
        if request.method == "POST":
            return self._post(request, path, body)
        return _error(501, 501, f"unsupported method {request.method}")

    def _get(self, path: str) -> web.StreamResponse:
        queue = self.queue
        if path == "/api/v2/serverInfo":
            return _send(
                200,
                {
                    "serverVersion": SERVER_VERSION,
                    "driverVersion": f"{self.register.name} (emulated)",
                    "os": "linux",
                    "currentDateTime": datetime.now().astimezone().isoformat(timespec="seconds"),
                },
            )
        if path == "/api/v2/getRequestsQueueStatus":
            return _send(200, queue.status())
        if path.startswith(_REQUESTS_PREFIX):
            results = queue.results(unquote(path[len(_REQUESTS_PREFIX) :]))
            if results is None:
                return _error(404, 404, "Задание не найдено")
            return _send(200, {"results": results})
        return _error(404, 404, f"no such endpoint: GET {path}")

    def _delete(self, path: str) -> web.StreamResponse:
        if not path.startswith(_REQUESTS_PREFIX):
            return _error(404, 404, f"no such endpoint: DELETE {path}")
        canceled = self.queue.cancel(unquote(path[len(_REQUESTS_PREFIX) :]))
        if canceled is None:
            return _error(404, 404, "Задание не найдено")
        if canceled:
            return _send(200, {})
        return _error(409, 409, "Задание уже выполняется или выполнено")

    def _post(self, request: web.BaseRequest, path: str, body: bytes) -> web.StreamResponse:
        if path != "/api/v2/requests":
            return _error(404, 404, f"no such endpoint: POST {path}")
        faults = self.faults
        if faults.consume("drop_before_post"):
            return _drop(request)
        try:
            request_uuid, tasks = _parse_submission(body)
        except ValueError as exc:
            return _error(400, 501, str(exc))
        try:
            submitted, flags = self.queue.submit(request_uuid, tasks)
        except DuplicateRequest:
            return _error(409, 409, f"Задание с uuid {request_uuid} уже существует")
        if faults.consume("drop_after_post"):
            return _drop(request)
        return _send(201, {"number": submitted.number, "uuid": submitted.uuid, **flags})


def _send(status: int, body: JsonDict) -> web.Response:
    payload = json.dumps(body, ensure_ascii=False).encode()
    return web.Response(
        status=status, body=payload, headers={"Content-Type": "application/json; charset=utf-8"}
    )


def _error(status: int, code: int, description: str) -> web.Response:
    return _send(status, {"error": {"code": code, "description": description}})


def _drop(request: web.BaseRequest) -> web.StreamResponse:
    """Close the connection without an answer (the client sees a broken connection); the
    placeholder returned is never written."""
    if request.transport is not None:
        request.transport.close()
    return web.Response()


def _parse_submission(body: bytes) -> tuple[str, list[JsonDict]]:
    """Validate a POST body; ValueError says which field is wrong."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("request body must be a JSON object with 'uuid' and 'request'")
    request_uuid = data.get("uuid")
    if not isinstance(request_uuid, str) or not request_uuid.strip():
        raise ValueError("field 'uuid' is required and must be a non-empty string")
    tasks = data.get("request")
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list) or not tasks:
        raise ValueError("field 'request' is required: a task object or a non-empty array")
    for index, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("type"), str):
            raise ValueError(f"request[{index}] must be an object with a string 'type'")
    if sum(1 for task in tasks if task["type"] in FISCAL_TASK_TYPES) > 1:
        raise ValueError("Too many fiscal sub-tasks: at most one fiscal task per request")
    return request_uuid, tasks


class WebRequestsEmulator:
    """The emulator: HTTP server + queue worker over ``register``.

    ``register`` defaults to a SimulatorRegister in ``data_dir/simulator``; faults are read
    from ``data_dir/wr-emulator-faults.json``. ``port=0`` picks a free port (see ``url``).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        register: Register | None = None,
        recovery_interval: float = 0.05,
    ):
        if register is None:
            from kassa_appliance.registers.simulator import SimulatorRegister

            register = SimulatorRegister(simulator_state_dir(data_dir))
        self.data_dir = data_dir
        self.register = register
        self.faults = EmulatorFaults(data_dir)
        self.queue = RequestQueue(
            register,
            hold_queue=lambda: self.faults.active("hold_queue"),
            hold_recovery=lambda: self.faults.active("hold_recovery"),
            recovery_interval=recovery_interval,
        )
        # bound now, like the stdlib server did: ``url`` holds before ``start``
        self._socket = socket.create_server((host, port))
        self._api = _Api(self.queue, self.faults, register)
        self._site = ThreadedSite(self._socket, "wr-emulator-http")

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> WebRequestsEmulator:
        """Serve in a background thread (its own event loop)."""
        self.queue.start()
        self._site.start(self._make_runner)
        return self

    def _make_runner(self) -> web.BaseRunner:
        return web.ServerRunner(
            web.Server(self._api.handle, access_log=None), shutdown_timeout=SHUTDOWN_SECONDS
        )

    def stop(self) -> None:
        """Stop serving, let the worker finish its current task, close the register."""
        if not self._site.running:
            return
        self._site.stop()
        self.queue.stop()
        self._socket.close()
        self.register.close()

    def __enter__(self) -> WebRequestsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
