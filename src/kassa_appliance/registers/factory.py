"""Builds the register backend the configuration names.

``KASSA_SIMULATOR_TAPE=stdout`` makes the simulated register print its paper tape to the
process's standard output (``kassa-appliance demo`` runs the daemon that way); unset, the
simulator prints nowhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from kassa_appliance.registers.base import Register
from kassa_appliance.registers.settings import RegisterConfig


class RegisterNotConfigured(Exception):
    """register.driver is unset: on a device the simulator is never the silent default."""


SIMULATOR_TAPE_ENV = "KASSA_SIMULATOR_TAPE"


def simulator_state_dir(data_dir: Path) -> Path:
    return data_dir / "simulator"


def _print_to_stdout(text: str) -> None:
    print(text, file=sys.stdout, flush=True)


def simulator_tape() -> Callable[[str], None] | None:
    """Where the simulator's tape goes: stdout when $KASSA_SIMULATOR_TAPE is ``stdout``."""
    target = os.environ.get(SIMULATOR_TAPE_ENV, "")
    if target == "stdout":
        return _print_to_stdout
    if target:
        raise ValueError(f"{SIMULATOR_TAPE_ENV}={target!r} is not supported; expected stdout")
    return None


def require_driver(settings: RegisterConfig) -> str:
    """The configured driver name; RegisterNotConfigured when there is none."""
    driver = settings.driver
    if driver is None:
        raise RegisterNotConfigured(
            "register.driver is not set; choose one of simulator, fptr10, webrequests "
            "(snap set kassa-appliance register.driver=fptr10)"
        )
    return driver


def make_register(settings: RegisterConfig, data_dir: Path) -> Register:
    driver = require_driver(settings)
    if driver == "simulator":
        from kassa_appliance.registers.simulator import SimulatorRegister

        return SimulatorRegister(
            simulator_state_dir(data_dir),
            print_delay=float(settings.print_delay),
            tape=simulator_tape(),
        )
    if driver == "fptr10":
        from kassa_appliance.registers.fptr10 import Fptr10Register

        return Fptr10Register.from_config(settings)
    from kassa_appliance.registers.webrequests import WebRequestsRegister

    return WebRequestsRegister.from_config(settings)
