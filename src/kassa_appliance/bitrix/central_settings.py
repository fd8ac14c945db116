"""Central settings: a kassa's business settings kept in Bitrix24, applied without a restart.

Format (docs/architecture.md "Central settings", written by the Kassa app's *Settings*
page, ``app/src/lib/settings.ts``): one ``KASSACFG`` item per kassa, NAME = kassa id,
PROPERTY_VALUES ``SETTINGS`` (compact JSON of ``snap set`` style keys), ``VERSION`` (raised
by one on every save), and two the daemon writes: ``APPLIED`` (the version it runs with)
and ``ERROR`` (why it refused ``VERSION``, ``""`` when it took it). A save rings the
``kassa.config`` doorbell ``{kassa, version}``.

:class:`CentralSettings` reads the item at start and on every doorbell (and on every
push (re)connect, in case one was missed), hands SETTINGS to the ``apply`` callback and
answers. The callback belongs to the daemon (``appliance``, which this part never imports):
it validates the whole version with the same models as ``snap set`` and, only if all of it
is valid, puts it in force and returns what the link itself must apply (the allowed users
and departments, who hears of problems);
otherwise it raises :class:`SettingsRefused` with the reason, and the settings in force
stay as they were. A doorbell has no trustworthy sender: only the stored item is read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.errors import NotFound
from kassa_appliance.bitrix.protocol import item_property
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.inputs import InputRejected, decode_json_text, shorten

log = logging.getLogger(__name__)

SETTINGS_ENTITY = "KASSACFG"
CONFIG_COMMAND = "kassa.config"
MAX_ERROR_LENGTH = 1000
"""Characters of the reason written to ERROR (the page shows it next to the field)."""


class SettingsRefused(ValueError):
    """The version is not applied; ``str()`` names the key first (``operator.vatin: …``)."""


@dataclass(frozen=True)
class AppliedSettings:
    """What the link applies itself once the daemon put a version in force."""

    allowed_users: frozenset[int]
    allowed_departments: frozenset[int] = frozenset()
    """Their users (sub-departments included) may create jobs too (bitrix/departments.py)."""
    notify_users: tuple[int, ...] = ()
    """Who hears of the kassa's problems (bitrix/notifications.py); empty: the admin who
    paired it."""


Applier = Callable[[Mapping[str, Any]], AppliedSettings]
"""Validate a whole SETTINGS object and put it in force, or raise :class:`SettingsRefused`."""


@dataclass(frozen=True)
class StoredSettings:
    item_id: int
    version: int
    settings_text: str
    applied: str
    error: str


def _stored(item: Mapping[str, Any]) -> StoredSettings | None:
    try:
        item_id = int(item.get("ID") or 0)
        version = int(item_property(item, "VERSION") or 0)
    except (TypeError, ValueError):
        return None
    return StoredSettings(
        item_id=item_id,
        version=version,
        settings_text=item_property(item, "SETTINGS"),
        applied=item_property(item, "APPLIED"),
        error=item_property(item, "ERROR"),
    )


def read_settings(text: str) -> dict[str, Any]:
    """SETTINGS as an object within the input limits, or :class:`SettingsRefused`."""
    if not text.strip():
        return {}
    try:
        value = decode_json_text(text, "SETTINGS")
    except InputRejected as error:
        raise SettingsRefused(f"{error}; expected a JSON object of settings") from None
    if not isinstance(value, dict):
        raise SettingsRefused("SETTINGS is not a JSON object; expected an object of settings")
    return value


class CentralSettings:
    def __init__(
        self,
        rest: RestClient,
        *,
        kassa_id: str,
        apply: Applier,
        on_applied: Callable[[AppliedSettings], None],
    ) -> None:
        self._rest = rest
        self.kassa_id = kassa_id
        self._apply = apply
        self._on_applied = on_applied
        self.wanted = asyncio.Event()
        self.wanted.set()  # read at start
        self.applied_version: int | None = None
        self.refused: tuple[int, str] | None = None
        """The last refused version and why (the one in force stays)."""
        self.checked_at: float | None = None

    def ring(self, params: Mapping[str, Any]) -> None:
        """A ``kassa.config`` doorbell: read this kassa's item again (soon, once)."""
        kassa = params.get("kassa")
        if kassa is not None and str(kassa) != self.kassa_id:
            return
        self.wanted.set()

    def snapshot(self) -> dict[str, Any]:
        """For ``kassa-appliance status`` (``link.central_settings``)."""
        return {
            "applied_version": self.applied_version,
            "refused_version": self.refused[0] if self.refused else None,
            "refused_reason": self.refused[1] if self.refused else None,
            "checked_at": self.checked_at,
        }

    async def run(self) -> None:
        """Read and apply whenever wanted; an error (portal unreachable) keeps it wanted,
        so the supervised restart reads again."""
        while True:
            await self.wanted.wait()
            self.wanted.clear()
            try:
                await self.refresh()
            except BaseException:
                self.wanted.set()
                raise

    async def refresh(self) -> None:
        stored = await self._read()
        self.checked_at = time.time()
        if stored is None:
            if self.applied_version is not None:  # the item is gone: back to snap set
                self._on_applied(self._apply({}))
                self.applied_version = None
            return
        if stored.version == self.applied_version:
            await self._answer(stored, applied=str(stored.version), error="")
            return
        try:
            applied = self._apply(read_settings(stored.settings_text))
        except SettingsRefused as refused:
            reason = shorten(str(refused), MAX_ERROR_LENGTH)
            self.refused = (stored.version, reason)
            log.warning(
                "central settings version %d refused, keeping version %s: %s",
                stored.version,
                self.applied_version if self.applied_version is not None else "of snap set",
                reason,
            )
            await self._answer(stored, applied=stored.applied, error=reason)
            return
        self._on_applied(applied)
        self.applied_version = stored.version
        self.refused = None
        log.info("central settings version %d applied", stored.version)
        await self._answer(stored, applied=str(stored.version), error="")

    async def _read(self) -> StoredSettings | None:
        try:
            items = await self._rest.result(
                "entity.item.get",
                {"ENTITY": SETTINGS_ENTITY, "FILTER": {"NAME": self.kassa_id}},
                priority=Priority.STATUS,
            )
        except NotFound:  # no KASSACFG storage: the app was not installed (yet)
            return None
        found = [s for item in items or [] if isinstance(item, Mapping) if (s := _stored(item))]
        return max(found, key=lambda s: s.item_id) if found else None

    async def _answer(self, stored: StoredSettings, *, applied: str, error: str) -> None:
        if (stored.applied, stored.error) == (applied, error):
            return  # already says so: no request
        await self._rest.result(
            "entity.item.update",
            {
                "ENTITY": SETTINGS_ENTITY,
                "ID": stored.item_id,
                "PROPERTY_VALUES": {"APPLIED": applied, "ERROR": error},
            },
            priority=Priority.STATUS,
        )
