"""Snap health: what ``snapctl set-health`` is told, and telling it.

Owns :class:`Health` and :class:`HealthState` (the values snapd accepts, validated),
:class:`ServiceSnapshot` (what the health and the systemd status line are made from),
:func:`health_for` (snapshot → health, with the fixed healths ``REGISTER_MISSING`` and
``BITRIX_UNPAIRED``) and :class:`HealthReporter`, which runs ``snapctl set-health`` inside a
snap when the health changes (snap-notes §1.8).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger("kassa_appliance.appliance.watchdog")

SNAPCTL_TIMEOUT = 10.0


class HealthState(StrEnum):
    OKAY = "okay"
    WAITING = "waiting"
    BLOCKED = "blocked"
    ERROR = "error"


_HEALTH_CODE = re.compile(r"^[a-z](?:-?[a-z0-9])+$")


@dataclass(frozen=True)
class Health:
    """What ``snapctl set-health`` takes: a state, and for anything but okay a code and a
    message (code: lowercase/digits/single dashes, 3–30 chars; message: 7–70 chars)."""

    state: HealthState
    code: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.state is HealthState.OKAY:
            if self.code is not None or self.message is not None:
                raise ValueError("health 'okay' takes no code and no message")
            return
        if self.code is None or not (3 <= len(self.code) <= 30 and _HEALTH_CODE.match(self.code)):
            raise ValueError(
                f"health code {self.code!r} must be 3-30 chars of lowercase letters, digits "
                "and single dashes, starting with a letter"
            )
        if self.message is None or len(self.message) < 7:
            raise ValueError(f"health message {self.message!r} must be at least 7 characters")

    def snapctl_args(self) -> list[str]:
        if self.state is HealthState.OKAY:
            return ["set-health", "okay"]
        assert self.code is not None and self.message is not None
        message = " ".join(self.message.split())
        if len(message) > 70:
            message = message[:69] + "…"
        return ["set-health", f"--code={self.code}", str(self.state), message]


OKAY = Health(HealthState.OKAY)


class HealthReporter:
    """Reports health to snapd with ``snapctl set-health``, only when it changes.

    Outside a snap (``snapctl`` is None) it only remembers the value. A failed snapctl call
    is logged and retried with the next report.
    """

    def __init__(self, snapctl: str | None) -> None:
        self._snapctl = snapctl
        self._reported: Health | None = None
        self.current: Health | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HealthReporter:
        env = os.environ if environ is None else environ
        if not env.get("SNAP"):
            return cls(None)
        return cls(shutil.which("snapctl", path=env.get("PATH")) or "/usr/bin/snapctl")

    @property
    def snapctl(self) -> str | None:
        """The snapctl executable used, None outside a snap."""
        return self._snapctl

    async def report(self, health: Health) -> None:
        self.current = health
        if health == self._reported:
            return
        if self._snapctl is None:
            self._reported = health
            return
        if await self._run_snapctl(health.snapctl_args()):
            self._reported = health

    async def _run_snapctl(self, args: list[str]) -> bool:
        command = " ".join(["snapctl", *args[:2]])
        try:
            process = await asyncio.create_subprocess_exec(
                self._snapctl or "snapctl",
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as error:
            logger.error("cannot run %s: %s", command, error)
            return False
        try:
            output, _ = await asyncio.wait_for(process.communicate(), SNAPCTL_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            logger.error("%s did not finish within %g s", command, SNAPCTL_TIMEOUT)
            return False
        if process.returncode != 0:
            logger.error(
                "%s failed (exit %s): %s",
                command,
                process.returncode,
                output.decode(errors="replace").strip() or "no output",
            )
            return False
        return True


@dataclass(frozen=True)
class ServiceSnapshot:
    """Everything the status line and the health are made from."""

    register: str
    register_online: bool
    queue_depth: int
    waiting: str | None = None
    last_error: str | None = None
    alerts: tuple[str, ...] = ()
    paired: bool | None = None
    """Bitrix24 link configured; None when not applicable."""
    device_present: bool | None = None
    """An Atol USB device is plugged in; None when the backend is not a USB one."""
    pairing_problem: str | None = None
    """Why the Bitrix24 pairing is lost (every refresh token refused); None otherwise."""


REGISTER_MISSING = Health(HealthState.WAITING, "register-missing", "Atol register not connected")
BITRIX_UNPAIRED = Health(
    HealthState.BLOCKED,
    "bitrix-unpaired",
    "pair again: snap set kassa-appliance bitrix.refresh-token=<new token>",
)


def health_for(snapshot: ServiceSnapshot) -> Health:
    if snapshot.device_present is False:
        return REGISTER_MISSING
    if snapshot.pairing_problem:
        return BITRIX_UNPAIRED
    if snapshot.alerts:
        return Health(HealthState.BLOCKED, "needs-attention", _message(snapshot.alerts[0]))
    if snapshot.waiting:
        return Health(HealthState.WAITING, "queue-waiting", _message(snapshot.waiting))
    return OKAY


def _message(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) >= 7 else f"{text} (see status)"
