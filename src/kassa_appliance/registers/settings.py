"""The ``register`` section of the configuration: which backend drives the Atol, and where.

``driver`` picks the simulator, Atol's ``libfptr10`` (``usb_path``, ``lib_path``) or an Atol
Web Requests server (``url``); ``task_timeout`` bounds one driver call. The rules here run on
every load of ``config.json`` and on every ``snap set``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import field_validator

from kassa_appliance.setting_checks import (
    SettingsSection,
    check_absolute_path,
    check_http_url,
    optional,
)

_USB_PORT_PATH = re.compile(r"[0-9]+-[0-9]+(?:\.[0-9]+)*")
_SERIAL_PORT = re.compile(r"/dev/tty[A-Za-z0-9]{1,16}")


def check_usb_path(value: str) -> str:
    """``auto`` (the first Atol found), a USB port path (udev DEVPATH basename) ``1-1.3``,
    or a serial port ``/dev/ttyACM0`` for registers reached as a COM port."""
    if value != "auto" and not (_USB_PORT_PATH.fullmatch(value) or _SERIAL_PORT.fullmatch(value)):
        raise ValueError(
            "is not allowed; expected auto, a USB port path such as 1-1.3 "
            "or a serial port such as /dev/ttyACM0"
        )
    return value


def check_lib_path(value: str) -> str:
    return check_absolute_path(value, "/var/snap/kassa-appliance/common/libfptr10.so")


class RegisterConfig(SettingsSection):
    driver: Literal["simulator", "fptr10", "webrequests"] | None = "simulator"
    """None means "not chosen yet": on a device the simulator is never the silent default."""
    usb_path: str = "auto"
    lib_path: str | None = None
    url: str = "http://127.0.0.1:16732"
    print_delay: Decimal = Decimal("0")
    """Simulator only: seconds spent printing each document."""
    task_timeout: float = 60.0
    """Seconds a single driver call may take before it is treated as a lost connection."""

    _usb_path = field_validator("usb_path")(check_usb_path)
    _lib_path = field_validator("lib_path")(optional(check_lib_path))
    _url = field_validator("url")(check_http_url)
