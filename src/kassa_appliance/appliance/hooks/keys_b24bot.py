"""``snap set`` keys of the ``b24bot`` group (the Bitrix24 chat bot)."""

from __future__ import annotations

from kassa_appliance.appliance.hooks.snap_values import SnapKey

KEYS: tuple[SnapKey, ...] = ()
