"""Register backend over Atol's ``libfptr10.so`` (DTO10), through our own ctypes binding.

Error mapping (the engine decides from :func:`categorize`):

* ``libfptr10.so`` missing, unloadable, or without the DTO10 symbols → :class:`DriverLibraryError`
  (a :class:`RegisterUnavailable`; ``health == "blocked"``, ``code == DRIVER_LIBRARY_UNUSABLE``).
* ``libfptr_open`` fails → :class:`RegisterUnavailable` with the driver's code (WAIT).
* ``libfptr_validate_json`` fails → the driver's code as is: nothing reached the device.
* ``libfptr_process_json`` of a **fiscal** task fails with a connection code (2 NO_CONNECTION,
  3 PORT_BUSY, 4 PORT_NOT_AVAILABLE) → ``CONNECTION_LOST`` (241, AMBIGUOUS): the task was
  handed to the driver, so whether the FN registered the document is unknown; the engine
  resolves it by comparing FD numbers. The same holds when a fiscal call does not return
  within ``call_timeout``. For queries these stay WAIT.
* Any other code is passed through (:func:`categorize`: paper/cover/busy → WAIT, 68/73/141 →
  SHIFT, 177/241 → AMBIGUOUS, validation/tax/FN faults → DEFINITIVE).

Threading: a libfptr handle is not thread-safe, so every C call runs on one private driver
thread owned by the register. Callers (the engine's worker thread) wait at most
``call_timeout`` seconds; a call that hangs inside the driver keeps the driver thread, and
later calls fail fast with RegisterUnavailable until it returns. Nothing waits forever.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from decimal import Decimal
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from .base import (
    CONNECTION_LOST,
    FISCAL_TASK_TYPES,
    NO_CONNECTION,
    PORT_BUSY,
    PORT_NOT_AVAILABLE,
    ErrorCategory,
    JsonDict,
    RegisterError,
    RegisterUnavailable,
)
from .fptr10_binding import (
    DEFAULT_BUFFER_SIZE,
    LIBFPTR_PARAM_JSON_DATA,
    MODEL_ATOL_AUTO,
    OFD_CHANNEL_PROTO,
    PORT_COM,
    PORT_USB,
    SETTING_COM_FILE,
    SETTING_MODEL,
    SETTING_OFD_CHANNEL,
    SETTING_PORT,
    SETTING_USB_DEVICE_PATH,
    DriverLibraryError,
    Fptr10Handle,
    Fptr10Library,
)

if TYPE_CHECKING:
    from kassa_appliance.registers.settings import RegisterConfig

__all__ = ["DRIVER_BAD_RESULT", "DriverLibraryError", "Fptr10Register", "driver_settings"]

log = logging.getLogger(__name__)

DRIVER_BAD_RESULT = 9002
"""Our own code: the driver reported success but its result is not a JSON object."""

_CONNECTION_CODES = frozenset({NO_CONNECTION, PORT_BUSY, PORT_NOT_AVAILABLE})

T = TypeVar("T")


def driver_settings(
    usb_path: str = "auto", *, model: int = MODEL_ATOL_AUTO, extra: JsonDict | None = None
) -> JsonDict:
    """DTO10 settings JSON for a device path from config or udev.

    ``auto`` (or empty) → USB with ``UsbDevicePath=auto``; ``/dev/tty*`` → COM port with that
    ``ComFile``; a udev DEVPATH (``/devices/.../1-1.3``) or its basename (``1-1.3``) → USB with
    the basename, which is what libfptr10 expects.
    """
    settings: JsonDict = {SETTING_MODEL: model, SETTING_OFD_CHANNEL: OFD_CHANNEL_PROTO}
    path = usb_path.strip()
    if path in ("", "auto"):
        settings.update({SETTING_PORT: PORT_USB, SETTING_USB_DEVICE_PATH: "auto"})
    elif path.startswith("/dev/tty"):
        settings.update({SETTING_PORT: PORT_COM, SETTING_COM_FILE: path})
    elif path.startswith("/dev/"):
        raise ValueError(
            f"register.usb_path {usb_path!r}: expected 'auto', a /dev/tty* serial device or a "
            "udev DEVPATH such as '1-1.3'; device nodes like /dev/bus/usb/... are not accepted"
        )
    else:
        settings.update({SETTING_PORT: PORT_USB, SETTING_USB_DEVICE_PATH: PurePosixPath(path).name})
    if extra:
        settings.update(extra)
    return settings


class _DriverBusy(Exception):
    """A previous call is still inside the driver."""


class _DriverThread:
    """One daemon thread that runs every libfptr call, so the handle stays thread-confined."""

    def __init__(self, name: str):
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._pending: Future[Any] | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            function, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as exc:  # handed to the waiting caller
                future.set_exception(exc)

    @property
    def busy(self) -> bool:
        return self._pending is not None and not self._pending.done()

    def call(self, function: Callable[[], T], timeout: float) -> T:
        """Run on the driver thread; TimeoutError after ``timeout``; _DriverBusy if stuck."""
        if self.busy:
            raise _DriverBusy
        future: Future[T] = Future()
        self._pending = future
        self._jobs.put((function, future))
        return future.result(timeout)

    def stop(self) -> None:
        self._jobs.put(None)


class Fptr10Register:
    """Atol register through ``libfptr10.so``; implements the Register protocol."""

    name = "fptr10"

    def __init__(
        self,
        lib_path: str | None = None,
        usb_path: str = "auto",
        *,
        call_timeout: float = 60.0,
        model: int = MODEL_ATOL_AUTO,
        extra_settings: JsonDict | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ):
        self._lib_path = lib_path
        self._model = model
        self._extra_settings = extra_settings
        self._usb_path = usb_path
        self._settings = driver_settings(usb_path, model=model, extra=extra_settings)
        self._settings_changed = False
        self._call_timeout = call_timeout
        self._buffer_size = buffer_size
        self._library: Fptr10Library | None = None
        self._handle: Fptr10Handle | None = None
        self._thread: _DriverThread | None = None

    @property
    def usb_path(self) -> str:
        return self._usb_path

    @usb_path.setter
    def usb_path(self, value: str) -> None:
        """Hotplug found the register on another port: used from the next open()."""
        settings = driver_settings(value, model=self._model, extra=self._extra_settings)
        self._usb_path = value
        if settings != self._settings:
            self._settings = settings
            self._settings_changed = True

    @classmethod
    def from_config(cls, config: RegisterConfig) -> Fptr10Register:
        return cls(config.lib_path, config.usb_path, call_timeout=config.task_timeout)

    # -- Register protocol -------------------------------------------------------------

    def open(self) -> None:
        """Load the library (once), create the handle, apply settings, connect."""
        if self._thread is None:
            self._thread = _DriverThread(f"fptr10-driver-{id(self):x}")
        try:
            self._driver_call(self._open_on_driver_thread)
        except _DriverBusy:
            raise RegisterUnavailable("the driver is still busy with a previous call") from None
        except TimeoutError:
            raise RegisterUnavailable(
                f"libfptr_open did not return within {self._call_timeout:g} s"
            ) from None

    def close(self) -> None:
        thread = self._thread
        if thread is None:
            return
        if thread.busy:
            log.warning("fptr10: a driver call is still running; abandoning its handle")
        else:
            try:
                thread.call(self._close_on_driver_thread, self._call_timeout)
            except TimeoutError:
                log.warning("fptr10: libfptr_close did not return; abandoning the handle")
        thread.stop()
        self._thread = None

    def process(self, task: JsonDict, *, request_id: str | None = None) -> JsonDict:
        """Run one JSON task. ``request_id`` is accepted for protocol compatibility; the
        driver has no idempotency key, so ambiguity is resolved by the engine's FD check."""
        del request_id
        task_type = task.get("type")
        if not isinstance(task_type, str):
            raise RegisterError(501, f"task field 'type' must be a string, got {task_type!r}")
        fiscal = task_type in FISCAL_TASK_TYPES
        text = json.dumps(task, ensure_ascii=False, default=_json_default)
        self.open()  # raises RegisterUnavailable before anything is sent
        try:
            phase, code, payload = self._driver_call(lambda: self._run_task(text, fiscal))
        except _DriverBusy:
            raise RegisterUnavailable("the driver is still busy with a previous call") from None
        except TimeoutError:
            message = f"{task_type}: the driver did not answer within {self._call_timeout:g} s"
            if fiscal:
                raise RegisterError(CONNECTION_LOST, message) from None
            raise RegisterUnavailable(message) from None
        if phase == "process" and code != 0 and fiscal and code in _CONNECTION_CODES:
            raise RegisterError(
                CONNECTION_LOST,
                f"{task_type}: connection lost while the fiscal task was in the driver "
                f"(driver code {code}: {payload}); the outcome is unknown",
            )
        if code != 0:
            raise RegisterError(code, payload)
        return _parse_result(task_type, payload, fiscal)

    # -- helpers -------------------------------------------------------------------------

    def driver_version(self) -> str:
        """``libfptr_get_version_string`` (loads the library if needed)."""
        if self._thread is None:
            self._thread = _DriverThread(f"fptr10-driver-{id(self):x}")
        return self._driver_call(lambda: self._load().version())

    def _driver_call(self, function: Callable[[], T]) -> T:
        assert self._thread is not None, "open() first"
        return self._thread.call(function, self._call_timeout)

    def _load(self) -> Fptr10Library:
        if self._library is None:
            self._library = Fptr10Library(self._lib_path)
            log.info("fptr10: loaded %s (%s)", self._library.path, self._library.version())
        return self._library

    def _open_on_driver_thread(self) -> None:
        if self._settings_changed:
            self._settings_changed = False
            self._close_on_driver_thread()
        handle = self._handle
        if handle is None:
            handle = self._load().create(self._buffer_size)
            if handle.set_settings(self._settings) < 0:
                code, description = handle.error_code(), handle.error_description()
                handle.destroy()
                raise RegisterUnavailable(f"libfptr_set_settings failed: {description}", code)
            self._handle = handle
        if handle.is_opened():
            return
        if handle.open() < 0:
            code, description = handle.error_code(), handle.error_description()
            raise RegisterUnavailable(f"cannot open the register: {description}", code)

    def _close_on_driver_thread(self) -> None:
        if self._handle is not None:
            if self._handle.is_opened():
                self._handle.close()
            self._handle.destroy()
            self._handle = None

    def _run_task(self, text: str, fiscal: bool) -> tuple[str, int, str]:
        """On the driver thread: (phase, error code or 0, description or result JSON).

        DTO10 resets input parameters after every method, so JSON_DATA is set again
        before ``process_json``.
        """
        handle = self._handle
        if handle is None:
            return "open", NO_CONNECTION, "the driver handle is not open"
        if fiscal:
            handle.set_param_str(LIBFPTR_PARAM_JSON_DATA, text)
            if handle.validate_json() < 0:
                return "validate", handle.error_code(), handle.error_description()
        handle.set_param_str(LIBFPTR_PARAM_JSON_DATA, text)
        if handle.process_json() < 0:
            return "process", handle.error_code(), handle.error_description()
        return "process", 0, handle.get_param_str(LIBFPTR_PARAM_JSON_DATA)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"task value of type {type(value).__name__} is not JSON serialisable")


def _parse_result(task_type: str, text: str, fiscal: bool) -> JsonDict:
    if text.strip() == "":
        return {}
    try:
        result = json.loads(text)
    except json.JSONDecodeError as exc:
        result = exc
    if isinstance(result, dict):
        return result
    message = f"{task_type}: the driver returned a result that is not a JSON object: {text[:200]!r}"
    if fiscal:
        # The document exists but we cannot read its parameters: let the FD check decide.
        raise RegisterError(CONNECTION_LOST, message, ErrorCategory.AMBIGUOUS)
    raise RegisterError(DRIVER_BAD_RESULT, message)
