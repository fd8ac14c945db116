"""Which Atol register is plugged in: udev enumeration plus hotplug, debounced.

Atol registers are matched on the USB vendor id 2912 only (atol-notes §4.1: no per-model
product id table exists). The watcher reports one device, the register the backend should
use, or ``None`` when none is plugged in. Bursts of uevents (a flaky cable, a re-enumerating
device) are collapsed: a report is made once no event has arrived for ``debounce`` seconds,
and it carries the state at that moment (the last state wins).

The pyudev monitor socket is read from the asyncio loop (``add_reader`` + ``poll(timeout=0)``),
so no thread is involved and the loop is never blocked. Under strict confinement the monitor
needs the ``hardware-observe`` plug (snap-notes §1.4); when the netlink socket cannot be
opened, the watcher logs why and falls back to re-enumerating every ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pyudev

ATOL_VENDOR_ID = "2912"

logger = logging.getLogger(__name__)

OnChange = Callable[["AtolDevice | None"], Awaitable[None]]


@dataclass(frozen=True)
class AtolDevice:
    """One Atol register on the USB bus."""

    devpath_basename: str
    """The DEVPATH basename, e.g. ``1-1.3``: what libfptr10 takes as ``UsbDevicePath``."""
    device_node: str | None
    """``/dev/bus/usb/BBB/DDD`` when udev created one."""
    vendor_id: str
    product_id: str | None
    serial: str | None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    text = str(value).strip()
    return text or None


def _property(device: Any, name: str) -> str | None:
    try:
        return _text(device.properties.get(name))
    except (KeyError, UnicodeDecodeError):
        return None


def _attribute(device: Any, name: str) -> str | None:
    """A sysfs attribute, or None (on ``remove`` the sysfs directory is already gone)."""
    try:
        return _text(device.attributes.get(name))
    except (KeyError, OSError, UnicodeDecodeError):
        return None


def _ids_from_product(device: Any) -> tuple[str | None, str | None]:
    """The kernel's ``PRODUCT=2912/5/100`` property (hex, no leading zeros)."""
    product = _property(device, "PRODUCT")
    if product is None:
        return None, None
    parts = product.split("/")
    if len(parts) < 2:
        return None, None
    try:
        return f"{int(parts[0], 16):04x}", f"{int(parts[1], 16):04x}"
    except ValueError:
        return None, None


def atol_device_from_udev(device: Any) -> AtolDevice | None:
    """An :class:`AtolDevice` for a pyudev ``usb_device`` with vendor id 2912, else None."""
    if _property(device, "DEVTYPE") not in (None, "usb_device"):
        return None
    product_vendor, product_model = _ids_from_product(device)
    vendor = _property(device, "ID_VENDOR_ID") or _attribute(device, "idVendor") or product_vendor
    if vendor is None or vendor.lower() != ATOL_VENDOR_ID:
        return None
    model = _property(device, "ID_MODEL_ID") or _attribute(device, "idProduct") or product_model
    serial = _property(device, "ID_SERIAL_SHORT") or _attribute(device, "serial")
    node = _text(getattr(device, "device_node", None)) or _property(device, "DEVNAME")
    return AtolDevice(
        devpath_basename=str(device.sys_name),
        device_node=node,
        vendor_id=vendor.lower(),
        product_id=model.lower() if model else None,
        serial=serial,
    )


