"""Raw ctypes binding of Atol's ``libfptr10.so`` (DTO10): only the calls the JSON-task
interface needs, declared with the real C signatures of ``libfptr10.h``::

    typedef void *libfptr_handle;
    int  libfptr_create(libfptr_handle *handle);
    void libfptr_destroy(libfptr_handle *handle);
    const char *libfptr_get_version_string(void);
    int  libfptr_set_settings(libfptr_handle handle, const wchar_t *settings);
    int  libfptr_open(libfptr_handle handle);
    int  libfptr_close(libfptr_handle handle);
    int  libfptr_is_opened(libfptr_handle handle);
    void libfptr_set_param_str(libfptr_handle handle, int param_id, const wchar_t *value);
    int  libfptr_get_param_str(libfptr_handle handle, int param_id, wchar_t *value, int size);
    int  libfptr_process_json(libfptr_handle handle);
    int  libfptr_validate_json(libfptr_handle handle);
    int  libfptr_error_code(libfptr_handle handle);
    int  libfptr_error_description(libfptr_handle handle, wchar_t *value, int size);

Strings cross the boundary as ``wchar_t`` (UTF-32 on Linux, ``ctypes.c_wchar``). The
getters follow DTO10's buffer protocol: they return the size the value needs (in
``wchar_t`` including the terminator); when that is larger than the buffer given, the call
is repeated with a buffer of that size, exactly as Atol's own ``libfptr10.py`` does.

This module knows nothing about registers or error categories; ``fptr10.py`` builds the
Register on top of it. A handle is not thread-safe: one thread owns it.
"""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path
from typing import Any

from .base import RegisterUnavailable

LIBRARY_FILE_NAME = "libfptr10.so"

LIBFPTR_PARAM_JSON_DATA = 65645
"""``LIBFPTR_PARAM_JSON_DATA`` from DTO10's generated wrappers (Java/Python constants dump)."""

# LIBFPTR_SETTING_* keys and values (atol-notes §2.2).
SETTING_MODEL = "Model"
SETTING_PORT = "Port"
SETTING_COM_FILE = "ComFile"
SETTING_USB_DEVICE_PATH = "UsbDevicePath"
SETTING_OFD_CHANNEL = "OfdChannel"
MODEL_ATOL_AUTO = 500
PORT_COM = 0
PORT_USB = 1
OFD_CHANNEL_PROTO = 2

DEFAULT_BUFFER_SIZE = 512
"""Initial ``wchar_t`` buffer for getters, the same as Atol's wrapper."""

DRIVER_LIBRARY_UNUSABLE = 9001
"""Our own code (outside Atol's ranges) for "libfptr10.so missing or not a DTO10 library"."""

_SYMBOLS: dict[str, tuple[list[Any], Any]] = {
    "libfptr_create": ([ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int),
    "libfptr_destroy": ([ctypes.POINTER(ctypes.c_void_p)], None),
    "libfptr_get_version_string": ([], ctypes.c_char_p),
    "libfptr_set_settings": ([ctypes.c_void_p, ctypes.c_wchar_p], ctypes.c_int),
    "libfptr_open": ([ctypes.c_void_p], ctypes.c_int),
    "libfptr_close": ([ctypes.c_void_p], ctypes.c_int),
    "libfptr_is_opened": ([ctypes.c_void_p], ctypes.c_int),
    "libfptr_set_param_str": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_wchar_p], None),
    "libfptr_get_param_str": (
        [ctypes.c_void_p, ctypes.c_int, ctypes.c_wchar_p, ctypes.c_int],
        ctypes.c_int,
    ),
    "libfptr_process_json": ([ctypes.c_void_p], ctypes.c_int),
    "libfptr_validate_json": ([ctypes.c_void_p], ctypes.c_int),
    "libfptr_error_code": ([ctypes.c_void_p], ctypes.c_int),
    "libfptr_error_description": (
        [ctypes.c_void_p, ctypes.c_wchar_p, ctypes.c_int],
        ctypes.c_int,
    ),
}


class DriverLibraryError(RegisterUnavailable):
    """``libfptr10.so`` is missing, unloadable, or lacks the DTO10 symbols.

    Unlike an unplugged register this does not fix itself: the daemon maps it (``health``
    attribute, or ``code == DRIVER_LIBRARY_UNUSABLE``) to snap health ``blocked`` with the
    message, which names the path and the reason.
    """

    health = "blocked"

    def __init__(self, path: str, reason: str):
        super().__init__(
            f"Atol driver library {path!r} is unusable: {reason}",
            code=DRIVER_LIBRARY_UNUSABLE,
        )
        self.path = path
        self.reason = reason


