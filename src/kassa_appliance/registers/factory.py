"""Builds the register backend the configuration names."""

from __future__ import annotations

from pathlib import Path

from kassa_appliance.config import Config
from kassa_appliance.registers.base import Register


class RegisterNotConfigured(Exception):
    """register.driver is unset: on a device the simulator is never the silent default."""


def simulator_state_dir(data_dir: Path) -> Path:
    return data_dir / "simulator"


def make_register(config: Config, data_dir: Path) -> Register:
    driver = config.register.driver
    if driver is None:
        raise RegisterNotConfigured(
            "register.driver is not set; choose one of simulator, fptr10, webrequests "
            "(snap set kassa-appliance register.driver=fptr10)"
        )
    if driver == "simulator":
        from kassa_appliance.registers.simulator import SimulatorRegister

        return SimulatorRegister(
            simulator_state_dir(data_dir), print_delay=float(config.register.print_delay)
        )
    if driver == "fptr10":
        from kassa_appliance.registers.fptr10 import Fptr10Register

        return Fptr10Register.from_config(config.register)
    from kassa_appliance.registers.webrequests import WebRequestsRegister

    return WebRequestsRegister.from_config(config.register)
