"""Fault controls of the Web Requests emulator, set at run time through a control file.

``wr-emulator-faults.json`` in the emulator's data directory (any process may write it; the
emulator re-reads it on every HTTP request and worker step)::

    {
      "drop_before_post": 1,   # the next N POSTs: close the connection, nothing enqueued
      "drop_after_post": 1,    # the next N POSTs: enqueue, then close without answering
      "unreachable": true,     # every HTTP request: close the connection without answering
      "hold_queue": true,      # the worker starts no new request (they stay "wait")
      "hold_recovery": true    # a blocked task stays blocked (the device is still gone)
    }

Integer faults count down and disappear at zero; boolean ones last until removed. Faults of
the register itself (no paper, connection lost, …) belong to the simulator's own control file.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

CONTROL_FILE_NAME = "wr-emulator-faults.json"
COUNTED_FAULTS = ("drop_before_post", "drop_after_post")
SWITCH_FAULTS = ("unreachable", "hold_queue", "hold_recovery")


def _validate(data: Any, source: Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object")
    for name, value in data.items():
        if name in COUNTED_FAULTS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{source}: {name} must be an integer >= 0, got {value!r}")
        elif name in SWITCH_FAULTS:
            if not isinstance(value, bool):
                raise ValueError(f"{source}: {name} must be true or false, got {value!r}")
        else:
            expected = ", ".join(COUNTED_FAULTS + SWITCH_FAULTS)
            raise ValueError(f"{source}: unknown fault {name!r}; expected one of {expected}")
    return data


class EmulatorFaults:
    """Reads and consumes the control file; thread-safe within one process."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / CONTROL_FILE_NAME
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        return _validate(json.loads(text), self.path)

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, self.path)

    def active(self, name: str) -> bool:
        """Is switch fault ``name`` on?"""
        with self._lock:
            return bool(self._read().get(name, False))

    def consume(self, name: str) -> bool:
        """Fire counted fault ``name`` once if its count is above zero."""
        with self._lock:
            data = self._read()
            count = int(data.get(name, 0))
            if count <= 0:
                return False
            if count == 1:
                del data[name]
            else:
                data[name] = count - 1
            self._write(data)
            return True

    def set(self, name: str, value: int | bool | None) -> None:
        """Set a fault (None removes it)."""
        with self._lock:
            data = self._read()
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value
            self._write(_validate(data, self.path))
