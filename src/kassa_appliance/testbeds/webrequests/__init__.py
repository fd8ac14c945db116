"""A Web Requests server (Atol's HTTP API for DTO10) emulated on top of a register backend.

Used by tests and for manual runs (``kassa-appliance wr-emulator``) of the ``webrequests``
register backend without an Atol device or a Web Requests licence.
"""

from kassa_appliance.registers.factory import simulator_state_dir

from .faults import EmulatorFaults
from .server import WebRequestsEmulator

__all__ = ["EmulatorFaults", "WebRequestsEmulator", "simulator_state_dir"]
