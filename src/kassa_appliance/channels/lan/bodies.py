"""Reading request bodies through the shared input limits, and what a LAN call is given.

Every body is read at most :data:`~kassa_appliance.inputs.MAX_TASK_BYTES` long (aiohttp's
``client_max_size`` refuses more with 413) and decoded by
:func:`kassa_appliance.inputs.decode_json_bytes`: UTF-8, nesting, string and number limits.
A body that breaks them is answered 400 and reaches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kassa_appliance.channels.lan.queue import LanQueue
from kassa_appliance.channels.lan.state import LanState
from kassa_appliance.inputs import InputRejected, decode_json_bytes


class BadBody(Exception):
    """The body is not JSON within the limits; ``str()`` says why."""


async def read_json(request: web.Request, *, empty: Any = None) -> Any:
    data = await request.read()
    if not data.strip():
        return empty
    try:
        return decode_json_bytes(data, "body")
    except InputRejected as error:
        raise BadBody(str(error)) from None


@dataclass
class LanContext:
    """What every handler works with."""

    queue: LanQueue
    state: LanState
    kassa: str
    usb_path: str
    operation_timeout: float = 30.0
    kkm_max_timeout: float = 300.0