class DeviceWatcher:
    """Tracks the Atol registers on the USB bus and reports the one to use.

    ``on_change`` is awaited with the chosen device (or ``None``) once at :meth:`start` and
    then after every settled change; calls never overlap. A device that was unplugged and
    plugged back within one settle window is reported again (its driver handle is stale)
    even though the final state looks the same. With several Atol devices the current one
    is kept while present; otherwise the lowest DEVPATH wins. ``only_devpath`` restricts
    the watcher to one DEVPATH basename (a register pinned by configuration).
    """

    def __init__(
        self,
        on_change: OnChange | None,
        *,
        context: pyudev.Context | None = None,
        debounce: float = 0.3,
        poll_interval: float = 2.0,
        only_devpath: str | None = None,
    ) -> None:
        if debounce < 0:
            raise ValueError(f"debounce must be >= 0 seconds, got {debounce}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval}")
        self._on_change = on_change
        self._context = context
        self._debounce = debounce
        self._poll_interval = poll_interval
        self._only_devpath = only_devpath
        self._present: dict[str, AtolDevice] = {}
        self._current: AtolDevice | None = None
        self._reported = False
        self._removed_since_report: set[str] = set()
        self._last_event = 0.0
        self._changed = asyncio.Event()
        self._monitor: pyudev.Monitor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def current(self) -> AtolDevice | None:
        """The device last reported to ``on_change`` (None before :meth:`start`)."""
        return self._current

    @property
    def monitoring(self) -> bool:
        """True when udev events are received; False when falling back to polling."""
        return self._monitor is not None

    async def start(self) -> None:
        """Open the udev monitor, enumerate the bus and report the initial state."""
        if self._loop is not None:
            raise RuntimeError("DeviceWatcher.start() called twice")
        self._loop = asyncio.get_running_loop()
        if self._context is None:
            self._context = pyudev.Context()
        # Listen before enumerating, so a device plugged in meanwhile is not missed.
        self._monitor = self._open_monitor(self._context)
        self._present = self._enumerate()
        self._removed_since_report.clear()
        await self._report()
        if self._monitor is not None:
            self._loop.add_reader(self._monitor.fileno(), self._on_readable)
            self._tasks.append(asyncio.create_task(self._settle_loop(), name="devices-settle"))
        else:
            self._tasks.append(asyncio.create_task(self._poll_loop(), name="devices-poll"))

    def stop(self) -> None:
        """Stop watching; safe to call more than once or before start()."""
        if self._loop is not None and self._monitor is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._monitor.fileno())
        self._monitor = None
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    def _open_monitor(self, context: pyudev.Context) -> pyudev.Monitor | None:
        try:
            monitor = pyudev.Monitor.from_netlink(context)
            monitor.filter_by(subsystem="usb", device_type="usb_device")
            monitor.start()
        except (OSError, ImportError) as error:
            logger.error(
                "cannot receive udev events (%s); is the hardware-observe plug connected? "
                "falling back to checking the USB bus every %.1f s",
                error,
                self._poll_interval,
            )
            return None
        return monitor

    def _enumerate(self) -> dict[str, AtolDevice]:
        assert self._context is not None
        found: dict[str, AtolDevice] = {}
        for device in self._context.list_devices(subsystem="usb", DEVTYPE="usb_device"):
            atol = self._atol_device(device)
            if atol is not None:
                found[atol.devpath_basename] = atol
        return found

    def _atol_device(self, device: Any) -> AtolDevice | None:
        if self._only_devpath is not None and str(device.sys_name) != self._only_devpath:
            return None
        return atol_device_from_udev(device)

    def _on_readable(self) -> None:
        """Drain every queued uevent without blocking (called by the event loop)."""
        monitor = self._monitor
        if monitor is None:
            return
        while True:
            try:
                device = monitor.poll(timeout=0)
            except OSError as error:
                logger.error("reading a udev event failed: %s", error)
                return
            if device is None:
                return
            self._apply(str(device.action), device)

    def _apply(self, action: str, device: Any) -> None:
        name = str(device.sys_name)
        if action == "remove":
            if self._present.pop(name, None) is None:
                return
            self._removed_since_report.add(name)
            logger.info("Atol device %s unplugged", name)
        elif action in ("add", "change", "bind"):
            atol = self._atol_device(device)
            if atol is None:
                return
            if action == "add" or name not in self._present:
                logger.info("Atol device %s plugged in (%s)", name, atol.device_node or "no node")
            self._present[name] = atol
        else:
            return
        self._last_event = time.monotonic()
        self._changed.set()

    async def _settle_loop(self) -> None:
        while True:
            await self._changed.wait()
            while (quiet := time.monotonic() - self._last_event) < self._debounce:
                await asyncio.sleep(self._debounce - quiet)
            self._changed.clear()
            await self._report()

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                present = self._enumerate()
            except OSError as error:
                logger.error("enumerating USB devices failed: %s", error)
                continue
            self._removed_since_report |= set(self._present) - set(present)
            self._present = present
            await self._report()

    def _choose(self) -> AtolDevice | None:
        if self._current is not None and self._current.devpath_basename in self._present:
            return self._present[self._current.devpath_basename]
        if not self._present:
            return None
        return self._present[min(self._present)]

    async def _report(self) -> None:
        chosen = self._choose()
        replugged = chosen is not None and chosen.devpath_basename in self._removed_since_report
        self._removed_since_report.clear()
        if self._reported and chosen == self._current and not replugged:
            return
        self._current = chosen
        self._reported = True
        if chosen is None:
            logger.info("no Atol register on the USB bus")
        else:
            logger.info("using Atol register at USB path %s", chosen.devpath_basename)
        if self._on_change is None:
            return
        try:
            await self._on_change(chosen)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("handling the register device change failed")
