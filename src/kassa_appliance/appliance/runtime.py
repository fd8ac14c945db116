"""Device runtime of the daemon: USB hotplug → engine, engine status → systemd and snapd.

Kept out of ``daemon.py`` so the wiring there stays a few lines:

* :func:`device_runtime` starts the USB :class:`DeviceWatcher` (for the ``fptr10`` backend,
  the only one on USB), turns unplug/plug into ``engine.set_register_available``, publishes
  every engine status as STATUS line + snap health, and sends READY=1 once it all runs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import PurePosixPath

from kassa_appliance.appliance.config import Config
from kassa_appliance.appliance.devices import AtolDevice, DeviceWatcher
from kassa_appliance.appliance.watchdog import ServiceIntegration, ServiceSnapshot
from kassa_appliance.bitrix import pairing
from kassa_appliance.bitrix.pairing import PairingState
from kassa_appliance.fiscal.engine import Engine, EngineStatus

log = logging.getLogger(__name__)


def is_paired(config: Config) -> bool:
    """A Bitrix24 portal and a credential are configured (not proof they still work)."""
    bitrix = config.bitrix
    return bool(bitrix.portal) and (bitrix.refresh_token is not None or bitrix.webhook is not None)


def pinned_devpath(config: Config) -> str | None:
    """The DEVPATH basename register.usb_path pins, or None to follow any Atol device."""
    path = config.register.usb_path.strip()
    if path in ("", "auto") or path.startswith("/dev/"):
        return None
    return PurePosixPath(path).name


def snapshot(
    status: EngineStatus,
    *,
    paired: bool,
    device_present: bool | None,
    pairing_problem: str | None = None,
) -> ServiceSnapshot:
    return ServiceSnapshot(
        register=status.register,
        register_online=status.register_online,
        queue_depth=status.queue_depth,
        waiting=status.waiting,
        last_error=status.last_error,
        alerts=status.alerts,
        paired=paired,
        device_present=device_present,
        pairing_problem=pairing_problem,
    )


@contextlib.asynccontextmanager
async def device_runtime(
    engine: Engine,
    config: Config,
    service: ServiceIntegration,
    *,
    watch_usb: bool | None = None,
) -> AsyncIterator[DeviceWatcher | None]:
    """Watch USB, publish status/health, send READY=1; yields the watcher (or None).

    ``watch_usb`` defaults to "the backend is fptr10", the only USB one; tests turn it on
    for the simulator to drive hotplug through the real engine.
    """
    if watch_usb is None:
        # A register reached as a serial port (/dev/tty…) is not followed through udev USB
        # events; the engine's reconnect back-off covers it.
        watch_usb = config.register.driver == "fptr10" and not config.register.usb_path.startswith(
            "/dev/"
        )
    paired = is_paired(config)
    device_present: bool | None = None
    pairing_problem: str | None = None

    def publish(status: EngineStatus) -> None:
        service.reporter.publish(
            snapshot(
                status,
                paired=paired,
                device_present=device_present,
                pairing_problem=pairing_problem,
            )
        )

    def on_pairing(state: PairingState) -> None:
        """The OAuth client found the pairing lost (or renewed): health follows at once."""
        nonlocal paired, pairing_problem
        paired = state.paired
        pairing_problem = None if state.paired else (state.reason or "pairing lost")
        publish(engine.status())

    async def on_device(device: AtolDevice | None) -> None:
        nonlocal device_present
        device_present = device is not None
        usb_path = device.devpath_basename if device is not None else None
        engine.set_register_available(device_present, usb_path)
        publish(engine.status())

    engine.add_listener(publish)
    unsubscribe_pairing = pairing.subscribe(on_pairing)
    watcher: DeviceWatcher | None = None
    if watch_usb:
        watcher = DeviceWatcher(on_device, only_devpath=pinned_devpath(config))
        try:
            await watcher.start()
        except Exception:
            # Without udev access the register is still tried; its errors say what is wrong.
            log.exception("cannot watch USB devices; the register is used without hotplug")
            watcher.stop()
            watcher = None
    service.reporter.ready(snapshot(engine.status(), paired=paired, device_present=device_present))
    try:
        yield watcher
    finally:
        unsubscribe_pairing()
        if watcher is not None:
            watcher.stop()
