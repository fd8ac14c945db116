"""Loopback HTTP server speaking Atol's Web Requests API v2 (atol-notes §3.1), backed by a
register (the simulator by default). Stdlib only: ``ThreadingHTTPServer`` with HTTP/1.1
keep-alive, one worker thread executing the queue (``requests_queue``).

Endpoints: ``POST /api/v2/requests`` (201 / 400 / 409), ``GET|DELETE /api/v2/requests/{uuid}``,
``GET /api/v2/getRequestsQueueStatus``, ``GET /api/v2/serverInfo``. Faults: ``faults.py``.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from kassa_appliance.registers.base import FISCAL_TASK_TYPES, JsonDict, Register
from kassa_appliance.registers.factory import simulator_state_dir

from .faults import EmulatorFaults
from .requests_queue import DuplicateRequest, RequestQueue

log = logging.getLogger(__name__)

SERVER_VERSION = "1.0.4.0-kassa-emulator"
_REQUESTS_PREFIX = "/api/v2/requests/"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("wr-emulator %s: " + format, self.address_string(), *args)

    # -- plumbing ----------------------------------------------------------------------

    def _send(self, status: int, body: JsonDict | None = None) -> None:
        payload = json.dumps(body if body is not None else {}, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, status: int, code: int, description: str) -> None:
        self._send(status, {"error": {"code": code, "description": description}})

    def _drop(self) -> None:
        """Close the connection without an answer (the client sees a broken connection)."""
        self.close_connection = True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _path(self) -> str:
        return urlsplit(self.path).path.rstrip("/") or "/"

    def _unreachable(self) -> bool:
        if self.server.faults.active("unreachable"):
            self._read_body()
            self._drop()
            return True
        return False

    # -- verbs -------------------------------------------------------------------------

    def do_GET(self) -> None:
        if self._unreachable():
            return
        path = self._path()
        queue = self.server.queue
        if path == "/api/v2/serverInfo":
            self._send(
                200,
                {
                    "serverVersion": SERVER_VERSION,
                    "driverVersion": f"{self.server.register.name} (emulated)",
                    "os": "linux",
                    "currentDateTime": datetime.now().astimezone().isoformat(timespec="seconds"),
                },
            )
        elif path == "/api/v2/getRequestsQueueStatus":
            self._send(200, queue.status())
        elif path.startswith(_REQUESTS_PREFIX):
            results = queue.results(unquote(path[len(_REQUESTS_PREFIX) :]))
            if results is None:
                self._error(404, 404, "Задание не найдено")
            else:
                self._send(200, {"results": results})
        else:
            self._error(404, 404, f"no such endpoint: GET {path}")

    def do_DELETE(self) -> None:
        if self._unreachable():
            return
        path = self._path()
        if not path.startswith(_REQUESTS_PREFIX):
            self._error(404, 404, f"no such endpoint: DELETE {path}")
            return
        canceled = self.server.queue.cancel(unquote(path[len(_REQUESTS_PREFIX) :]))
        if canceled is None:
            self._error(404, 404, "Задание не найдено")
        elif canceled:
            self._send(200, {})
        else:
            self._error(409, 409, "Задание уже выполняется или выполнено")

    def do_POST(self) -> None:
        if self._unreachable():
            return
        path = self._path()
        body = self._read_body()
        if path != "/api/v2/requests":
            self._error(404, 404, f"no such endpoint: POST {path}")
            return
        faults = self.server.faults
        if faults.consume("drop_before_post"):
            self._drop()
            return
        try:
            request_uuid, tasks = _parse_submission(body)
        except ValueError as exc:
            self._error(400, 501, str(exc))
            return
        try:
            request, flags = self.server.queue.submit(request_uuid, tasks)
        except DuplicateRequest:
            self._error(409, 409, f"Задание с uuid {request_uuid} уже существует")
            return
        if faults.consume("drop_after_post"):
            self._drop()
            return
        self._send(201, {"number": request.number, "uuid": request.uuid, **flags})


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    queue: RequestQueue
    faults: EmulatorFaults
    register: Register


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
        self._server = _Server((host, port), _Handler)
        self._server.queue = self.queue
        self._server.faults = self.faults
        self._server.register = register
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> WebRequestsEmulator:
        """Serve in a background thread."""
        self.queue.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="wr-emulator-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, let the worker finish its current task, close the register."""
        if self._thread is None:
            return
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._thread = None
        self.queue.stop()
        self._server.server_close()
        self.register.close()

    def __enter__(self) -> WebRequestsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