SNAP_LIBRARY_DIR = "usr/lib/atol"
"""Where ``scripts/stage-libfptr10`` puts the library inside the snap (docs/atol-driver.md)."""


def resolve_library_path(lib_path: str | None) -> str:
    """The name handed to ``dlopen``: a file as is, a directory plus ``libfptr10.so``.
    None means ``$SNAP/usr/lib/atol/libfptr10.so`` inside the snap, else the bare file name
    so the loader searches ``LD_LIBRARY_PATH`` and the system paths."""
    if lib_path is None or lib_path == "":
        snap = os.environ.get("SNAP")
        if snap:
            return str(Path(snap) / SNAP_LIBRARY_DIR / LIBRARY_FILE_NAME)
        return LIBRARY_FILE_NAME
    if Path(lib_path).is_dir():
        return str(Path(lib_path) / LIBRARY_FILE_NAME)
    return lib_path


class Fptr10Library:
    """The loaded shared object with every symbol typed; raises DriverLibraryError."""

    def __init__(self, lib_path: str | None = None):
        self.path = resolve_library_path(lib_path)
        if os.sep in self.path and not Path(self.path).exists():
            raise DriverLibraryError(self.path, "file does not exist")
        try:
            self._cdll = ctypes.CDLL(self.path, mode=os.RTLD_LOCAL)
        except OSError as exc:
            raise DriverLibraryError(self.path, f"cannot be loaded ({exc})") from exc
        missing = [name for name in _SYMBOLS if not hasattr(self._cdll, name)]
        if missing:
            raise DriverLibraryError(
                self.path, f"not a DTO10 libfptr10 (missing symbols: {', '.join(missing)})"
            )
        for name, (argtypes, restype) in _SYMBOLS.items():
            function = getattr(self._cdll, name)
            function.argtypes = argtypes
            function.restype = restype

    def version(self) -> str:
        raw = self._cdll.libfptr_get_version_string()
        return raw.decode("utf-8", errors="replace") if raw else ""

    def create(self, buffer_size: int = DEFAULT_BUFFER_SIZE) -> Fptr10Handle:
        return Fptr10Handle(self, buffer_size)

    def function(self, name: str) -> Any:
        return getattr(self._cdll, name)


class Fptr10Handle:
    """One ``libfptr_handle``: thin, typed wrappers over the C calls."""

    def __init__(self, library: Fptr10Library, buffer_size: int = DEFAULT_BUFFER_SIZE):
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self._lib = library
        self._buffer_size = buffer_size
        self._handle = ctypes.c_void_p(None)
        rc = library.function("libfptr_create")(ctypes.byref(self._handle))
        if rc != 0 or not self._handle.value:
            raise DriverLibraryError(library.path, f"libfptr_create failed (rc={rc})")

    @property
    def destroyed(self) -> bool:
        return not self._handle.value

    def destroy(self) -> None:
        if self._handle.value:
            self._lib.function("libfptr_destroy")(ctypes.byref(self._handle))
            self._handle = ctypes.c_void_p(None)

    def _call(self, name: str, *args: Any) -> Any:
        if not self._handle.value:
            raise RuntimeError("libfptr handle already destroyed")
        return self._lib.function(name)(self._handle, *args)

    def set_settings(self, settings: dict[str, Any]) -> int:
        return int(self._call("libfptr_set_settings", json.dumps(settings, ensure_ascii=False)))

    def open(self) -> int:
        return int(self._call("libfptr_open"))

    def close(self) -> int:
        return int(self._call("libfptr_close"))

    def is_opened(self) -> bool:
        return bool(self._call("libfptr_is_opened"))

    def set_param_str(self, param_id: int, value: str) -> None:
        self._call("libfptr_set_param_str", param_id, value)

    def get_param_str(self, param_id: int) -> str:
        return self._read_wide(
            lambda buf, size: self._call("libfptr_get_param_str", param_id, buf, size)
        )

    def process_json(self) -> int:
        return int(self._call("libfptr_process_json"))

    def validate_json(self) -> int:
        return int(self._call("libfptr_validate_json"))

    def error_code(self) -> int:
        return int(self._call("libfptr_error_code"))

    def error_description(self) -> str:
        return self._read_wide(lambda buf, size: self._call("libfptr_error_description", buf, size))

    def _read_wide(self, getter: Any) -> str:
        """DTO10 buffer protocol: the getter returns the size it needs; retry if bigger."""
        size = self._buffer_size
        buffer = ctypes.create_unicode_buffer(size)
        needed = int(getter(buffer, size))
        if needed > size:
            size = needed
            buffer = ctypes.create_unicode_buffer(size)
            getter(buffer, size)
        return str(buffer.value)
