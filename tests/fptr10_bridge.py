"""Test-side bridge for the fake ``libfptr10.so`` (tests/abi/fake_libfptr10.c).

The compiled fake forwards each driver call over a unix stream socket; this server answers
it by running the task on a real register backend (the SimulatorRegister). It plays the
part of the USB cable plus the device: the device keeps working when the host process that
loaded the library is SIGKILLed, exactly like a real register.

Line protocol: see the C file. Extra fault of the *cable* (not of the device):
``unplug_after_process`` — run the next N ``process`` calls on the device, then hang up
without answering, so the driver sees NO_CONNECTION after the task was delivered.
"""

from __future__ import annotations

import json
import socketserver
import threading
from pathlib import Path
from typing import Any

from kassa_appliance.registers.base import Register, RegisterError

RECEIPT_PARSE_ERROR = 501
_KNOWN_OPS = ("open", "close", "validate", "process")


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


class _Handler(socketserver.StreamRequestHandler):
    server: _BridgeServer

    def handle(self) -> None:
        try:
            for raw in self.rfile:
                answer = self.server.bridge.answer(raw)
                if answer is None:  # unplugged: hang up without a word
                    return
                self.wfile.write(answer.encode("utf-8") + b"\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return  # the host process died (SIGKILL): the device does not care


class _BridgeServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    bridge: Fptr10Bridge


class Fptr10Bridge:
    """Serves the fake driver on ``socket_path`` with ``register`` as the device."""

    def __init__(self, socket_path: Path, register: Register):
        self.socket_path = socket_path
        self.register = register
        self.unplug_after_process = 0
        self.calls: list[str] = []
        """Ops received, in order (lets tests see that validate preceded process)."""
        self._device_lock = threading.Lock()
        self._server = _BridgeServer(str(socket_path), _Handler)
        self._server.bridge = self
        self._thread: threading.Thread | None = None

    def start(self) -> Fptr10Bridge:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fptr10-bridge",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.register.close()
        self.socket_path.unlink(missing_ok=True)

    def answer(self, raw: bytes) -> str | None:
        try:
            message = json.loads(raw.decode("utf-8"))
            op = message["op"]
            if op not in _KNOWN_OPS:
                raise ValueError(f"unknown op {op!r}")
            task: Any = message.get("task")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            return f"ERR {RECEIPT_PARSE_ERROR} Ошибка парсинга запроса: {_one_line(str(exc))}"
        self.calls.append(op)
        with self._device_lock:
            try:
                if op == "open":
                    self.register.open()
                    return "OK {}"
                if op == "close":
                    return "OK {}"
                if not isinstance(task, dict) or not isinstance(task.get("type"), str):
                    return f"ERR {RECEIPT_PARSE_ERROR} Ошибка парсинга запроса: нет поля type"
                if op == "validate":
                    return "OK {}"
                result = self.register.process(task)
            except RegisterError as exc:
                return f"ERR {exc.code} {_one_line(exc.description)}"
            if self.unplug_after_process > 0:
                self.unplug_after_process -= 1
                return None
            return "OK " + json.dumps(result, ensure_ascii=False)
